"""Group commit for read entries: many API reads, one ledger transaction.

Every read must be in the ledger before its response leaves, and a commit per read costs more
than the read itself (a synchronous commit on PostgreSQL is ~0.9 ms; on SQLite concurrent
writers queue on one lock). So reads of one process take turns writing: a request whose entry
finds no one writing writes it itself, at once; entries that arrive meanwhile wait, and when that
commit ends the first of them writes all of them in one transaction, and so on. Nothing is handed
to another thread when the process is not busy (that handoff cost a third of a served read). If a
commit fails, every entry in it fails with it, and its request sends nothing.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from consent import events
from consent.events import Event
from pds.db import run_transaction
from pds.errors import Erased

log = logging.getLogger(__name__)

MAX_BATCH = 500  # entries per commit
WAIT_S = 30.0  # a request gives up (and fails) if its entry is not committed by then


class _Waiter:
    """One request's entry. Its lock is held until the entry is settled (committed or failed) or it is
    the entry's turn to write; a lock, not a Condition, because releasing one costs least."""

    __slots__ = ("entry", "error", "settled", "wake")

    def __init__(self, entry: Event) -> None:
        self.entry = entry
        self.settled = False
        self.error: BaseException | None = None
        self.wake = threading.Lock()
        self.wake.acquire()

    def settle(self, error: BaseException | None = None) -> None:
        self.settled, self.error = True, error
        self.wake.release()


class ReadLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._writing = False  # some request is writing a batch now

    def append(self, entry: Event) -> None:
        """Return once the entry is committed; raise if it could not be."""
        me = _Waiter(entry)
        with self._lock:
            self._waiting.append(me)
            turn = not self._writing
            self._writing = True
        if not turn:
            turn = self._wait(me)
        if turn:
            self._write_turn()
        if me.error is not None:
            raise me.error

    def _wait(self, me: _Waiter) -> bool:
        """Wait until the entry is settled (False) or it is its turn to write (True). An entry that
        waited too long without its turn coming leaves the queue, and its request fails."""
        while not me.wake.acquire(timeout=WAIT_S):
            with self._lock:
                if me.wake.acquire(blocking=False):
                    break
                if me in self._waiting:
                    self._waiting.remove(me)
                    raise TimeoutError("the read's ledger entry was not committed in time")
            # else its batch is being committed: its outcome is due
        return not me.settled

    def _write_turn(self) -> None:
        """Write what waits (this request's entry first), then wake the next writer or stop writing."""
        with self._lock:
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
        try:
            self._commit(batch)
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].wake.release()  # its turn; it stays unsettled
                else:
                    self._writing = False

    def _commit(self, batch: list[_Waiter]) -> None:
        try:
            run_transaction(self.sessions, lambda s: events.append_events(s, [w.entry for w in batch]))
        except Erased:
            # one entry is about a citizen erased meanwhile: it fails alone, the others are kept
            for waiter in batch:
                self._commit_one(waiter)
        except BaseException as exc:  # every waiter must learn of it
            log.exception("could not commit %d read entries", len(batch))
            for waiter in batch:
                waiter.settle(exc)
        else:
            for waiter in batch:
                waiter.settle()

    def _commit_one(self, waiter: _Waiter) -> None:
        try:
            run_transaction(self.sessions, lambda s: events.append_events(s, [waiter.entry]))
        except BaseException as exc:  # settled whatever happens, or its request would wait for ever
            waiter.settle(exc)
        else:
            waiter.settle()

"""Group commit for read entries: many API reads, one ledger transaction.

Every read must be in the ledger before its response leaves, and a commit per read costs more
than the read itself (a synchronous commit on PostgreSQL is ~0.9 ms; on SQLite concurrent
writers queue on one lock). So each process has one writer thread: a request hands it the entry
and waits; the writer appends everything waiting in one transaction, commits, and releases
them all. If the commit fails, every waiting request fails with it and sends nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future

from sqlalchemy.orm import Session, sessionmaker

from consent import events
from consent.events import Event
from pds.db import run_transaction
from pds.errors import Erased

log = logging.getLogger(__name__)

MAX_BATCH = 500  # entries per commit
WAIT_S = 30.0  # a request gives up (and fails) if its entry is not committed by then


class ReadLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._queue: queue.SimpleQueue[tuple[Event, Future[None]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def append(self, entry: Event) -> None:
        """Return once the entry is committed; raise if it could not be."""
        done: Future[None] = Future()
        self._start()
        self._queue.put((entry, done))
        done.result(timeout=WAIT_S)

    def _start(self) -> None:
        # started on first use, so each gunicorn worker (forked after import) has its own thread
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="pds-read-log", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                run_transaction(self.sessions, lambda s, b=batch: events.append_events(s, [e for e, _ in b]))
            except Erased:
                # one entry is about a citizen erased meanwhile: it fails alone, the others are kept
                for item in batch:
                    self._write_one(*item)
            except Exception as exc:  # every waiter must learn of it; the thread lives on
                log.exception("could not commit %d read entries", len(batch))
                for _, done in batch:
                    done.set_exception(exc)
            else:
                for _, done in batch:
                    done.set_result(None)

    def _write_one(self, entry: Event, done: Future[None]) -> None:
        try:
            run_transaction(self.sessions, lambda s: events.append_events(s, [entry]))
        except Exception as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)

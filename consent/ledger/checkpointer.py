"""Sign a checkpoint every few seconds while the log grows: one daemon thread per server process.

Several processes may all run one; the append lock inside `Checkpoints.make` and its "has the log grown"
check mean at most one of them signs each new size, and the others find nothing to do.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from consent.ledger import store
from consent.ledger.checkpoints import Checkpoints
from pds.db import run_transaction

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        read_sessions: sessionmaker[Session],
        checkpoints: Callable[[Session], Checkpoints],
        *,
        interval_s: float,
    ) -> None:
        self.sessions = sessions
        self.read_sessions = read_sessions
        self.checkpoints = checkpoints
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pds-checkpointer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> bool:
        """Sign a checkpoint if the log has grown since the last one. True if one was made."""
        with self.read_sessions() as session:  # look first without the write lock: usually nothing to do
            latest = self.checkpoints(session).latest()
            size = store.tree_size(session)
        if size == 0 or (latest is not None and latest.tree_size >= size):
            return False
        return run_transaction(self.sessions, lambda s: self.checkpoints(s).sign_new()) is not None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the next tick tries again; the log itself is unaffected
                log.exception("could not sign a ledger checkpoint")

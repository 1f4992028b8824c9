"""Slows password guessing: after repeated failed sign-ins to one account, a growing wait.

The counts live in the database (`signin_failure`), so every server process, and every server behind a
load balancer, sees the same wait. The account is named there only by a keyed hash (HMAC-SHA-256 under
the blind-index key), never by its address. Each change is committed in its own short transaction: the
sign-in's own request is rolled back when it fails, and the failure must still count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from pds.db import run_transaction, utcnow
from pds.vault.models import SignInFailure

FREE_FAILURES = 1  # the first mistake costs nothing: typos happen
FIRST_WAIT_S = 1.0  # then 1 s, 2 s, 4 s, ... doubling with each further failure
MAX_WAIT_S = 30.0
FORGET_AFTER = dt.timedelta(minutes=15)  # failures this long after the last one no longer count
DOMAIN = b"pds/signin-throttle/v1:"


def wait_after(failures: int) -> float:
    """The wait before the next attempt after this many failures in a row: 0, 1, 2, 4, ... 30 seconds."""
    if failures <= FREE_FAILURES:
        return 0.0
    return min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** (failures - FREE_FAILURES - 1))


class SignInThrottle:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        read_sessions: sessionmaker[Session],
        key: bytes,
        *,
        before_write: Callable[[], None] = lambda: None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._sessions, self._read_sessions = sessions, read_sessions
        self._key = key
        self._before_write = before_write  # on SQLite: let go of the request's own write lock first
        self._clock = clock

    def _id(self, account: str) -> bytes:
        return hmac.new(self._key, DOMAIN + account.strip().lower().encode(), hashlib.sha256).digest()

    def wait(self, account: str) -> int:
        """Whole seconds (rounded up) before this account may try again; 0 if it may now."""
        with self._read_sessions() as s:
            row = s.get(SignInFailure, self._id(account))
            if row is None or self._clock() - row.last_at > FORGET_AFTER:
                return 0
            left = (row.last_at + dt.timedelta(seconds=wait_after(row.count)) - self._clock()).total_seconds()
            return math.ceil(left) if left > 0 else 0

    def failed(self, account: str) -> int:
        """Count a failure (committed now); return the wait it imposes, in whole seconds."""
        key, now = self._id(account), self._clock()

        def count(s: Session) -> int:
            # counts that no longer count go as new ones come: the table holds only the last minutes'
            s.execute(delete(SignInFailure).where(SignInFailure.last_at < now - FORGET_AFTER))
            row = s.get(SignInFailure, key)
            if row is None:  # a count past its window was deleted just above: this starts afresh
                row = SignInFailure(key=key, count=0, last_at=now)
                s.add(row)
            row.count, row.last_at = row.count + 1, now
            return row.count

        self._before_write()
        return math.ceil(wait_after(run_transaction(self._sessions, count)))

    def succeeded(self, account: str) -> None:
        key = self._id(account)
        self._before_write()
        run_transaction(
            self._sessions, lambda s: s.execute(delete(SignInFailure).where(SignInFailure.key == key))
        )

"""Slows password guessing: after repeated failed sign-ins to one email address, a growing wait.

In memory, per process: enough to make guessing one account's password slow (one try in 30 seconds at
worst), without a table. A restart forgets the counts, which only ever helps the citizen.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 1  # the first mistake costs nothing: typos happen
FIRST_WAIT_S = 1.0  # then 1 s, 2 s, 4 s, ... doubling with each further failure
MAX_WAIT_S = 30.0
FORGET_AFTER_S = 15 * 60  # failures this long after the last one no longer count
MAX_TRACKED = 10_000  # addresses remembered at once: the oldest are dropped first


@dataclass
class _Failures:
    count: int
    last: float


def wait_after(failures: int) -> float:
    """The wait before the next attempt after this many failures in a row: 0, 1, 2, 4, ... 30 seconds."""
    if failures <= FREE_FAILURES:
        return 0.0
    return min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** (failures - FREE_FAILURES - 1))


class SignInThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    @staticmethod
    def key(email: str) -> str:
        return email.strip().lower()

    def wait(self, email: str) -> int:
        """Whole seconds (rounded up) before this address may try again; 0 if it may now."""
        with self._lock:
            seen = self._current(self.key(email))
            if seen is None:
                return 0
            left = seen.last + wait_after(seen.count) - self._clock()
            return math.ceil(left) if left > 0 else 0

    def failed(self, email: str) -> int:
        """Count a failure; return the wait it now imposes, in whole seconds."""
        key = self.key(email)
        with self._lock:
            seen = self._current(key)
            count = seen.count + 1 if seen else 1
            self._failures[key] = _Failures(count, self._clock())
            self._failures.move_to_end(key)
            while len(self._failures) > MAX_TRACKED:
                self._failures.popitem(last=False)
            return math.ceil(wait_after(count))

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._failures.pop(self.key(email), None)

    def _current(self, key: str) -> _Failures | None:
        seen = self._failures.get(key)
        if seen is not None and self._clock() - seen.last > FORGET_AFTER_S:
            del self._failures[key]
            return None
        return seen

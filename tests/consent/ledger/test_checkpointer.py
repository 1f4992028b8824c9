"""Checkpoints are signed while the log grows, by every server process's thread, without duplicates."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from consent import events
from consent.ledger.checkpointer import Checkpointer
from consent.ledger.models import LedgerCheckpoint
from consent.ledger.verify import verify_checkpoint
from pds.runtime import Runtime


def _checkpointer(runtime: Runtime, interval_s: float = 60) -> Checkpointer:
    return Checkpointer(runtime.sessions, runtime.read_sessions, runtime.checkpoints, interval_s=interval_s)


def _append(runtime: Runtime, n: int) -> None:
    with runtime.sessions() as s, s.begin():
        events.append_events(s, [events.Event("system.test", "pds") for _ in range(n)])


def _sizes(runtime: Runtime) -> list[int]:
    with runtime.sessions() as s:
        return list(s.scalars(select(LedgerCheckpoint.tree_size).order_by(LedgerCheckpoint.tree_size)))


def test_a_checkpoint_is_made_only_when_the_log_has_grown(runtime: Runtime) -> None:
    ticker = _checkpointer(runtime)
    assert ticker.tick() is False and _sizes(runtime) == []  # nothing to sign in an empty log
    _append(runtime, 3)
    assert ticker.tick() is True
    assert ticker.tick() is False
    _append(runtime, 2)
    assert ticker.tick() is True
    assert _sizes(runtime) == [3, 5]
    with runtime.sessions() as s:
        cps = runtime.checkpoints(s)
        latest = cps.latest()
        assert latest is not None
        signed = verify_checkpoint(latest.note, cps.verifier_key())
    assert (signed.size, signed.root) == (5, latest.root)


def test_racing_checkpointers_sign_each_size_once(runtime: Runtime) -> None:
    _append(runtime, 4)
    tickers = [_checkpointer(runtime) for _ in range(4)]
    results: list[bool] = []
    errors: list[BaseException] = []

    def run(t: Checkpointer) -> None:
        try:
            results.append(t.tick())
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in tickers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert results.count(True) == 1 and _sizes(runtime) == [4]


def test_the_thread_signs_while_the_log_grows(runtime: Runtime) -> None:
    ticker = _checkpointer(runtime, interval_s=0.05)
    ticker.start()
    try:
        _append(runtime, 2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _sizes(runtime) != [2]:
            time.sleep(0.05)
        assert _sizes(runtime) == [2]
    finally:
        ticker.stop()
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(LedgerCheckpoint)) == 1

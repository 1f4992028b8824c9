"""The read log's batches: one query for keys and log state, and still no entry about an erased citizen."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import select, text

from consent import events
from consent.ledger.audit import audit
from consent.ledger.models import LedgerEntry
from consent.readlog import ReadLog
from pds.db import make_engine, session_scope
from pds.errors import Erased
from pds.runtime import Runtime
from tests.conftest import add_citizen


def read(citizen: uuid.UUID, n: int = 0) -> events.Event:
    return events.Event(events.RECORDS_READ, "client:gp-app", citizen, details={"records": [], "n": n})


def erase(runtime: Runtime, citizen: uuid.UUID) -> None:
    """What `pds citizens delete` does, in one transaction."""
    with runtime.vault() as v:
        v.citizens.live(citizen)
        events.append_event(v.session, events.CITIZEN_ERASED, actor="operator:cli", citizen_id=citizen)
        v.citizens.erase(citizen)
        events.forget(v.session, citizen)


def seqs(runtime: Runtime, citizen: uuid.UUID) -> list[int]:
    with session_scope(runtime.read_sessions) as s:
        return [item.seq for item in events.history(s, citizen)]


def test_no_read_of_an_erased_citizen_is_logged_though_their_key_and_pseudonym_are_cached(
    runtime: Runtime,
) -> None:
    alice, bob = add_citizen(runtime, "Alice"), add_citizen(runtime, "Bob")
    log = ReadLog(runtime.sessions)
    for i in range(3):  # keys opened and pseudonyms cached in this process
        log.append(read(alice, i))
        log.append(read(bob, i))

    erase(runtime, alice)

    with pytest.raises(Erased):
        log.append(read(alice, 9))
    log.append(read(bob, 9))  # the others go on
    assert seqs(runtime, bob) == [0, 1, 2, 3]
    with session_scope(runtime.read_sessions) as s:
        assert audit(s).entries == 8  # 7 reads and the erasure, the tree intact


def test_heads_stay_chained_when_other_appenders_write_in_between(runtime: Runtime) -> None:
    people = [add_citizen(runtime, f"Person {i}") for i in range(6)]
    alice = people[0]
    log = ReadLog(runtime.sessions)
    log.append(read(alice))  # cached pseudonym; its head read in the batch query from now on
    with session_scope(runtime.sessions) as s:  # many citizens at once: the general path
        events.append_events(s, [read(p, 1) for p in people])
    with session_scope(runtime.sessions) as s:  # and a transaction of one
        events.append_event(s, events.RECORDS_EXPORTED, actor="citizen", citizen_id=alice)
    log.append(read(alice, 2))
    log.append(read(people[1], 2))
    assert seqs(runtime, alice) == [0, 1, 2, 3]
    assert seqs(runtime, people[1]) == [0, 1]
    with session_scope(runtime.read_sessions) as s:
        assert audit(s).entries == 10
        assert s.scalar(select(LedgerEntry.subject_seq).order_by(LedgerEntry.position.desc()).limit(1)) == 1


def test_a_batch_that_fails_writes_nothing_and_the_next_sees_the_log_as_it_was(runtime: Runtime) -> None:
    alice = add_citizen(runtime, "Alice")
    log = ReadLog(runtime.sessions)
    log.append(read(alice))

    def read_then_fail() -> None:
        with session_scope(runtime.sessions) as s:
            events.append_event(s, events.RECORDS_READ, actor="client:gp-app", citizen_id=alice)
            raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        read_then_fail()
    log.append(read(alice, 1))
    assert seqs(runtime, alice) == [0, 1]


def test_a_sqlite_writer_gets_the_lock_soon_after_it_is_released(db_url: str, on_postgres: bool) -> None:
    if on_postgres:
        pytest.skip("SQLite's write lock")
    holder, waiter = make_engine(db_url), make_engine(db_url)
    held = threading.Event()
    released_at: list[float] = []

    def hold() -> None:
        with holder.begin() as conn:  # BEGIN IMMEDIATE: the write lock
            conn.execute(text("SELECT 1"))
            held.set()
            time.sleep(0.34)  # SQLite's own busy handler would try next at 428 ms (100 ms a try by then)
            released_at.append(time.monotonic())

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    with waiter.begin() as conn:
        got_at = time.monotonic()
        conn.execute(text("SELECT 1"))
    thread.join()
    holder.dispose()
    waiter.dispose()
    # released_at is taken just before COMMIT; the waiter's pauses are at most a few ms
    assert 0 <= got_at - released_at[0] < 0.05


class HeldFirstCommit:
    """events.append_events as it is, except that the first call waits until released: the request
    writing it holds its turn while the others queue behind it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_after_first: bool = False) -> None:
        self.real = events.append_events
        self.calls: list[int] = []  # entries per call
        self.entered, self.release = threading.Event(), threading.Event()
        self.fail_after_first = fail_after_first
        monkeypatch.setattr(events, "append_events", self)

    def __call__(self, session: object, entries: list[events.Event]) -> object:
        self.calls.append(len(entries))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        elif self.fail_after_first:
            raise RuntimeError("the disk is full")
        return self.real(session, entries)  # type: ignore[arg-type]


def start(log: ReadLog, entries: list[events.Event]) -> tuple[list[threading.Thread], list[object]]:
    outcomes: list[object] = [None] * len(entries)

    def run(i: int) -> None:
        try:
            log.append(entries[i])
            outcomes[i] = "ok"
        except Exception as exc:  # the test looks at what each request saw
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(entries))]
    for thread in threads:
        thread.start()
    return threads, outcomes


def wait_for_queue(log: ReadLog, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(log._waiting) < n:
        assert time.monotonic() < deadline, f"{len(log._waiting)} queued, not {n}"
        time.sleep(0.005)


def test_reads_that_arrive_while_one_writes_go_in_one_commit_after_it(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [add_citizen(runtime, f"Person {i}") for i in range(3)]
    log = ReadLog(runtime.sessions)
    held = HeldFirstCommit(monkeypatch)
    first, first_outcome = start(log, [read(people[0])])
    assert held.entered.wait(10)
    rest, outcomes = start(log, [read(people[i % 3], i) for i in range(1, 11)])
    wait_for_queue(log, 10)
    assert outcomes == [None] * 10  # none may answer before its entry is committed
    held.release.set()
    for thread in first + rest:
        thread.join(10)
    assert first_outcome == ["ok"] and outcomes == ["ok"] * 10
    assert held.calls == [1, 10]  # the first alone in its own thread, then the ten together
    assert seqs(runtime, people[1]) == [0, 1, 2, 3]
    with session_scope(runtime.read_sessions) as s:
        assert audit(s).entries == 11


def test_a_failed_commit_fails_every_read_in_it_and_the_log_goes_on(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = add_citizen(runtime, "Alice")
    log = ReadLog(runtime.sessions)
    held = HeldFirstCommit(monkeypatch, fail_after_first=True)
    first, first_outcome = start(log, [read(alice)])
    assert held.entered.wait(10)
    rest, outcomes = start(log, [read(alice, i) for i in range(1, 6)])
    wait_for_queue(log, 5)
    held.release.set()
    for thread in first + rest:
        thread.join(10)
    assert first_outcome == ["ok"]
    assert all(isinstance(o, RuntimeError) and str(o) == "the disk is full" for o in outcomes), outcomes
    assert seqs(runtime, alice) == [0]  # none of the failed batch was written
    monkeypatch.setattr(events, "append_events", held.real)
    log.append(read(alice, 9))  # the next read writes at once: nobody is left holding the turn
    assert seqs(runtime, alice) == [0, 1]


def test_a_read_that_waits_too_long_fails_and_leaves_the_queue(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = add_citizen(runtime, "Alice")
    log = ReadLog(runtime.sessions)
    held = HeldFirstCommit(monkeypatch)
    monkeypatch.setattr("consent.readlog.WAIT_S", 0.2)
    first, first_outcome = start(log, [read(alice)])
    assert held.entered.wait(10)
    with pytest.raises(TimeoutError, match="not committed in time"):
        log.append(read(alice, 1))
    assert log._waiting == []
    held.release.set()
    first[0].join(10)
    assert first_outcome == ["ok"]
    log.append(read(alice, 2))
    assert held.calls == [1, 1]  # the entry that timed out was never written
    assert seqs(runtime, alice) == [0, 1]

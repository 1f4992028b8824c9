"""How `pds ledger verify` reads the log fast without reading it loosely: chain members at their one
place in the leaf, runs of chunks stitched where they meet, the database left as it was found."""

from __future__ import annotations

from sqlalchemy import text

from consent.ledger.audit import _even_runs, audit
from consent.ledger.verify import leaf_hash
from pds.db import session_scope
from pds.runtime import Runtime
from tests.consent.ledger.test_audit import (
    SIZE,
    Log,
    append_range,
    audit_error,
    log,
    owner_at,
    read_entry,
    run_audit,
    tampering,
    write_entry,
)

__all__ = ["log"]  # the fixture, used here by name


def test_each_worker_gets_one_run_of_about_as_many_entries() -> None:
    chunks = [(a, min(a + 4, 39)) for a in range(0, 39, 4)]  # 9 whole chunks and one of 3
    assert _even_runs(chunks, 2) == [0, 5, 10]
    assert _even_runs(chunks, 4) == [0, 2, 5, 7, 10]
    one_million = [(a, min(a + 32_768, 1_000_000)) for a in range(0, 1_000_000, 32_768)]
    cuts = _even_runs(one_million, 2)
    assert len(cuts) == 3 and abs(one_million[cuts[1]][0] - 500_000) <= 16_384


def test_a_chain_broken_where_the_second_run_begins_is_named_as_in_one_pass(
    runtime: Runtime, log: Log
) -> None:
    # Chunks of four, two workers: the second run starts at entry 20, so Alice's entry 21 is the first
    # of hers that run sees, and is held to the state the first run left (run_audit compares all ways).
    alice = log.citizens[0]
    assert owner_at(log.citizens, 21) == alice and owner_at(log.citizens, 18) == alice
    mine = log.positions_of(alice)
    assert mine.index(21) == mine.index(18) + 1
    with tampering(runtime) as conn:
        leaf, _ = read_entry(conn, 18)
        changed = b'{"commitment":"' + b"0" * 64 + leaf[len(b'{"commitment":"') + 64 :]
        assert changed != leaf
        write_entry(conn, 18, changed, leaf_hash(changed))
    seq = mine.index(21)
    assert audit_error(runtime) == (
        f"entry 21 breaks its citizen's chain: sequence {seq} after {seq - 1} "
        "(an entry of theirs was withheld, inserted or moved)"
    )


def test_chain_members_are_read_where_they_first_stand_in_the_leaf(runtime: Runtime, log: Log) -> None:
    # After the last checkpoint nothing but the chain vouches for a leaf. A forger who puts the right
    # members after wrong ones (a reader that searched the leaf for them would find the right ones,
    # a JSON parser keeping the first of two keys the wrong ones) is caught at the first.
    append_range(runtime, log.citizens, SIZE, SIZE + 4)
    alice = log.citizens[0]
    victim = next(p for p in range(SIZE, SIZE + 4) if owner_at(log.citizens, p) == alice)
    assert run_audit(runtime).entries == SIZE + 4
    with tampering(runtime) as conn:
        leaf, _ = read_entry(conn, victim)
        at = leaf.index(b'"subject":"')
        members = leaf[at : leaf.index(b'"time_us"')]
        wrong = members.replace(b'"subject_seq":', b'"subject_seq":1', 1)
        changed = leaf[:at] + wrong + leaf[at:]
        write_entry(conn, victim, changed, leaf_hash(changed))
    assert audit_error(runtime) == (
        f"entry {victim}: its subject or sequence columns do not match its leaf (altered)"
    )


def test_an_audit_on_postgres_leaves_its_session_as_it_found_it(
    runtime: Runtime, log: Log, on_postgres: bool
) -> None:
    # The scan turns off sorting (PostgreSQL would sort a chunk the index already gives in order)
    # for its own transaction; a session that goes on after it must not inherit that.
    with session_scope(runtime.read_sessions) as s:
        assert audit(s, workers=1).entries == SIZE
        if on_postgres:
            assert s.execute(text("SHOW enable_sort")).scalar_one() == "on"


def test_an_empty_log_passes_with_nothing_in_it(runtime: Runtime) -> None:
    with session_scope(runtime.read_sessions) as s:
        result = audit(s)
    assert (result.entries, result.checkpoints) == (0, 0)

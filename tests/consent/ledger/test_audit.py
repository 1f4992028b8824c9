"""`pds ledger verify` catches whoever edits the log in the database: every kind of tampering is named."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from consent import events
from consent.ledger import store
from consent.ledger.audit import AuditFailure, AuditResult, audit
from consent.ledger.canonical import canonical_json
from consent.ledger.checkpoint import make_signer, sign_checkpoint
from consent.ledger.checkpoints import Head
from consent.ledger.merkle import root_from_leaf_hashes
from consent.ledger.verify import leaf_hash
from pds.db import session_scope
from pds.runtime import Runtime
from pds.settings import ledger_origin
from tests.conftest import CONFIG, add_citizen, empty_database

PDS = str(Path(sys.executable).with_name("pds"))
SIZE = 40
CHECKPOINTS = (10, 25, 40)
SYSTEM_ACTOR = "pds:audit-test"


@dataclass(frozen=True)
class Log:
    """A log built through `append_events`: who each position is about (None: a system event)."""

    citizens: list[uuid.UUID]
    owners: list[uuid.UUID | None]

    def positions_of(self, citizen: uuid.UUID) -> list[int]:
        return [p for p, owner in enumerate(self.owners) if owner == citizen]


def owner_at(citizens: list[uuid.UUID], position: int) -> uuid.UUID | None:
    """Every fourth entry names no one; the rest go round the citizens."""
    return None if position % 4 == 0 else citizens[position % len(citizens)]


def event_at(citizens: list[uuid.UUID], position: int) -> events.Event:
    cid = owner_at(citizens, position)
    if cid is None:
        return events.Event(events.TOKEN_REUSE, SYSTEM_ACTOR, details={"n": position})
    return events.Event(events.RECORDS_READ, f"client:app-{position}", cid, details={"n": position})


def append_range(runtime: Runtime, citizens: list[uuid.UUID], start: int, end: int) -> None:
    """Append positions [start, end): one transaction per batch, batches of one to three events."""
    position = start
    while position < end:
        n = min(1 + position % 3, end - position)
        with session_scope(runtime.sessions) as s:
            done = events.append_events(s, [event_at(citizens, p) for p in range(position, position + n)])
        assert [d.position for d in done] == list(range(position, position + n))
        position += n


def make_checkpoint(runtime: Runtime) -> Head | None:
    with session_scope(runtime.sessions) as s:
        return runtime.checkpoints(s).make()


def build_log(runtime: Runtime) -> Log:
    citizens = [add_citizen(runtime, name) for name in ("Alice Audit", "Bob Audit", "Cara Audit")]
    start = 0
    for size in CHECKPOINTS:
        append_range(runtime, citizens, start, size)
        head = make_checkpoint(runtime)
        assert head is not None and head.tree_size == size
        start = size
    return Log(citizens, [owner_at(citizens, p) for p in range(SIZE)])


@pytest.fixture
def log(runtime: Runtime) -> Log:
    return build_log(runtime)


def run_audit(runtime: Runtime) -> AuditResult:
    """The audit as `pds ledger verify` runs it, held equal to the same audit split into chunks of four
    entries, in this process and in two worker processes: same result, or the same first fault."""
    outcomes = []
    for options in ({}, {"chunk_level": 2, "workers": 1}, {"chunk_level": 2, "workers": 2}):
        with session_scope(runtime.read_sessions) as s:
            try:
                outcomes.append(audit(s, **options))
            except AuditFailure as failure:
                outcomes.append(str(failure))
    assert outcomes[1] == outcomes[0] and outcomes[2] == outcomes[0], outcomes
    if isinstance(outcomes[0], str):
        raise AuditFailure(outcomes[0])
    return outcomes[0]


def audit_error(runtime: Runtime) -> str:
    with pytest.raises(AuditFailure) as failure:
        run_audit(runtime)
    return str(failure.value)


@contextmanager
def tampering(runtime: Runtime) -> Iterator[Connection]:
    """One transaction that edits the log behind pds's back (on PostgreSQL, past its triggers)."""
    with runtime.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        yield conn


def read_entry(conn: Connection, position: int) -> tuple[bytes, bytes]:
    leaf, h = conn.execute(
        text("SELECT leaf, leaf_hash FROM ledger_entry WHERE position = :p"), {"p": position}
    ).one()
    return bytes(leaf), bytes(h)


def write_entry(conn: Connection, position: int, leaf: bytes, h: bytes) -> None:
    conn.execute(
        text("UPDATE ledger_entry SET leaf = :leaf, leaf_hash = :h WHERE position = :p"),
        {"leaf": leaf, "h": h, "p": position},
    )


def shift(conn: Connection, *, from_position: int, by: int) -> None:
    """Move every entry at or after `from_position` by `by` places, in two steps so that no two rows
    ever share a position on the way (the primary key is checked row by row)."""
    conn.execute(
        text("UPDATE ledger_entry SET position = -(position + :by) - 1 WHERE position >= :start"),
        {"by": by, "start": from_position},
    )
    conn.execute(text("UPDATE ledger_entry SET position = -position - 1 WHERE position < 0"))


def forged_system_leaf(position: int) -> bytes:
    pending = store.PendingLeaf(events.TOKEN_REUSE, 1_700_000_000_000_000 + position, None, bytes(32))
    return store.leaf_bytes(pending, seq=None, prev=None)


# -- an untouched log ----------------------------------------------------------------------------


def test_an_untouched_log_passes_and_ends_at_the_latest_checkpoint(runtime: Runtime, log: Log) -> None:
    result = run_audit(runtime)
    with session_scope(runtime.read_sessions) as s:
        latest = runtime.checkpoints(s).latest()
    assert latest is not None
    assert (result.entries, result.checkpoints, result.root) == (SIZE, len(CHECKPOINTS), latest.root)


def cli(
    runtime: Runtime, cwd: Path, *args: str, db_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PDS_DATABASE_URL": db_url or runtime.settings.database.url}
    env["PDS_KEYS_DIR"] = str(runtime.settings.keys.dir)
    env["PDS_CONFIG"] = str(CONFIG)
    return subprocess.run(
        [PDS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line an operator reads (the progress bar's label may come before it on stderr)."""
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_cli_verify_prints_the_count_and_root_then_fails_once_truncated(
    runtime: Runtime, log: Log, tmp_path: Path
) -> None:
    with session_scope(runtime.read_sessions) as s:
        latest = runtime.checkpoints(s).latest()
    assert latest is not None
    good = cli(runtime, tmp_path, "ledger", "verify")
    assert good.returncode == 0, good.stderr
    assert good.stdout == f"ok: {SIZE} entries, root {latest.root.hex()}\n"

    with tampering(runtime) as conn:
        conn.execute(text("DELETE FROM ledger_entry WHERE position >= 37"))
    bad = cli(runtime, tmp_path, "ledger", "verify")
    assert bad.returncode == 1 and bad.stdout == ""
    assert error_line(bad) == (
        "error: ledger verify failed: "
        "checkpoint 40 was signed over 40 entries but the log holds 37 (truncated)"
    )


def test_cli_verify_after_init_and_demo_catches_a_changed_entry(
    runtime: Runtime, db_url: str, tmp_path: Path
) -> None:
    runtime.close()
    empty_database(db_url)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config.toml").write_text(CONFIG.read_text())
    env = {**os.environ, "PDS_DATABASE_URL": db_url}
    env.pop("PDS_CONFIG", None)
    env.pop("PDS_KEYS_DIR", None)

    def pds(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PDS, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    for args in (("init",), ("demo",), ("ledger", "checkpoint")):
        assert pds(*args).returncode == 0, args
    good = pds("ledger", "verify")
    assert good.returncode == 0, good.stderr
    count = int(good.stdout.split()[1])
    assert count > 3

    victim = count // 2
    with tampering(runtime) as conn:
        leaf, h = read_entry(conn, victim)
        doc = json.loads(leaf)
        doc["event"] = "consent.grant.revoked"  # say something else happened
        write_entry(conn, victim, canonical_json(doc), h)
    bad = pds("ledger", "verify")
    assert bad.returncode == 1 and bad.stdout == ""
    assert error_line(bad) == (
        f"error: ledger verify failed: entry {victim} does not hash to its stored leaf hash (changed)"
    )


# -- (a) a changed entry ---------------------------------------------------------------------------


def test_a_leaf_changed_without_its_hash_is_named(runtime: Runtime, log: Log) -> None:
    with tampering(runtime) as conn:
        leaf, h = read_entry(conn, 17)
        write_entry(conn, 17, leaf.replace(b'"event":"records.read"', b'"event":"records.exported"'), h)
        assert read_entry(conn, 17)[0] != leaf
    assert audit_error(runtime) == "entry 17 does not hash to its stored leaf hash (changed)"


def test_a_leaf_changed_with_its_hash_is_caught_by_the_next_checkpoint(runtime: Runtime, log: Log) -> None:
    assert log.owners[12] is None  # a system event: no citizen's chain runs through it
    with tampering(runtime) as conn:
        leaf, _ = read_entry(conn, 12)
        changed = leaf.replace(b'"event":"consent.token.reuse_detected"', b'"event":"consent.code.replayed"')
        assert changed != leaf
        write_entry(conn, 12, changed, leaf_hash(changed))
    assert audit_error(runtime) == (
        "checkpoint 25: entries 0-24 do not hash to its signed root "
        "(an entry was changed, inserted, removed or moved)"
    )


def test_a_citizens_leaf_changed_with_its_hash_breaks_their_chain(runtime: Runtime, log: Log) -> None:
    alice = log.citizens[0]
    first, second = log.positions_of(alice)[3:5]
    assert CHECKPOINTS[0] < first < second < CHECKPOINTS[1]  # no checkpoint between them to catch it first
    with tampering(runtime) as conn:
        leaf, _ = read_entry(conn, first)
        doc = json.loads(leaf)
        doc["commitment"] = "00" * 32  # claim other details were recorded
        changed = canonical_json(doc)
        write_entry(conn, first, changed, leaf_hash(changed))
    # Her next entry still names the hash of the original leaf as the one before it.
    assert audit_error(runtime) == (
        f"entry {second} breaks its citizen's chain: sequence 4 after 3 "
        "(an entry of theirs was withheld, inserted or moved)"
    )


# -- (b) deleted, (c) inserted, (d) reordered, (e) truncated ---------------------------------------------


def test_an_entry_deleted_in_the_middle_is_named(runtime: Runtime, log: Log) -> None:
    with tampering(runtime) as conn:
        conn.execute(text("DELETE FROM ledger_entry WHERE position = 18"))
    assert audit_error(runtime) == "entry 18 is missing: the next entry is 19 (deleted)"


def test_an_inserted_entry_is_caught_by_the_checkpoint_over_it(runtime: Runtime, log: Log) -> None:
    forged = forged_system_leaf(17)
    with tampering(runtime) as conn:
        shift(conn, from_position=17, by=1)
        conn.execute(
            text("INSERT INTO ledger_entry (position, leaf, leaf_hash) VALUES (17, :leaf, :h)"),
            {"leaf": forged, "h": leaf_hash(forged)},
        )
        assert conn.execute(text("SELECT count(*) FROM ledger_entry")).scalar_one() == SIZE + 1
    assert audit_error(runtime) == (
        "checkpoint 25: entries 0-24 do not hash to its signed root "
        "(an entry was changed, inserted, removed or moved)"
    )


def test_an_entry_replayed_into_a_citizens_chain_is_named(runtime: Runtime, log: Log) -> None:
    # Copy one of Bob's entries one place later (a replayed leaf). Its index columns cannot come along:
    # (subject, subject_seq) is unique, so the copy stands out from its leaf.
    bob = log.citizens[1]
    copied = log.positions_of(bob)[1]
    insert = text(
        "INSERT INTO ledger_entry (position, leaf, leaf_hash, subject, subject_seq) "
        "VALUES (:p, :leaf, :h, :subject, :seq)"
    )
    with runtime.engine.connect() as conn:
        leaf, h, subject, seq = conn.execute(
            text("SELECT leaf, leaf_hash, subject, subject_seq FROM ledger_entry WHERE position = :p"),
            {"p": copied},
        ).one()
    assert seq == 1
    same_columns = {"p": SIZE, "leaf": leaf, "h": h, "subject": subject, "seq": seq}
    with pytest.raises(IntegrityError), tampering(runtime) as conn:
        conn.execute(insert, same_columns)
    with tampering(runtime) as conn:
        shift(conn, from_position=copied + 1, by=1)
        conn.execute(insert, {"p": copied + 1, "leaf": leaf, "h": h, "subject": None, "seq": None})
    assert audit_error(runtime) == (
        f"entry {copied + 1}: its subject or sequence columns do not match its leaf (altered)"
    )


def swap_rows(conn: Connection, a: int, b: int) -> None:
    """Exchange two entries' places, each row whole (leaf, hash and index columns)."""
    move = text("UPDATE ledger_entry SET position = :to WHERE position = :at")
    conn.execute(move, {"at": a, "to": -1})
    conn.execute(move, {"at": b, "to": a})
    conn.execute(move, {"at": -1, "to": b})


def swap_leaves(conn: Connection, a: int, b: int) -> None:
    """Exchange two entries' leaves and hashes, leaving the index columns where they were."""
    (leaf_a, h_a), (leaf_b, h_b) = read_entry(conn, a), read_entry(conn, b)
    write_entry(conn, a, leaf_b, h_b)
    write_entry(conn, b, leaf_a, h_a)


def test_two_entries_of_one_citizen_swapped_break_their_chain(runtime: Runtime, log: Log) -> None:
    cara = log.citizens[2]
    first, second = log.positions_of(cara)[4:6]
    with tampering(runtime) as conn:
        swap_rows(conn, first, second)
    assert audit_error(runtime) == (
        f"entry {first} breaks its citizen's chain: sequence 5 after 3 "
        "(an entry of theirs was withheld, inserted or moved)"
    )


def test_two_leaves_swapped_under_their_index_columns_are_named(runtime: Runtime, log: Log) -> None:
    cara = log.citizens[2]
    first, second = log.positions_of(cara)[4:6]
    with tampering(runtime) as conn:
        swap_leaves(conn, first, second)
    assert audit_error(runtime) == (
        f"entry {first}: its subject or sequence columns do not match its leaf (altered)"
    )


def test_two_system_entries_swapped_are_caught_by_the_checkpoint(runtime: Runtime, log: Log) -> None:
    assert log.owners[28] is None and log.owners[32] is None
    with tampering(runtime) as conn:
        swap_leaves(conn, 28, 32)
    assert audit_error(runtime) == (
        "checkpoint 40: entries 0-39 do not hash to its signed root "
        "(an entry was changed, inserted, removed or moved)"
    )


def test_a_truncated_tail_is_named(runtime: Runtime, log: Log) -> None:
    with tampering(runtime) as conn:
        conn.execute(text("DELETE FROM ledger_entry WHERE position >= 31"))
    assert audit_error(runtime) == "checkpoint 40 was signed over 40 entries but the log holds 31 (truncated)"


# -- (f) forged checkpoints -----------------------------------------------------------------------------


def checkpoint_note(conn: Connection, size: int) -> str:
    return str(
        conn.execute(text("SELECT note FROM ledger_checkpoint WHERE tree_size = :n"), {"n": size}).one()[0]
    )


def test_a_checkpoint_note_with_another_root_does_not_verify(runtime: Runtime, log: Log) -> None:
    other_root = base64.b64encode(bytes(range(32))).decode()
    with tampering(runtime) as conn:
        note = checkpoint_note(conn, 25)
        origin, size, _root, rest = note.split("\n", 3)
        assert size == "25"
        conn.execute(
            text("UPDATE ledger_checkpoint SET note = :note, root = :root WHERE tree_size = 25"),
            {"note": "\n".join((origin, size, other_root, rest)), "root": bytes(range(32))},
        )
    assert audit_error(runtime) == "checkpoint 25: its signature does not verify (forged or altered)"


def test_a_checkpoint_row_whose_root_differs_from_its_note_is_named(runtime: Runtime, log: Log) -> None:
    with tampering(runtime) as conn:
        conn.execute(
            text("UPDATE ledger_checkpoint SET root = :root WHERE tree_size = 10"), {"root": bytes(32)}
        )
    assert audit_error(runtime) == "checkpoint 10: its row does not match what was signed (altered)"


def test_a_checkpoint_signed_with_another_key_is_refused(runtime: Runtime, log: Log) -> None:
    # The forger knows the log's name and even its true root at 30: only the key is wrong.
    origin = ledger_origin(runtime.settings)
    with session_scope(runtime.read_sessions) as s:
        true_root = store.root(s, 30)
    forger = make_signer(origin, Ed25519PrivateKey.generate())
    note = sign_checkpoint(origin, 30, true_root, forger)
    with tampering(runtime) as conn:
        conn.execute(
            text(
                "INSERT INTO ledger_checkpoint (tree_size, root, note, created_at) "
                "VALUES (30, :root, :note, CURRENT_TIMESTAMP)"
            ),
            {"root": true_root, "note": note},
        )
    assert audit_error(runtime) == "checkpoint 30: its signature does not verify (forged or altered)"


def test_a_checkpoint_over_a_rewritten_history_fails_its_consistency_proof(
    runtime: Runtime, log: Log
) -> None:
    # Someone with the signing key signs a head over a changed entry 5: the roots and signatures of every
    # checkpoint check out against the entries, but checkpoint 10 no longer extends into the later ones.
    with session_scope(runtime.read_sessions) as s:
        signer = runtime.checkpoints(s).signer()
    with tampering(runtime) as conn:
        conn.execute(text("DELETE FROM ledger_checkpoint WHERE tree_size > 10"))
    assert log.owners[16] is None
    with tampering(runtime) as conn:
        leaf, _ = read_entry(conn, 16)
        changed = leaf.replace(b'"event":"consent.token.reuse_detected"', b'"event":"consent.code.replayed"')
        write_entry(conn, 16, changed, leaf_hash(changed))
        hashes = [
            bytes(h) for (h,) in conn.execute(text("SELECT leaf_hash FROM ledger_entry ORDER BY position"))
        ]
    root = root_from_leaf_hashes(hashes)
    note = sign_checkpoint(signer.name, SIZE, root, signer)
    with tampering(runtime) as conn:
        conn.execute(
            text(
                "INSERT INTO ledger_checkpoint (tree_size, root, note, created_at) "
                "VALUES (:n, :root, :note, CURRENT_TIMESTAMP)"
            ),
            {"n": SIZE, "root": root, "note": note},
        )
    message = audit_error(runtime)
    assert message.startswith(f"checkpoint {SIZE}: the stored tree does not prove it extends checkpoint 10 (")


# -- (g) an entry withheld from a citizen's chain ---------------------------------------------------------


def test_an_entry_withheld_after_the_last_checkpoint_breaks_the_citizens_chain(
    runtime: Runtime, log: Log
) -> None:
    append_range(runtime, log.citizens, SIZE, SIZE + 6)  # not yet under any checkpoint
    alice = log.citizens[0]
    owners = [owner_at(log.citizens, p) for p in range(SIZE + 6)]
    later = [p for p in range(SIZE, SIZE + 6) if owners[p] == alice]
    assert len(later) == 2
    withheld, next_of_hers = later
    assert run_audit(runtime).entries == SIZE + 6
    with tampering(runtime) as conn:
        conn.execute(text("DELETE FROM ledger_entry WHERE position = :p"), {"p": withheld})
        shift(conn, from_position=withheld + 1, by=-1)
        positions = [p for (p,) in conn.execute(text("SELECT position FROM ledger_entry ORDER BY position"))]
        assert positions == list(range(SIZE + 5))  # no gap to give it away
    assert audit_error(runtime) == (
        f"entry {next_of_hers - 1} breaks its citizen's chain: sequence {len(log.positions_of(alice)) + 1} "
        f"after {len(log.positions_of(alice)) - 1} (an entry of theirs was withheld, inserted or moved)"
    )


# -- the database itself refuses (PostgreSQL) ------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entry SET leaf_hash = leaf_hash WHERE position = 3",
        "DELETE FROM ledger_entry WHERE position = 39",
        "UPDATE ledger_node SET hash = hash WHERE level = 1 AND position = 0",
        "DELETE FROM ledger_node WHERE level = 1",
        "UPDATE ledger_checkpoint SET note = note WHERE tree_size = 10",
        "DELETE FROM ledger_checkpoint",
        "TRUNCATE ledger_entry",
    ],
)
def test_postgres_refuses_changes_to_the_log(
    runtime: Runtime, log: Log, on_postgres: bool, statement: str
) -> None:
    if not on_postgres:
        pytest.skip("needs PDS_TEST_DATABASE_URL to name a PostgreSQL database (SQLite has no such triggers)")
    verb = statement.split()[0]
    table = statement.split()[2 if verb == "DELETE" else 1]
    refused = f"the ledger is append-only: {verb} on {table} refused"
    with pytest.raises(DBAPIError, match=refused), runtime.engine.begin() as conn:
        conn.execute(text(statement))
    result = run_audit(runtime)
    assert (result.entries, result.checkpoints) == (SIZE, len(CHECKPOINTS))


# -- the index columns beside each leaf ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "params"),
    [
        ("subject = NULL, subject_seq = NULL", {}),  # hidden from the citizen's own history
        ("subject_seq = :seq", {"seq": 1000}),
        ("subject = :other", {"other": bytes(32)}),
    ],
)
def test_index_columns_that_disagree_with_their_leaf_are_named(
    runtime: Runtime, log: Log, change: str, params: dict[str, object]
) -> None:
    # history() and the next append find a citizen's entries by these columns, not by the leaf.
    alice = log.citizens[0]
    victim = log.positions_of(alice)[4]
    with session_scope(runtime.sessions) as s:
        before = [item.position for item in events.history(s, alice)]
    with tampering(runtime) as conn:
        conn.execute(text(f"UPDATE ledger_entry SET {change} WHERE position = :p"), {"p": victim, **params})  # noqa: S608
    with session_scope(runtime.sessions) as s:
        assert [item.position for item in events.history(s, alice)] != before  # what she is shown changed
    assert (
        audit_error(runtime)
        == f"entry {victim}: its subject or sequence columns do not match its leaf (altered)"
    )


def test_a_system_entry_given_a_subject_column_is_named(runtime: Runtime, log: Log) -> None:
    with session_scope(runtime.sessions) as s:
        subject = events.pseudonym(s, log.citizens[1])
    assert subject is not None and log.owners[20] is None
    with tampering(runtime) as conn:  # slip a system event into Bob's history
        conn.execute(
            text("UPDATE ledger_entry SET subject = :s, subject_seq = 999 WHERE position = 20"),
            {"s": subject},
        )
    assert audit_error(runtime) == "entry 20: its subject or sequence columns do not match its leaf (altered)"

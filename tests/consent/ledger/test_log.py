"""The log in the database: its proofs verify standalone, each citizen's entries chain, nothing in a leaf
names anyone, an entry commits or rolls back with its action, erasure keeps the tree whole, and
concurrent appenders get one gapless order (RFC 9162 s2.1; C2SP tlog-checkpoint)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from consent import events
from consent.ledger import store
from consent.ledger.audit import audit
from consent.ledger.canonical import canonical_json
from consent.ledger.merkle import EMPTY_ROOT, root_from_leaf_hashes
from consent.ledger.models import LedgerDetail, LedgerEntry, LedgerNode, LedgerSubjectKey
from consent.ledger.verify import (
    VerificationError,
    leaf_hash,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from consent.models import Grant
from consent.services import GrantService
from pds.db import session_scope, utcnow
from pds.errors import Erased, KeyMissing
from pds.runtime import Runtime
from tests.conftest import add_citizen, make_settings

SIZE = 37
CHECKPOINT_SIZES = (1, 2, 7, 8, 13, 16, 21, 32, 37)  # powers of two and odd sizes: every proof shape
NAMES = ("Zelda Quintessa-Marlowe", "Ignatius Oyelaran-Pike", "Wilhelmina Thistlewood")


def actor_for(position: int) -> str:
    return f"clinician:dr-harriet-vane-{position}"


def note_for(position: int) -> str:
    return f"Seen at St Swithun's walk-in, visit {position}"


def owner_at(citizens: list[uuid.UUID], position: int) -> uuid.UUID | None:
    return None if position % 5 == 0 else citizens[position % len(citizens)]


def event_at(citizens: list[uuid.UUID], position: int) -> events.Event:
    details = {"note": note_for(position), "n": position}
    return events.Event(
        events.RECORDS_READ, actor_for(position), owner_at(citizens, position), details=details
    )


@dataclass(frozen=True)
class Log:
    citizens: list[uuid.UUID]
    owners: list[uuid.UUID | None]


def build_log(runtime: Runtime, size: int = SIZE, checkpoints: tuple[int, ...] = CHECKPOINT_SIZES) -> Log:
    """Events for three citizens and the system, in batches of one to three, checkpointed at each size."""
    citizens = [add_citizen(runtime, name) for name in NAMES]
    position = 0
    while position < size:
        n = min(1 + position % 3, size - position)
        for cut in checkpoints:  # a batch never straddles a checkpoint
            if position < cut < position + n:
                n = cut - position
        with session_scope(runtime.sessions) as s:
            events.append_events(s, [event_at(citizens, p) for p in range(position, position + n)])
        position += n
        if position in checkpoints:
            with session_scope(runtime.sessions) as s:
                head = runtime.checkpoints(s).make()
            assert head is not None and head.tree_size == position
    return Log(citizens, [owner_at(citizens, p) for p in range(size)])


@pytest.fixture
def log(runtime: Runtime) -> Log:
    return build_log(runtime)


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    with session_scope(runtime.sessions) as s:
        yield s


def entries(s: Session) -> list[tuple[int, bytes, bytes, bytes | None, int | None]]:
    e = LedgerEntry.__table__.c  # type: ignore[attr-defined]
    rows = s.execute(select(e.position, e.leaf, e.leaf_hash, e.subject, e.subject_seq).order_by(e.position))
    return [
        (p, bytes(leaf), bytes(h), None if sub is None else bytes(sub), seq) for p, leaf, h, sub, seq in rows
    ]


def count(s: Session, table: Any) -> int:
    return int(s.scalar(select(func.count()).select_from(table)) or 0)


# -- (a) proofs from the database verify with the standalone verifier --------------------------------------


def test_every_entry_proves_its_inclusion_under_every_checkpoint(
    runtime: Runtime, log: Log, session: Session
) -> None:
    vkey = runtime.checkpoints(session).verifier_key()
    hashes = [h for _, _, h, _, _ in entries(session)]
    assert len(hashes) == SIZE
    for size in CHECKPOINT_SIZES:
        head = runtime.checkpoints(session).at(size)
        assert head is not None
        checkpoint = verify_checkpoint(head.note, vkey)
        assert (checkpoint.size, checkpoint.root) == (size, head.root)
        for position in range(size):
            proof = store.prove_inclusion(session, position, size)
            verify_inclusion(
                leaf_index=position,
                tree_size=size,
                leaf_hash=hashes[position],
                proof=proof,
                root=checkpoint.root,
            )
    # and a proof is for its own leaf only
    proof = store.prove_inclusion(session, 5, SIZE)
    latest = verify_checkpoint(runtime.checkpoints(session).at(SIZE).note, vkey)  # type: ignore[union-attr]
    with pytest.raises(VerificationError, match="computes root"):
        verify_inclusion(leaf_index=5, tree_size=SIZE, leaf_hash=hashes[6], proof=proof, root=latest.root)


def test_every_pair_of_checkpoints_proves_consistent(runtime: Runtime, log: Log, session: Session) -> None:
    vkey = runtime.checkpoints(session).verifier_key()
    signed = {}
    for size in CHECKPOINT_SIZES:
        head = runtime.checkpoints(session).at(size)
        assert head is not None
        signed[size] = verify_checkpoint(head.note, vkey).root
    for size1, size2 in combinations(CHECKPOINT_SIZES, 2):
        proof = store.prove_consistency(session, size1, size2)
        verify_consistency(size1=size1, size2=size2, root1=signed[size1], root2=signed[size2], proof=proof)
        if proof:  # the same proof does not vouch for another old root
            with pytest.raises(VerificationError, match=r"computes (first|second) root"):
                verify_consistency(
                    size1=size1, size2=size2, root1=signed[size2], root2=signed[size2], proof=proof
                )


def test_stored_roots_equal_a_recomputation_from_the_leaves(log: Log, session: Session) -> None:
    rows = entries(session)
    for _, leaf, h, _, _ in rows:
        assert leaf_hash(leaf) == h
    hashes = [h for _, _, h, _, _ in rows]
    roots = {store.root(session, n) for n in range(SIZE + 1)}
    assert len(roots) == SIZE + 1  # every size has its own root
    for n in range(SIZE + 1):
        assert store.root(session, n) == root_from_leaf_hashes(hashes[:n])
    assert store.root(session, 0) == EMPTY_ROOT


# -- (b) each citizen's chain, and what a leaf does not say -----------------------------------------------


def test_each_citizens_leaves_chain_in_their_own_sequence(log: Log, session: Session) -> None:
    rows = entries(session)
    pseudonyms = set()
    for citizen in log.citizens:
        subject = events.pseudonym(session, citizen)
        assert subject is not None and len(subject) == 32
        pseudonyms.add(subject)
        theirs = [r for r in rows if r[3] == subject]
        assert [r[0] for r in theirs] == [p for p, owner in enumerate(log.owners) if owner == citizen]
        prev = None
        for seq, (_, leaf, h, _, column_seq) in enumerate(theirs):
            doc = json.loads(leaf)
            assert (doc["subject"], doc["subject_seq"], column_seq) == (subject.hex(), seq, seq)
            assert doc["subject_prev"] == (None if prev is None else prev.hex())
            prev = h
    assert len(pseudonyms) == len(log.citizens)
    for position, leaf, _, subject, seq in rows:  # system events name no one
        if log.owners[position] is None:
            doc = json.loads(leaf)
            assert (subject, seq, doc["subject"], doc["subject_seq"], doc["subject_prev"]) == (None,) * 5


def test_no_leaf_holds_a_citizens_id_name_or_any_details(log: Log, session: Session) -> None:
    blob = b"\n".join(leaf for _, leaf, _, _, _ in entries(session))
    for citizen, name in zip(log.citizens, NAMES, strict=True):
        for needle in (str(citizen), citizen.hex, name, name.split()[0]):
            assert needle.encode() not in blob
            assert needle.encode().upper() not in blob.upper()
        assert citizen.bytes not in blob
    for position in range(SIZE):
        assert actor_for(position).encode() not in blob
        assert note_for(position).encode() not in blob
    assert b"dr-harriet-vane" not in blob and b"Swithun" not in blob
    for _, leaf, _, _, _ in entries(session):  # only what the leaf format allows
        assert set(json.loads(leaf)) == {
            "v",
            "event",
            "time_us",
            "subject",
            "subject_seq",
            "subject_prev",
            "commitment",
        }


def test_each_leaf_commits_to_the_salted_details_history_opens(log: Log, session: Session) -> None:
    leaves = {p: leaf for p, leaf, _, _, _ in entries(session)}
    seen = 0
    for citizen in log.citizens:
        for item in events.history(session, citizen):
            commitment = hashlib.sha256(item.salt + canonical_json(item.details)).digest()
            assert json.loads(item.leaf)["commitment"] == commitment.hex()
            assert item.leaf == leaves[item.position]
            assert item.details == {
                "actor": actor_for(item.position),
                "note": note_for(item.position),
                "n": item.position,
            }
            assert item.event == events.RECORDS_READ
            seen += 1
    assert seen == sum(owner is not None for owner in log.owners)
    # a system event's details are kept plain (they name no one) and are committed to the same way
    d = LedgerDetail.__table__.c  # type: ignore[attr-defined]
    body = session.scalar(select(d.body).where(d.position == 0))
    salt, details = events.open_details(session, None, 0, body)
    assert details == {"actor": actor_for(0), "note": note_for(0), "n": 0}
    assert json.loads(leaves[0])["commitment"] == hashlib.sha256(salt + canonical_json(details)).hexdigest()
    salts = {item.salt for c in log.citizens for item in events.history(session, c)}
    assert len(salts) == seen  # a fresh salt each time: equal details give unlinkable commitments


# -- (c) an entry commits or rolls back with the action it records -----------------------------------------


def in_transaction(runtime: Runtime, work: Callable[[Session], object]) -> None:
    with session_scope(runtime.sessions) as s:
        work(s)


def ledger_counts(runtime: Runtime) -> tuple[int, int, int, int]:
    with session_scope(runtime.read_sessions) as s:
        return (
            count(s, LedgerEntry),
            count(s, LedgerNode),
            count(s, LedgerDetail),
            count(s, LedgerSubjectKey),
        )


def grant_count(runtime: Runtime) -> int:
    with session_scope(runtime.read_sessions) as s:
        return count(s, Grant)


def create_grant(s: Session, citizen: uuid.UUID) -> Grant:
    return GrantService(s).create(
        citizen_id=citizen,
        client_id="gp-app",
        categories=["health"],
        scope="records.read",
        purpose="repeat prescriptions",
        ends_at=utcnow() + dt.timedelta(days=30),
        actor=f"citizen:{citizen}",
    )


def test_a_grant_whose_ledger_entry_cannot_be_written_is_not_created(runtime: Runtime) -> None:
    alice, bob = add_citizen(runtime, "Alice"), add_citizen(runtime, "Bob")
    with session_scope(runtime.sessions) as s:
        create_grant(s, bob)  # Bob's grant and its entry commit
    with runtime.vault() as v:
        v.citizens.erase(alice)
    before = ledger_counts(runtime)
    assert before[0] == 1 and grant_count(runtime) == 1

    # Alice is erased: nothing can be sealed for her, so the grant fails with its entry
    with pytest.raises(Erased, match="erased"), session_scope(runtime.sessions) as s:
        create_grant(s, alice)
    # a session without the key provider: the entry cannot be sealed, so the grant goes too
    bare = sessionmaker(runtime.engine)
    with pytest.raises(KeyMissing, match="no key provider"), session_scope(bare) as s:
        create_grant(s, bob)
    assert ledger_counts(runtime) == before and grant_count(runtime) == 1


def test_a_failed_entry_takes_the_earlier_entries_of_its_transaction_with_it(runtime: Runtime) -> None:
    alice, bob = add_citizen(runtime, "Alice"), add_citizen(runtime, "Bob")
    with runtime.vault() as v:
        v.citizens.erase(alice)

    def read_for_both(s: Session) -> None:
        grant = create_grant(s, bob)
        events.append_event(s, events.RECORDS_READ, actor="client:gp-app", citizen_id=bob, grant_id=grant.id)
        assert count(s, LedgerEntry) == 2  # written, then undone below
        events.append_event(s, events.RECORDS_READ, actor="client:gp-app", citizen_id=alice)

    with pytest.raises(Erased):
        in_transaction(runtime, read_for_both)
    assert ledger_counts(runtime) == (0, 0, 0, 0) and grant_count(runtime) == 0

    with session_scope(runtime.sessions) as s:  # the log carries on from where it really was
        assert events.append_event(s, events.CODE_REPLAY, actor="pds").position == 0
        runtime.checkpoints(s).make()
    with session_scope(runtime.read_sessions) as s:
        assert audit(s).entries == 1


def test_when_the_action_rolls_back_its_entry_goes_too(runtime: Runtime) -> None:
    bob = add_citizen(runtime, "Bob")
    with session_scope(runtime.sessions) as s:
        events.append_event(s, events.RECORDS_READ, actor="client:gp-app", citizen_id=bob)
        events.append_event(s, events.CODE_REPLAY, actor="pds")
        runtime.checkpoints(s).make()
    before = ledger_counts(runtime)
    assert before == (2, 1, 2, 1)

    def grant_then_fail(s: Session) -> None:
        create_grant(s, bob)
        events.append_events(s, [event_at([bob], p) for p in range(1, 5)])
        assert count(s, LedgerEntry) == 7 and count(s, LedgerNode) > 1
        raise RuntimeError("the action failed after its entries were written")

    with pytest.raises(RuntimeError, match="the action failed"):
        in_transaction(runtime, grant_then_fail)
    assert ledger_counts(runtime) == before and grant_count(runtime) == 0

    with session_scope(runtime.sessions) as s:  # Bob's chain carries on from his committed entry
        recorded = events.append_event(s, events.RECORDS_READ, actor="client:gp-app", citizen_id=bob)
        assert recorded.position == 2
        assert json.loads(recorded.leaf)["subject_seq"] == 1
        runtime.checkpoints(s).make()
    with session_scope(runtime.read_sessions) as s:
        assert audit(s).entries == 3


def history_elsewhere(db_url: str, keys_dir: str, citizen: str) -> list[int]:
    """A citizen's history as another pds process sees it (a web worker, or after a restart)."""
    rt = Runtime.build(make_settings(db_url, Path(keys_dir)))
    try:
        with session_scope(rt.sessions) as s:
            return [item.position for item in events.history(s, uuid.UUID(citizen))]
    finally:
        rt.close()


def in_another_process(db_url: str, keys_dir: Path, citizen: uuid.UUID) -> list[int]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(history_elsewhere, (db_url, str(keys_dir), str(citizen)))


def test_a_citizens_first_entry_rolled_back_does_not_split_their_history(
    runtime: Runtime, db_url: str, keys_dir: Path
) -> None:
    alice = add_citizen(runtime, "Alice")

    def read_then_fail(s: Session) -> None:
        events.append_event(s, events.RECORDS_READ, actor="client:gp-app", citizen_id=alice)
        raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        in_transaction(runtime, read_then_fail)
    with session_scope(runtime.sessions) as s:
        assert (
            events.append_event(s, events.RECORDS_READ, actor="client:gp-app", citizen_id=alice).position == 0
        )
    with session_scope(runtime.sessions) as s:
        assert [item.position for item in events.history(s, alice)] == [0]  # this process sees it
    assert in_another_process(db_url, keys_dir, alice) == [0]  # and so must every other


def test_a_rolled_back_citizen_lends_no_pseudonym_to_the_next(
    runtime: Runtime, db_url: str, keys_dir: Path
) -> None:
    # (SQLite hands the rolled-back data key's id to the next citizen's key: a cache keyed by it alone
    # would lend the ghost's pseudonym to the next citizen)
    def sign_up_then_fail(s: Session) -> None:
        ghost = runtime.open_vault(s).citizens.add(name="Ghost", date_of_birth="1980-01-01").id
        events.append_event(s, events.RECORDS_READ, actor="client:gp-app", citizen_id=ghost)
        raise RuntimeError("the sign-up failed")

    with pytest.raises(RuntimeError):
        in_transaction(runtime, sign_up_then_fail)
    bob = add_citizen(runtime, "Bob")
    with session_scope(runtime.sessions) as s:
        events.append_event(s, events.RECORDS_READ, actor="client:gp-app", citizen_id=bob)
    assert in_another_process(db_url, keys_dir, bob) == [0]


# -- (d) erasure keeps the tree and unlinks the leaves ----------------------------------------------------


def erase(runtime: Runtime, citizen: uuid.UUID) -> None:
    """What `pds citizens delete` does, in one transaction."""
    with runtime.vault() as v:
        v.citizens.live(citizen)
        events.append_event(v.session, events.CITIZEN_ERASED, actor="operator:cli", citizen_id=citizen)
        v.citizens.erase(citizen)
        events.forget(v.session, citizen)


def test_erasure_keeps_the_leaves_verifiable_and_linked_to_no_one(runtime: Runtime, log: Log) -> None:
    alice, bob = log.citizens[0], log.citizens[1]
    with session_scope(runtime.read_sessions) as s:
        before = entries(s)
        subject = events.pseudonym(s, alice)
        old_head = runtime.checkpoints(s).latest()
        bobs = [item.position for item in events.history(s, bob)]
        assert s.get(LedgerSubjectKey, alice) is not None
        assert count(s, select(LedgerDetail).where(LedgerDetail.citizen_id == alice).subquery()) > 0
    assert subject is not None and old_head is not None and old_head.tree_size == SIZE
    hers = [r for r in before if r[3] == subject]

    erase(runtime, alice)

    with session_scope(runtime.sessions) as s:
        new_head = runtime.checkpoints(s).make()
    assert new_head is not None and new_head.tree_size == SIZE + 1
    with session_scope(runtime.read_sessions) as s:
        after = entries(s)
        assert after[:SIZE] == before  # every leaf of hers is still there, unchanged
        erased = json.loads(after[SIZE][1])
        assert (erased["event"], erased["subject"], erased["subject_seq"]) == (
            events.CITIZEN_ERASED,
            subject.hex(),
            len(hers),
        )
        assert audit(s).root == new_head.root
        verify_consistency(
            size1=SIZE,
            size2=SIZE + 1,
            root1=old_head.root,
            root2=new_head.root,
            proof=store.prove_consistency(s, SIZE, SIZE + 1),
        )
        with pytest.raises(Erased):
            events.history(s, alice)
        with pytest.raises(Erased):
            events.pseudonym(s, alice)
        assert s.get(LedgerSubjectKey, alice) is None
        assert count(s, select(LedgerDetail).where(LedgerDetail.citizen_id == alice).subquery()) == 0
        assert count(s, select(LedgerDetail).where(LedgerDetail.citizen_id == bob).subquery()) == len(bobs)
        assert [item.position for item in events.history(s, bob)] == bobs  # others untouched
    with pytest.raises(Erased, match="nothing more is recorded"), session_scope(runtime.sessions) as s:
        events.append_event(s, events.RECORDS_READ, actor="client:gp-app", citizen_id=alice)


# -- (e) concurrent appenders (PostgreSQL) ------------------------------------------------------------------

WORKERS = 8
EVENTS_PER_WORKER = 50
BATCHES = (1, 1, 4, 2, 1, 5)  # transaction sizes, in turn


def test_a_batch_of_more_subjects_than_one_heads_query_holds_chains_each_to_its_last_entry(
    runtime: Runtime,
) -> None:
    # each subject gets a few entries first, so the heads read must find the last of several
    subjects = [hashlib.sha256(b"subject %d" % i).digest() for i in range(store.HEADS_PER_QUERY + 37)]
    leaves_per_subject = 3
    time_us = 1_767_225_600_000_000

    def batch() -> list[store.PendingLeaf]:
        return [
            store.PendingLeaf(events.RECORDS_READ, time_us, subject, hashlib.sha256(subject).digest())
            for subject in subjects
        ]

    for _ in range(leaves_per_subject):  # one transaction per round: heads come from the database
        with session_scope(runtime.sessions) as s:
            store.append(s, batch())

    with session_scope(runtime.sessions) as s:
        rows = entries(s)
        assert len(rows) == len(subjects) * leaves_per_subject
        last: dict[bytes, tuple[int, bytes]] = {}
        for _, leaf, h, subject, seq in rows:
            assert subject is not None
            doc = json.loads(leaf)
            want_seq, want_prev = (
                (0, None) if subject not in last else (last[subject][0] + 1, last[subject][1])
            )
            assert (seq, doc["subject_seq"]) == (want_seq, want_seq)
            assert doc["subject_prev"] == (None if want_prev is None else want_prev.hex())
            last[subject] = (seq, h)
        assert {seq for seq, _ in last.values()} == {leaves_per_subject - 1}
        assert audit(s).entries == len(rows)


def _append_worker(db_url: str, keys_dir: str, citizens: list[str], worker: int, start: Any) -> None:
    rt = Runtime.build(make_settings(db_url, Path(keys_dir)))
    ids = [uuid.UUID(c) for c in citizens]
    plan = []
    for i in range(EVENTS_PER_WORKER):
        cid = None if i % 7 == 3 else ids[(worker + i) % len(ids)]
        plan.append(events.Event(events.RECORDS_READ, f"worker:{worker}", cid, details={"w": worker, "i": i}))
    start.wait(120)  # all at once, each with its own engine
    done, turn = 0, 0
    while done < len(plan):
        n = BATCHES[turn % len(BATCHES)]
        with session_scope(rt.sessions) as s:  # no retry: the append lock alone must keep order
            events.append_events(s, plan[done : done + n])
        done, turn = done + n, turn + 1
    rt.close()


def test_concurrent_appenders_get_one_gapless_order_and_intact_chains(
    runtime: Runtime, db_url: str, keys_dir: Path, on_postgres: bool
) -> None:
    if not on_postgres:
        pytest.skip("needs PDS_TEST_DATABASE_URL to name a PostgreSQL database (SQLite has one writer)")
    # no entries yet: the workers race for every citizen's first entry (and pseudonym key) too
    citizens = [add_citizen(runtime, f"Person {i}") for i in range(5)]
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WORKERS)
    procs = [
        ctx.Process(target=_append_worker, args=(db_url, str(keys_dir), [str(c) for c in citizens], w, start))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    total = WORKERS * EVENTS_PER_WORKER
    with session_scope(runtime.sessions) as s:
        rows = entries(s)
        assert [r[0] for r in rows] == list(range(total))
        assert count(s, LedgerDetail) == total
        by_worker: dict[int, list[int]] = {}
        writer: dict[int, int] = {}
        chained = 0
        for citizen in citizens:
            subject = events.pseudonym(s, citizen)
            theirs = [r for r in rows if r[3] == subject]
            prev = None
            for seq, (_, leaf, h, _, column_seq) in enumerate(theirs):
                doc = json.loads(leaf)
                assert (doc["subject_seq"], column_seq) == (seq, seq)
                assert doc["subject_prev"] == (None if prev is None else prev.hex())
                prev = h
            history = events.history(s, citizen, limit=total)
            assert [item.position for item in history] == [r[0] for r in theirs]
            mine: dict[int, list[int]] = {}
            for item in history:
                mine.setdefault(item.details["w"], []).append(item.details["i"])
                writer[item.position] = item.details["w"]
            for worker, order in mine.items():  # each worker's events keep the order it wrote them in
                assert order == sorted(order)
                by_worker.setdefault(worker, []).extend(order)
            chained += len(theirs)
        system = [r for r in rows if r[3] is None]
        assert chained + len(system) == total
        assert len(system) == WORKERS * sum(1 for i in range(EVENTS_PER_WORKER) if i % 7 == 3)
        head = runtime.checkpoints(s).make()
    assert head is not None and head.tree_size == total
    assert head.root == root_from_leaf_hashes(r[2] for r in rows)
    in_order = [writer[p] for p in sorted(writer)]
    switches = sum(a != b for a, b in pairwise(in_order))
    assert switches > WORKERS  # the workers really did interleave, not run one after another
    per_worker = sum(1 for i in range(EVENTS_PER_WORKER) if i % 7 != 3)
    assert {w: len(i) for w, i in by_worker.items()} == dict.fromkeys(range(WORKERS), per_worker)
    with session_scope(runtime.read_sessions) as s:
        result = audit(s)
        assert (result.entries, result.root) == (total, head.root)
        positions = s.execute(text("SELECT count(DISTINCT position) FROM ledger_entry")).scalar_one()
        assert positions == total

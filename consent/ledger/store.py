"""The log in the database: append leaves under one lock, and read roots and proofs in one query each.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock (a row lock on the last
entry locks nothing on an empty table and does not stop two appenders reading the same head); on
SQLite by the write transaction itself, which pds always begins IMMEDIATE. The lock is held until
the caller's transaction ends, so an entry commits or rolls back with the action it records.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from consent.ledger.canonical import MAX_SAFE_INTEGER, canonical_string
from consent.ledger.merkle import EMPTY_ROOT, consistency_proof, inclusion_proof, node_hash
from consent.ledger.models import LedgerEntry, LedgerNode
from consent.ledger.subtrees import MemorySubtreeStore
from consent.ledger.verify import leaf_hash

LEAF_VERSION = 1
# pg_advisory_xact_lock takes a bigint; any constant that no other code uses will do.
APPEND_LOCK_KEY = int.from_bytes(hashlib.sha256(b"pds/ledger/append").digest()[:8], "big", signed=True)

FEW_SUBJECTS = 4  # up to this many subjects, size, frontier and heads are read in one query
_E = LedgerEntry.__table__.c  # type: ignore[attr-defined]
_N = LedgerNode.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PendingLeaf:
    """What a caller knows of an entry before it has a place in the log."""

    event: str
    time_us: int  # integer microseconds since the Unix epoch
    subject: bytes | None  # the citizen's pseudonym, or None for an event about no one
    commitment: bytes  # SHA-256(salt || canonical details)


@dataclass(frozen=True)
class Appended:
    position: int
    leaf: bytes
    leaf_hash: bytes


def time_us(when: dt.datetime) -> int:
    """Integer microseconds since the epoch: what PostgreSQL and SQLite both keep exactly."""
    delta = when.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def leaf_bytes(pending: PendingLeaf, *, seq: int | None, prev: bytes | None) -> bytes:
    """The leaf: RFC 8785 canonical JSON, holding no personal data (the subject is a keyed pseudonym).

    Written out directly, members already in canonical order, because every append makes one and the
    general encoder is the slowest step of an append; tests hold it equal to `canonical_json` of the
    same members.
    """
    if isinstance(seq, bool) or not (seq is None or 0 <= seq <= MAX_SAFE_INTEGER):
        raise ValueError(f"subject sequence {seq!r} is not a whole number in range")
    if not 0 <= pending.time_us <= MAX_SAFE_INTEGER:
        raise ValueError(f"time {pending.time_us!r} is not in range")
    subject = f'"{pending.subject.hex()}"' if pending.subject is not None else "null"
    previous = f'"{prev.hex()}"' if prev is not None else "null"
    return (
        f'{{"commitment":"{pending.commitment.hex()}","event":{canonical_string(pending.event)},'
        f'"subject":{subject},"subject_prev":{previous},"subject_seq":{"null" if seq is None else seq},'
        f'"time_us":{int(pending.time_us)},"v":{LEAF_VERSION}}}'
    ).encode()


def leaf_members(pending: PendingLeaf, *, seq: int | None, prev: bytes | None) -> dict[str, object]:
    """The same leaf as a mapping, for `canonical_json` (and the test that keeps the two equal)."""
    return {
        "v": LEAF_VERSION,
        "event": pending.event,
        "time_us": pending.time_us,
        "subject": pending.subject.hex() if pending.subject is not None else None,
        "subject_seq": seq,
        "subject_prev": prev.hex() if prev is not None else None,
        "commitment": pending.commitment.hex(),
    }


def lock(session: Session) -> None:
    """Serialise appenders until this transaction ends (PostgreSQL; SQLite's write lock already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})


def tree_size(session: Session) -> int:
    last = session.scalar(select(func.max(_E.position)))
    return 0 if last is None else int(last) + 1


def frontier_keys(size: int) -> list[tuple[int, int]]:
    """The complete subtrees [0, size) splits into, largest first, as (level, position) keys."""
    keys = []
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, (size >> level) - 1))
    return keys


# One query, one fixed statement for any set of keys, each key a primary-key lookup. Not
# (level, position) IN ((..), ..): SQLite plans a row-value IN list as a scan of the whole table,
# so every append, root and proof read all of ledger_node; and a statement built per key set costs
# SQLAlchemy more than the query itself.
_READ_NODES = {
    "postgresql": text(
        "SELECT 0, position, leaf_hash FROM ledger_entry WHERE position = ANY(CAST(:leaves AS bigint[])) "
        "UNION ALL "
        "SELECT n.level, n.position, n.hash "
        "FROM unnest(CAST(:levels AS smallint[]), CAST(:positions AS bigint[])) AS k(level, position) "
        "JOIN ledger_node AS n ON n.level = k.level AND n.position = k.position"
    ),
    "sqlite": text(
        "SELECT 0, position, leaf_hash FROM ledger_entry "
        "WHERE position IN (SELECT value FROM json_each(:leaves)) "
        "UNION ALL "
        "SELECT level, position, hash FROM ledger_node WHERE (level, position) IN "
        "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:nodes))"
    ),
}


def read_nodes(session: Session, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Fetch node hashes by (level, position) in one query; level 0 comes from the entries."""
    wanted = set(keys)
    if not wanted:
        return {}
    leaves = [p for level, p in wanted if level == 0]
    inner = [(level, p) for level, p in wanted if level > 0]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        params: dict[str, object] = {
            "leaves": leaves,
            "levels": [level for level, _ in inner],
            "positions": [p for _, p in inner],
        }
    else:
        params = {"leaves": json.dumps(leaves), "nodes": json.dumps(inner)}
    found: dict[tuple[int, int], bytes] = {}
    for level, position, h in session.execute(_READ_NODES.get(dialect, _READ_NODES["sqlite"]), params):
        found[(level, position)] = h
    missing = wanted - found.keys()
    if missing:
        level, position = min(missing)
        raise LookupError(f"the ledger has no node at level {level}, position {position}")
    return found


@dataclass
class LogState:
    """What an append needs to know of the log, read under the append lock: its size, the frontier
    (the complete subtrees it splits into) and the last (seq, leaf hash) of some subjects."""

    size: int
    frontier: dict[tuple[int, int], bytes]
    heads: dict[bytes, tuple[int, bytes]]
    subjects: set[bytes]  # whose heads were read; one of them missing from `heads` has no entry yet


# Each subject's last (seq, leaf hash): one index seek per subject, however long their history (a
# max() grouped by subject reads every entry of each).
_PG_HEADS = (
    "SELECT 'h', q.i - 1, h.subject_seq, h.leaf_hash, NULL, NULL "
    "FROM unnest(CAST(:subjects AS bytea[])) WITH ORDINALITY AS q(subject, i) CROSS JOIN LATERAL "
    "(SELECT subject_seq, leaf_hash FROM ledger_entry WHERE subject = q.subject "
    "ORDER BY subject_seq DESC LIMIT 1) AS h"
)
HEADS_PER_QUERY = 400  # SQLite's compound SELECT holds at most 500 terms

# The log's state in one query: size, frontier and subject heads, as rows (tag, n1, n2, b, t1, t2):
# ('s', size), ('n', level, position, hash), ('h', subject's index, seq, leaf hash). t1 and t2 are
# for callers that add rows of their own with UNION ALL (consent.events adds the subjects' data keys).
# The frontier is worked out from the size in SQL: one round trip where it took two.
STATE_SQL = {
    "postgresql": (
        "WITH s AS (SELECT coalesce(max(position) + 1, 0) AS size FROM ledger_entry), "  # noqa: S608 (constants only)
        "f AS (SELECT lv AS level, (s.size >> lv) - 1 AS position "
        "FROM s, generate_series(0, 62) AS lv WHERE (s.size >> lv) & 1 = 1) "
        "SELECT 's' AS tag, s.size AS n1, CAST(NULL AS bigint) AS n2, CAST(NULL AS bytea) AS b, "
        "CAST(NULL AS text) AS t1, CAST(NULL AS text) AS t2 FROM s "
        "UNION ALL SELECT 'n', 0, e.position, e.leaf_hash, NULL, NULL "
        "FROM f JOIN ledger_entry AS e ON e.position = f.position WHERE f.level = 0 "
        "UNION ALL SELECT 'n', n.level, n.position, n.hash, NULL, NULL "
        "FROM f JOIN ledger_node AS n ON n.level = f.level AND n.position = f.position WHERE f.level > 0 "
        "UNION ALL " + _PG_HEADS
    ),
    "sqlite": (
        "WITH s(size) AS (SELECT coalesce(max(position) + 1, 0) FROM ledger_entry), "
        "lv(level) AS (SELECT 0 UNION ALL SELECT level + 1 FROM lv WHERE level < 62), "
        "f(level, position) AS (SELECT level, (size >> level) - 1 FROM lv, s WHERE (size >> level) & 1) "
        "SELECT 's' AS tag, size AS n1, NULL AS n2, NULL AS b, NULL AS t1, NULL AS t2 FROM s "
        "UNION ALL SELECT 'n', 0, e.position, e.leaf_hash, NULL, NULL "
        "FROM f JOIN ledger_entry AS e ON e.position = f.position WHERE f.level = 0 "
        "UNION ALL SELECT 'n', n.level, n.position, n.hash, NULL, NULL "
        "FROM f JOIN ledger_node AS n ON n.level = f.level AND n.position = f.position WHERE f.level > 0"
    ),
}
# SQLite has no arrays: one bound subject per head, each an index seek.
_SQLITE_HEAD = (
    " UNION ALL SELECT 'h', {i}, seq, h, NULL, NULL FROM (SELECT subject_seq AS seq, leaf_hash AS h "
    "FROM ledger_entry WHERE subject = :s{i} ORDER BY subject_seq DESC LIMIT 1)"
)


def state_sql(dialect: str, subjects: int) -> str:
    """The state query for this many subjects (their heads are looked up one index seek each)."""
    if dialect == "postgresql":
        return STATE_SQL[dialect]
    return STATE_SQL["sqlite"] + _sqlite_heads(subjects)


def _sqlite_heads(subjects: int) -> str:
    """One `UNION ALL` term a subject: its last entry by an index seek."""
    return "".join(_SQLITE_HEAD.format(i=i) for i in range(subjects))


@functools.lru_cache(maxsize=64)
def _heads_text(dialect: str, subjects: int) -> TextClause:
    """The heads alone, in the state query's row shape (as `_state_text` caches the state query)."""
    if dialect == "postgresql":
        return text(_PG_HEADS)
    return text(_sqlite_heads(subjects).removeprefix(" UNION ALL "))


def state_params(dialect: str, subjects: Sequence[bytes]) -> dict[str, object]:
    if dialect == "postgresql":
        return {"subjects": list(subjects)}
    return {f"s{i}": s for i, s in enumerate(subjects)}


def parse_state(rows: Iterable[Sequence[object]], subjects: Sequence[bytes]) -> LogState:
    """The LogState in rows of the state query; rows with other tags are the caller's and skipped."""
    size, frontier, heads = None, {}, {}
    for tag, n1, n2, b, *_ in rows:
        if tag == "s":
            size = int(n1)  # type: ignore[call-overload]
        elif tag == "n":
            frontier[(int(n1), int(n2))] = bytes(b)  # type: ignore[call-overload, arg-type]
        elif tag == "h":
            heads[subjects[int(n1)]] = (int(n2), bytes(b))  # type: ignore[call-overload, arg-type]
    assert size is not None  # the size row is always there (an aggregate)
    missing = set(frontier_keys(size)) - frontier.keys()
    if missing:
        level, position = min(missing)
        raise LookupError(f"the ledger has no node at level {level}, position {position}")
    return LogState(size, frontier, heads, set(subjects))


def read_state(session: Session, subjects: Iterable[bytes]) -> LogState:
    """The log's state in one query (call it under the append lock)."""
    todo = list(subjects)
    dialect = session.get_bind().dialect.name
    rows = session.execute(_state_text(dialect, len(todo)), state_params(dialect, todo))
    return parse_state(rows, todo)


@functools.lru_cache(maxsize=64)
def _state_text(dialect: str, subjects: int) -> TextClause:
    return text(state_sql(dialect, subjects))


def append(
    session: Session, pending: Sequence[PendingLeaf], *, locked: bool = False, state: LogState | None = None
) -> list[Appended]:
    """Add leaves at the end of the log, in order, inside the caller's transaction.

    `locked`: the caller already took the append lock in this transaction (one round trip fewer).
    `state`: the caller already read the log's state under that lock (read_state, or its own query
    around state_sql); heads of subjects it did not cover are read here.
    """
    if not pending:
        return []
    if not locked:
        lock(session)
    subjects = {p.subject for p in pending if p.subject is not None}
    if state is None and len(subjects) <= FEW_SUBJECTS:
        state = read_state(session, subjects)
    if state is None:
        size = tree_size(session)
        frontier = read_nodes(session, frontier_keys(size))
        heads = _subject_heads(session, subjects)
    else:
        size, frontier, heads = state.size, state.frontier, dict(state.heads)
        heads.update(_subject_heads(session, subjects - state.subjects))
    store = MemorySubtreeStore(dict(frontier), tree_size=size)

    entries, done = [], []
    for item in pending:
        seq = prev = None
        if item.subject is not None:
            last = heads.get(item.subject)
            seq, prev = (0, None) if last is None else (last[0] + 1, last[1])
        leaf = leaf_bytes(item, seq=seq, prev=prev)
        h = leaf_hash(leaf)
        position = store.append(h)
        if item.subject is not None:
            heads[item.subject] = (seq, h)  # type: ignore[assignment]
        entries.append(
            {"position": position, "leaf": leaf, "leaf_hash": h, "subject": item.subject, "subject_seq": seq}
        )
        done.append(Appended(position, leaf, h))
    nodes = [
        {"level": level, "position": p, "hash": h}
        for (level, p), h in store.nodes.items()  # type: ignore[attr-defined]
        if level > 0 and (level, p) not in frontier
    ]
    session.execute(insert(LedgerEntry.__table__), entries)  # Core: the ORM's bulk path costs more
    if nodes:
        session.execute(insert(LedgerNode.__table__), nodes)
    return done


def _subject_heads(session: Session, subjects: set[bytes]) -> dict[bytes, tuple[int, bytes]]:
    """Each subject's last (sequence number, leaf hash), read under the append lock."""
    heads: dict[bytes, tuple[int, bytes]] = {}
    todo = list(subjects)
    dialect = session.get_bind().dialect.name
    for start in range(0, len(todo), HEADS_PER_QUERY):
        chunk = todo[start : start + HEADS_PER_QUERY]
        rows = session.execute(_heads_text(dialect, len(chunk)), state_params(dialect, chunk))
        for _, i, seq, h, *_ in rows:
            heads[chunk[int(i)]] = (int(seq), bytes(h))
    return heads


class _Recorder:
    """A SubtreeStore that notes which nodes a proof reads and answers with placeholders.

    Which nodes a proof or root needs depends only on the sizes, never on the hashes, so running
    the computation once against this tells us everything to fetch in one query.
    """

    def __init__(self, size: int) -> None:
        self.tree_size = size
        self.keys: set[tuple[int, int]] = set()

    def subtree_hash(self, start: int, size: int) -> bytes:
        self.keys.add((size.bit_length() - 1, start // size))
        return b"\x00" * 32


class _Fetched:
    def __init__(self, size: int, nodes: dict[tuple[int, int], bytes]) -> None:
        self.tree_size = size
        self.nodes = nodes

    def subtree_hash(self, start: int, size: int) -> bytes:
        return self.nodes[(size.bit_length() - 1, start // size)]


def _planned(session: Session, size: int, compute):  # type: ignore[no-untyped-def]
    recorder = _Recorder(size)
    compute(recorder)
    return compute(_Fetched(size, read_nodes(session, recorder.keys)))


def root(session: Session, size: int) -> bytes:
    """MTH of the first `size` leaves: its frontier folded right to left."""
    if size == 0:
        return EMPTY_ROOT
    nodes = read_nodes(session, frontier_keys(size))
    hashes = [nodes[k] for k in frontier_keys(size)]
    result = hashes.pop()
    while hashes:
        result = node_hash(hashes.pop(), result)
    return result


def prove_inclusion(session: Session, position: int, size: int) -> list[bytes]:
    return _planned(session, size, lambda store: inclusion_proof(store, position, size))  # type: ignore[no-any-return]


def prove_consistency(session: Session, size1: int, size2: int) -> list[bytes]:
    return _planned(session, size2, lambda store: consistency_proof(store, size1, size2))  # type: ignore[no-any-return]

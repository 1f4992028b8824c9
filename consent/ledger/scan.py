"""The audit's inner loop: one aligned chunk of the log, hashed and checked, ready to stitch to the rest.

A chunk starts at a multiple of CHUNK_SIZE (a power of two), so each full chunk is one complete subtree
of the RFC 9162 tree and the chunks can be scanned in any order, by several processes, and combined.
A process scans a run of consecutive chunks and follows each citizen's chain through it, so only the
run's first entry of each citizen is left to stitch to the runs before. Per entry the loop does only
what it must: the leaf hash and one comparison of the chain members with the bytes they must be; the
node hashes follow, a level at a time. Whatever does not match is diagnosed the slow way, once.
"""

from __future__ import annotations

import hashlib
import re
from binascii import hexlify
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CHUNK_LEVEL = 15
CHUNK_SIZE = 1 << CHUNK_LEVEL  # entries per chunk: 32,768, a complete subtree of the tree

# A leaf's chain members, read where its first `"subject":` stands (after the 64 hex digits of the
# commitment). In a canonical leaf that is the member itself: a quote inside a string is escaped.
_KEY = b'"subject":'
_KEY_FROM = 80  # len('{"commitment":"') + 64 + 1: the earliest offset a member after it can start
_CHAIN = re.compile(
    rb'"subject":(?:null|"([0-9a-f]{64})"),"subject_prev":(?:null|"([0-9a-f]{64})"),"subject_seq":(null|0|[1-9][0-9]*),'
)
_NO_SUBJECT = b'"subject":null,"subject_prev":null,"subject_seq":null,'
_PREFIX = len(b'"subject":"') + 64 + len(b'","subject_prev":"')  # chain members up to the prev hash
_TAILS = [b'","subject_seq":%d,' % n for n in range(4096)]  # what follows the prev hash, made once


@dataclass
class ChunkResult:
    """What a chunk's scan leaves for the stitching: subjects are the `ledger_entry.subject` bytes, and a
    citizen's chain state is (the sequence number their next entry must have, the chain members it must
    start with, from `"subject":` to the comma after the sequence number)."""

    start: int
    count: int = 0
    stack: list[bytes] = field(default_factory=list)  # complete subtrees of the chunk, largest first
    snapshots: dict[int, list[bytes]] = field(default_factory=dict)  # tree size -> stack at that size
    # each citizen first seen in the run, in this chunk: either their chain starts here (sequence 0)...
    new: set[bytes] = field(default_factory=set)
    # ...or it goes on from the runs before: this entry's sequence and chain members must be that state
    joins: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    first_at: dict[bytes, int] = field(default_factory=dict)  # subject -> position of its first entry
    last: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)  # subject -> chain state after it
    # (only in a run's last chunk: the chunks before it in the run hand their state on directly)
    failure: tuple[int, str] | None = None  # the first bad entry in the chunk, and why


def chunk_query(start: int, stop: int) -> str:
    # integers we made, so formatting them in is safe, and the same text serves every driver
    return (
        "SELECT leaf, leaf_hash, subject, subject_seq FROM ledger_entry "  # noqa: S608 (two ints)
        f"WHERE position >= {int(start)} AND position < {int(stop)} ORDER BY position"
    )


def _members_up_to_prev(subject: bytes) -> bytes:
    """How a citizen's chain members start, up to the first digit of the previous leaf's hash."""
    return b'"subject":"%s","subject_prev":"' % hexlify(subject)


def scan_rows(
    cursor: Any, start: int, checkpoint_sizes: list[int], state: dict[bytes, tuple[int, bytes]]
) -> ChunkResult:
    """Check the rows (leaf, leaf_hash, subject, subject_seq) of positions start, start+1... of one chunk.

    1. Each leaf hashes (RFC 9162, 0x00 prefix) to its stored leaf hash.
    2. An entry about no one says so in its leaf, and has no sequence column.
    3. A citizen's entry after their first in the run holds, at its first `"subject":`, exactly the
       members their previous entry calls for (their subject, that entry's leaf hash, its sequence + 1),
       and its sequence column is that number. Their first entry in the run (`state` holds the chain
       state the run's chunks so far left) is read with _CHAIN and held to its columns here, and to the
       runs before by the stitching.
    4. The node hashes, level by level, and the stack of complete subtrees at each checkpoint inside.
    """
    sha, key, key_from = hashlib.sha256, _KEY, _KEY_FROM
    out = ChunkResult(start)
    hashes: list[bytes] = []
    keep = hashes.append
    expect = state.get
    snaps = sorted(size - start for size in checkpoint_sizes)
    for leaf, stored, subject, seq in cursor.fetchall():
        h = sha(b"\x00" + leaf).digest()
        if h != stored:  # 1
            changed = f"entry {start + len(hashes)} does not hash to its stored leaf hash (changed)"
            return _failed(out, hashes, changed, snaps)
        if subject is None:  # 2
            if seq is not None or not leaf.startswith(_NO_SUBJECT, leaf.find(key, key_from)):
                return _failed(out, hashes, _diagnose(start + len(hashes), leaf, subject, seq, None), snaps)
        else:
            known = expect(subject)
            if known is None or seq != known[0] or not leaf.startswith(known[1], leaf.find(key, key_from)):
                if known is not None:  # 3
                    return _failed(
                        out, hashes, _diagnose(start + len(hashes), leaf, subject, seq, known), snaps
                    )
                failure = _first_entry(out, start + len(hashes), leaf, subject, seq)
                if failure is not None:
                    return _failed(out, hashes, failure, snaps)
                start_of = _members_up_to_prev(subject)
            else:
                start_of = known[1][:_PREFIX]
            seq += 1  # never negative here: a first entry's sequence matched the digits in its leaf
            try:
                tail = _TAILS[seq]
            except IndexError:
                tail = b'","subject_seq":%d,' % seq
            state[subject] = (seq, start_of + hexlify(h) + tail)
        keep(h)
    _tree(out, hashes, snaps)
    return out


def _first_entry(
    out: ChunkResult, position: int, leaf: bytes, subject: bytes, seq: int | None
) -> tuple[int, str] | None:
    """A citizen's first entry in the run: its members must match its columns; whether they continue
    the chain is for the stitching (a chain that starts here must start at sequence 0 with no prev)."""
    at = leaf.find(_KEY, _KEY_FROM)
    match = _CHAIN.match(leaf, at) if at >= 0 else None
    if seq is None or match is None or match[1] != hexlify(subject) or match[3] != b"%d" % seq:
        return _diagnose(position, leaf, subject, seq, None)
    out.first_at[subject] = position
    if seq == 0 and match[2] is None:
        out.new.add(subject)
    else:
        out.joins[subject] = (seq, match[0])
    return None


def _tree(out: ChunkResult, hashes: list[bytes], snaps: list[int]) -> None:
    """The chunk's node hashes a level at a time; its stack, and the stack at each checkpoint in it."""
    sha = hashlib.sha256
    levels = [hashes]
    level = hashes
    while len(level) > 1:
        pairs = iter(level)
        level = [sha(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
        levels.append(level)
    out.count = len(hashes)
    out.stack = _stack(levels, len(hashes))
    for size in snaps:
        out.snapshots[out.start + size] = _stack(levels, size)


def _stack(levels: list[list[bytes]], size: int) -> list[bytes]:
    """The complete subtrees of the first `size` leaves, largest first."""
    stack, offset = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            stack.append(levels[level][offset >> level])
            offset += 1 << level
    return stack


def _failed(
    out: ChunkResult, hashes: list[bytes], failure: str | tuple[int, str], snaps: list[int]
) -> ChunkResult:
    """The chunk up to its first bad entry, with the checkpoints it held before it (checked first)."""
    out.failure = failure if isinstance(failure, tuple) else (out.start + len(hashes), failure)
    _tree(out, hashes, [size for size in snaps if size <= len(hashes)])
    return out


def _diagnose(
    position: int, leaf: bytes, subject: Any, seq: int | None, known: tuple[int, bytes] | None
) -> tuple[int, str]:
    """Why an entry's chain members are not what they should be, in the words the audit reports.
    `known` is the chain state the citizen's entries before this one left, if any."""
    at = leaf.find(_KEY, _KEY_FROM)
    match = _CHAIN.match(leaf, at) if at >= 0 else None
    if match is None:
        return position, f"entry {position} is not a pds ledger leaf"
    subject_hex, _, seq_text = match.groups()
    leaf_subject = subject_hex.decode() if subject_hex is not None else None
    leaf_seq = int(seq_text) if seq_text != b"null" else None
    column_subject = bytes(subject).hex() if subject is not None else None
    if (leaf_subject, leaf_seq) != (column_subject, seq):
        return position, f"entry {position}: its subject or sequence columns do not match its leaf (altered)"
    want_seq = 0 if known is None else known[0]
    return position, chain_break(position, leaf_seq, want_seq)


def chain_break(position: int, seq: int | None, want_seq: int) -> str:
    return (
        f"entry {position} breaks its citizen's chain: sequence {seq} after {want_seq - 1} "
        "(an entry of theirs was withheld, inserted or moved)"
    )


def raw_cursor(raw: Any) -> Any:
    """A cursor that takes bytea in PostgreSQL's binary format (no hex text to decode, half the bytes)."""
    driver = getattr(raw, "driver_connection", raw)
    if type(driver).__module__.startswith("psycopg"):
        return driver.cursor(binary=True)
    return raw.cursor()


@contextmanager
def in_position_order(cursor: Any) -> Iterator[None]:
    """PostgreSQL without statistics on ledger_entry (a freshly loaded log) plans a chunk as a bitmap
    scan and an on-disk sort of its rows; the primary key's index gives them in order for free. Sorting
    is turned off for the transaction meanwhile, and put back as it was (after an error the transaction
    is rolled back, and the setting with it)."""
    if not type(cursor).__module__.startswith("psycopg"):
        yield
        return
    cursor.execute("SHOW enable_sort")
    (before,) = cursor.fetchone()
    cursor.execute("SET LOCAL enable_sort = off")
    yield
    cursor.execute("SELECT set_config('enable_sort', %s, true)", (before,))


def scan_run(cursor: Any, chunks: list[tuple[int, int]], jobs: list[list[int]]) -> list[ChunkResult]:
    """Scan consecutive chunks in order, each citizen's chain followed from one to the next; the last
    result carries the chain state the run leaves. Stops after a chunk with a fault."""
    state: dict[bytes, tuple[int, bytes]] = {}  # subject -> the sequence and members its next entry needs
    results = []
    with in_position_order(cursor):
        for (start, stop), sizes in zip(chunks, jobs, strict=True):
            cursor.execute(chunk_query(start, stop))
            results.append(scan_rows(cursor, start, sizes, state))
            if results[-1].failure is not None:
                return results
    if results:
        results[-1].last = state
    return results


# -- in a worker process ----------------------------------------------------------------------

_ENGINES: dict[str, Any] = {}


def scan_run_in_worker(url: str, chunks: list[tuple[int, int]], jobs: list[list[int]]) -> list[ChunkResult]:
    """`scan_run` over this process's own connection (never one inherited from the parent)."""
    from pds.db import make_engine

    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = make_engine(url)
    raw = engine.raw_connection()
    try:
        return scan_run(raw_cursor(raw), chunks, jobs)
    finally:
        raw.rollback()
        raw.close()

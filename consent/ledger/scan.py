"""The audit's inner loop: one aligned chunk of the log, hashed and checked, ready to stitch to the rest.

A chunk starts at a multiple of CHUNK_SIZE (a power of two), so each full chunk is one complete subtree
of the RFC 9162 tree and the chunks can be scanned in any order, by several processes, and combined.
Per entry the loop does only what it must: the leaf hash, one node hash on average, and a comparison of
the chain members at their canonical offsets. Whatever does not match is diagnosed the slow way, once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

CHUNK_LEVEL = 16
CHUNK_SIZE = 1 << CHUNK_LEVEL  # entries per chunk: 65,536, a complete subtree of the tree

_CHAIN = re.compile(
    rb'"subject":(?:null|"([0-9a-f]{64})"),"subject_prev":(?:null|"([0-9a-f]{64})"),"subject_seq":(null|\d+),'
)
_NO_SUBJECT = b'"subject":null,"subject_prev":null,"subject_seq":null,'


@dataclass
class ChunkResult:
    start: int
    count: int = 0
    stack: list[bytes] = field(default_factory=list)  # complete subtrees of the chunk, largest first
    snapshots: dict[int, list[bytes]] = field(default_factory=dict)  # tree size -> stack at that size
    first: dict[str, tuple[int, int, str | None]] = field(default_factory=dict)  # subject -> pos, seq, prev
    last: dict[str, tuple[int, str]] = field(default_factory=dict)  # subject -> seq, leaf hash hex
    failure: tuple[int, str] | None = None  # the first bad entry in the chunk, and why


def chunk_query(start: int, stop: int) -> str:
    # integers we made, so formatting them in is safe, and the same text serves every driver
    return (
        "SELECT leaf, leaf_hash, subject, subject_seq FROM ledger_entry "  # noqa: S608 (two ints)
        f"WHERE position >= {int(start)} AND position < {int(stop)} ORDER BY position"
    )


def scan_rows(cursor: Any, start: int, checkpoint_sizes: list[int]) -> ChunkResult:
    """Check the rows (leaf, leaf_hash, subject, subject_seq) of positions start, start+1... of one chunk.

    A citizen's entry after their first in the chunk is checked by slicing its chain members out of the
    leaf at their canonical offsets (the first `"subject_prev":"` in a canonical leaf is that member:
    a quote inside a string is always escaped); anything unexpected is diagnosed the slow way, once.
    """
    sha, search = hashlib.sha256, _CHAIN.search
    out = ChunkResult(start)
    stack = out.stack
    snaps = sorted(size - start for size in checkpoint_sizes)
    snaps.append(-1)
    next_snap, s_i = snaps[0], 0
    first = out.first
    # subject -> its last sequence number, that leaf's hash (hex), the subject (hex), and how the next
    # leaf's sequence member must read
    last: dict[bytes, tuple[int, bytes, bytes, bytes]] = {}
    last_get = last.get
    n = 0
    for leaf, stored, subject, seq in cursor.fetchall():
        h = sha(b"\x00" + leaf).digest()
        if h != stored:
            return _failed(out, n, f"entry {start + n} does not hash to its stored leaf hash (changed)")
        if subject is None:
            if seq is not None or _NO_SUBJECT not in leaf:
                return _failed(out, n, _diagnose(start + n, leaf, subject, seq, None))
        else:
            known = last_get(subject)
            i = leaf.find(b'"subject_prev":"', 80)
            if (
                known is not None
                and seq == known[0] + 1
                and leaf[i + 16 : i + 80] == known[1]
                and leaf[i - 66 : i - 2] == known[2]
                and leaf[i - 77 : i - 66] == b'"subject":"'
                and leaf[i + 80 : i + 80 + len(known[3])] == known[3]
            ):
                shx = known[2]
            else:
                if known is not None:
                    return _failed(out, n, _diagnose(start + n, leaf, subject, seq, known[:1]))
                shx = subject.hex().encode()
                match = search(leaf)
                leaf_seq = match.group(3) if match is not None else b"null"
                if match is None or match.group(1) != shx or leaf_seq == b"null" or int(leaf_seq) != seq:
                    return _failed(out, n, _diagnose(start + n, leaf, subject, seq, None))
                prev = match.group(2)
                first[shx.decode()] = (start + n, seq, prev.decode() if prev is not None else None)
            last[subject] = (seq, h.hex().encode(), shx, b'","subject_seq":%d,' % (seq + 1))
        stack.append(h)
        n += 1
        if not n & 1:
            m = n
            while not m & 1:
                right = stack.pop()
                stack[-1] = sha(b"\x01" + stack[-1] + right).digest()
                m >>= 1
        if n == next_snap:
            out.snapshots[start + n] = list(stack)
            s_i += 1
            next_snap = snaps[s_i]
    out.count = n
    out.last = {shx.decode(): (seq, hx.decode()) for seq, hx, shx, _ in last.values()}
    return out


def _failed(out: ChunkResult, n: int, failure: str | tuple[int, str]) -> ChunkResult:
    out.failure = failure if isinstance(failure, tuple) else (out.start + n, failure)
    out.count = n
    return out


def _diagnose(
    position: int, leaf: bytes, subject: Any, seq: int | None, known: tuple[int, Any] | None
) -> tuple[int, str]:
    """Why an entry's chain members are not what they should be, in the words the audit reports."""
    match = _CHAIN.search(leaf)
    if match is None:
        return position, f"entry {position} is not a pds ledger leaf"
    subject_hex, _, seq_text = match.groups()
    leaf_subject = subject_hex.decode() if subject_hex is not None else None
    leaf_seq = int(seq_text) if seq_text != b"null" else None
    column_subject = bytes(subject).hex() if subject is not None else None
    if (leaf_subject, leaf_seq) != (column_subject, seq):
        return position, f"entry {position}: its subject or sequence columns do not match its leaf (altered)"
    want_seq = 0 if known is None else known[0] + 1
    return position, (
        f"entry {position} breaks its citizen's chain: sequence {leaf_seq} after {want_seq - 1} "
        "(an entry of theirs was withheld, inserted or moved)"
    )


def raw_cursor(raw: Any) -> Any:
    """A cursor that takes bytea in PostgreSQL's binary format (no hex text to decode, half the bytes)."""
    driver = getattr(raw, "driver_connection", raw)
    if type(driver).__module__.startswith("psycopg"):
        return driver.cursor(binary=True)
    return raw.cursor()


# -- in a worker process ----------------------------------------------------------------------

_ENGINES: dict[str, Any] = {}


def scan_chunk_in_worker(url: str, start: int, stop: int, checkpoint_sizes: list[int]) -> ChunkResult:
    """Scan one chunk over this process's own connection (never one inherited from the parent)."""
    from pds.db import make_engine

    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = make_engine(url)
    raw = engine.raw_connection()
    try:
        cursor = raw_cursor(raw)
        cursor.execute(chunk_query(start, stop))
        return scan_rows(cursor, start, checkpoint_sizes)
    finally:
        raw.rollback()
        raw.close()

"""`pds ledger verify`: recompute the whole log from its entries and hold it to every signed checkpoint.

One pass in position order: each leaf is hashed again (RFC 9162 leaf hash) and checked against the
stored hash; each citizen's chain (sequence number and previous leaf hash) is followed; the root is
rebuilt incrementally and compared with the signed root of every checkpoint as the pass reaches its
size. Checkpoint signatures are checked with the log's own keys, and each consecutive pair is also
checked with a consistency proof built from the stored subtree hashes, as a client would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from consent.ledger import store
from consent.ledger.checkpoint import verifier_key_string
from consent.ledger.merkle import EMPTY_ROOT
from consent.ledger.models import LedgerCheckpoint, LedgerSigner
from consent.ledger.verify import (
    VerificationError,
    leaf_hash,
    node_hash,
    parse_verifier_key,
    verify_checkpoint,
    verify_consistency,
)

CHUNK = 20_000
# A leaf is canonical JSON, so its members come in one order; this reads the chain fields without
# parsing the whole leaf (the audit's cost is dominated by what it does per entry).
_CHAIN = re.compile(
    rb'"subject":(?:null|"([0-9a-f]{64})"),"subject_prev":(?:null|"([0-9a-f]{64})"),"subject_seq":(null|\d+)'
)


class AuditFailure(Exception):
    """The log does not check out; the message names the first bad entry or checkpoint."""


@dataclass(frozen=True)
class AuditResult:
    entries: int
    root: bytes
    checkpoints: int


class _Accumulator:
    """RFC 9162 MTH over a stream of leaf hashes, readable at any point (the root of what came so far)."""

    def __init__(self) -> None:
        self.stack: list[bytes] = []
        self.count = 0

    def add(self, h: bytes) -> None:
        stack = self.stack
        stack.append(h)
        self.count += 1
        count = self.count
        while not count & 1:
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
            count >>= 1

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        result = self.stack[-1]
        for h in reversed(self.stack[:-1]):
            result = node_hash(h, result)
        return result


def audit(
    session: Session, *, progress: Callable[[int], None] | None = None, pinned_key: str | None = None
) -> AuditResult:
    """Check the whole log. With `pinned_key` (the published verifier key), checkpoints must be signed by
    it; without, by any key in the log's own signer table, which whoever can write to it could extend."""
    checkpoints = _signed_checkpoints(session, pinned_key)
    due = iter(checkpoints)
    next_cp = next(due, None)
    acc = _Accumulator()
    heads: dict[bytes, tuple[int, bytes]] = {}
    expected = 0
    conn = session.connection()
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(
        text("SELECT position, leaf, leaf_hash, subject, subject_seq FROM ledger_entry ORDER BY position")
    )
    for rows in result.partitions(CHUNK):
        for position, leaf, stored, subject, seq in rows:
            if position != expected:
                if position > expected:
                    raise AuditFailure(f"entry {expected} is missing: the next entry is {position} (deleted)")
                raise AuditFailure(f"entry {position} appears twice")
            leaf = bytes(leaf)
            h = leaf_hash(leaf)
            if h != bytes(stored):
                raise AuditFailure(f"entry {position} does not hash to its stored leaf hash (changed)")
            _follow_chain(heads, position, leaf, h, (bytes(subject) if subject is not None else None, seq))
            acc.add(h)
            expected += 1
            while next_cp is not None and next_cp[0] == expected:
                if acc.root() != next_cp[1]:
                    raise AuditFailure(
                        f"checkpoint {next_cp[0]}: entries 0-{next_cp[0] - 1} do not hash to its signed root "
                        "(an entry was changed, inserted, removed or moved)"
                    )
                next_cp = next(due, None)
        if progress is not None:
            progress(len(rows))
    if next_cp is not None:
        raise AuditFailure(
            f"checkpoint {next_cp[0]} was signed over {next_cp[0]} entries "
            f"but the log holds {expected} (truncated)"
        )
    _check_consistency(session, checkpoints)
    return AuditResult(expected, acc.root(), len(checkpoints))


def _follow_chain(
    heads: dict[bytes, tuple[int, bytes]],
    position: int,
    leaf: bytes,
    h: bytes,
    columns: tuple[bytes | None, int | None],
) -> None:
    match = _CHAIN.search(leaf)
    if match is None:
        raise AuditFailure(f"entry {position} is not a pds ledger leaf")
    subject_hex, prev_hex, seq_text = match.groups()
    subject = bytes.fromhex(subject_hex.decode()) if subject_hex is not None else None
    seq = int(seq_text) if seq_text != b"null" else None
    # history() and the next append find a citizen's entries by these columns, not by the leaf
    if columns != (subject, seq):
        raise AuditFailure(
            f"entry {position}: its subject or sequence columns do not match its leaf (altered)"
        )
    if subject is None or seq is None:
        return
    last = heads.get(subject)
    want_seq, want_prev = (0, None) if last is None else (last[0] + 1, last[1].hex())
    got_prev = prev_hex.decode() if prev_hex is not None else None
    if seq != want_seq or got_prev != want_prev:
        raise AuditFailure(
            f"entry {position} breaks its citizen's chain: sequence {seq} after {want_seq - 1} "
            "(an entry of theirs was withheld, inserted or moved)"
        )
    heads[subject] = (seq, h)


def _signed_checkpoints(session: Session, pinned_key: str | None) -> list[tuple[int, bytes]]:
    """Every checkpoint as (size, signed root), each signature checked with the log's keys."""
    if pinned_key is not None:
        try:
            keys = [parse_verifier_key(pinned_key)]
        except VerificationError as exc:
            raise AuditFailure(f"the key given is not a verifier key: {exc}") from None
    else:
        keys = [
            parse_verifier_key(verifier_key_string(s.name, s.public_key))
            for s in session.scalars(select(LedgerSigner))
        ]
    out = []
    for row in session.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.tree_size)):
        signed = None
        for key in keys:
            try:
                signed = verify_checkpoint(row.note, key, origin=key.name)
                break
            except VerificationError:
                continue
        if signed is None:
            raise AuditFailure(
                f"checkpoint {row.tree_size}: its signature does not verify (forged or altered)"
            )
        if signed.size != row.tree_size or signed.root != row.root:
            raise AuditFailure(
                f"checkpoint {row.tree_size}: its row does not match what was signed (altered)"
            )
        out.append((signed.size, signed.root))
    return out


def _check_consistency(session: Session, checkpoints: list[tuple[int, bytes]]) -> None:
    """Each checkpoint extends the one before, by a proof from the stored subtree hashes."""
    for (size1, root1), (size2, root2) in pairwise(checkpoints):
        if size1 == 0:
            continue
        try:
            proof = store.prove_consistency(session, size1, size2)
            verify_consistency(size1=size1, size2=size2, root1=root1, root2=root2, proof=proof)
        except (VerificationError, LookupError) as exc:
            raise AuditFailure(
                f"checkpoint {size2}: the stored tree does not prove it extends checkpoint {size1} ({exc})"
            ) from None

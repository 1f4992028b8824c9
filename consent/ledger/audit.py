"""`pds ledger verify`: recompute the whole log from its entries and hold it to every signed checkpoint.

Every leaf is hashed again (RFC 9162 leaf hash) and checked against the stored hash; each citizen's chain
(sequence number and previous leaf hash) is followed and held to the index columns; the root is rebuilt
and compared with the signed root of every checkpoint (consent/ledger/scan.py does the per-entry work).
Checkpoint signatures are checked with the log's own keys (or the one key given), and each consecutive
pair is also checked with a consistency proof built from the stored subtree hashes, as a client would.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from multiprocessing import get_all_start_methods, get_context
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from consent.ledger import store
from consent.ledger.checkpoint import verifier_key_string
from consent.ledger.merkle import EMPTY_ROOT
from consent.ledger.models import LedgerCheckpoint, LedgerSigner
from consent.ledger.scan import (
    CHUNK_LEVEL,
    ChunkResult,
    chain_break,
    raw_cursor,
    scan_run,
    scan_run_in_worker,
)
from consent.ledger.verify import (
    VerificationError,
    node_hash,
    parse_verifier_key,
    verify_checkpoint,
    verify_consistency,
)

PARALLEL_MIN_CHUNKS = 4  # below this, starting worker processes costs more than it saves
MAX_WORKERS = 4


class AuditFailure(Exception):
    """The log does not check out; the message names the first bad entry or checkpoint."""


@dataclass(frozen=True)
class AuditResult:
    entries: int
    root: bytes
    checkpoints: int


def audit(
    session: Session,
    *,
    progress: Callable[[int], None] | None = None,
    pinned_key: str | None = None,
    workers: int | None = None,
    chunk_level: int = CHUNK_LEVEL,
) -> AuditResult:
    """Check the whole log. With `pinned_key` (the published verifier key), checkpoints must be signed by
    it; without, by any key in the log's own signer table, which whoever can write to it could extend.

    A large log is scanned in aligned chunks by several processes (`workers`, default: one per CPU, up to
    four), each taking one run of consecutive chunks; the result, and the first fault reported, are the
    same as a single pass in position order. Chunks hold 2**chunk_level entries (tests make them small to
    exercise the stitching).
    """
    checkpoints = _signed_checkpoints(session, pinned_key)
    signed = dict(checkpoints)
    if signed.get(0, EMPTY_ROOT) != EMPTY_ROOT:
        raise AuditFailure("checkpoint 0: its root is not the empty tree's")
    scan = _Scan(session, checkpoints, workers, chunk_level, progress)
    low, high = session.execute(
        text("SELECT (SELECT min(position) FROM ledger_entry), (SELECT max(position) FROM ledger_entry)")
    ).one()
    if low == 0:
        # Hope for no holes (counting the rows costs a tenth of a second at 1M): every chunk coming back
        # whole proves it, the primary key ruling out duplicates; one that does not is looked into.
        try:
            return scan.run(int(high) + 1, None, hoping=True)
        except _Holes:
            pass
    return scan.run(*_contiguous_prefix(session), hoping=False)


class _Holes(Exception):
    """The log has a hole the hopeful scan ran into: scan again up to it."""


@dataclass
class _Scan:
    """One pass over the entries, with what every pass needs."""

    session: Session
    checkpoints: list[tuple[int, bytes]]
    workers: int | None
    chunk_level: int
    progress: Callable[[int], None] | None

    def run(self, contiguous: int, gap: int | None, *, hoping: bool) -> AuditResult:
        """Scan entries 0 to `contiguous` - 1, stitch the chunks in position order, then hold the log to
        its checkpoints: none signed beyond it, each consistent with the one before."""
        chunk_size = 1 << self.chunk_level
        signed = dict(self.checkpoints)
        chunks = [(a, min(a + chunk_size, contiguous)) for a in range(0, contiguous, chunk_size)]
        sizes = [size for size, _ in self.checkpoints if size > 0]
        jobs = [[n for n in sizes if a < n <= b] for a, b in chunks]
        prefix: list[bytes] = []  # the complete chunks so far, folded as RFC 9162 does, largest first
        heads: dict[bytes, tuple[int, bytes]] = {}  # subject -> the chain state its entries so far left
        tail: list[bytes] = []
        for (a, b), result in zip(chunks, _scan_all(self.session, chunks, jobs, self.workers), strict=True):
            if hoping and (result.failure is not None or result.count != b - a):
                if _contiguous_prefix(self.session) != (contiguous, None):
                    raise _Holes
                hoping = False
            _stitch(result, prefix, heads, signed)
            if result.count != b - a:  # a failure ends the scan; _stitch raised it in position order
                raise AuditFailure(f"entry {a + result.count} could not be checked")
            if b - a == chunk_size:
                _push(prefix, result.stack[0], (a >> self.chunk_level) + 1)
            else:
                tail = result.stack
            if self.progress is not None:
                self.progress(b - a)
        if gap is not None:
            raise AuditFailure(f"entry {contiguous} is missing: the next entry is {gap} (deleted)")
        beyond = [size for size in sizes if size > contiguous]
        if beyond:
            raise AuditFailure(
                f"checkpoint {beyond[0]} was signed over {beyond[0]} entries "
                f"but the log holds {contiguous} (truncated)"
            )
        _check_consistency(self.session, self.checkpoints)
        return AuditResult(contiguous, _fold(prefix + tail), len(self.checkpoints))


def _contiguous_prefix(session: Session) -> tuple[int, int | None]:
    """How many entries run 0, 1, 2... without a hole, and where the log resumes after the first hole."""
    count, low, high = session.execute(
        text("SELECT count(*), min(position), max(position) FROM ledger_entry")
    ).one()
    if not count:
        return 0, None
    if low == 0 and high == count - 1:  # positions are a primary key: no duplicates, so no holes
        return int(count), None
    if low != 0:
        return 0, int(low)
    resumes = session.execute(
        text(
            "SELECT min(e.position) FROM ledger_entry e WHERE e.position > 0 AND NOT EXISTS "
            "(SELECT 1 FROM ledger_entry p WHERE p.position = e.position - 1)"
        )
    ).scalar_one()
    before = session.execute(
        text("SELECT max(position) FROM ledger_entry WHERE position < :p"), {"p": resumes}
    ).scalar_one()
    return int(before) + 1, int(resumes)


def _scan_all(
    session: Session, chunks: list[tuple[int, int]], jobs: list[list[int]], workers: int | None
) -> Iterator[ChunkResult]:
    wanted = workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS)
    if wanted > 1 and len(chunks) >= PARALLEL_MIN_CHUNKS:
        cuts = _even_runs(chunks, wanted)
        url = session.get_bind().url.render_as_string(hide_password=False)
        with ProcessPoolExecutor(max_workers=wanted, mp_context=get_context(_start_method())) as pool:
            for results in pool.map(
                scan_run_in_worker,
                [url] * (len(cuts) - 1),
                [chunks[a:b] for a, b in pairwise(cuts)],
                [jobs[a:b] for a, b in pairwise(cuts)],
            ):
                yield from results
        return
    yield from scan_run(raw_cursor(session.connection().connection), chunks, jobs)


def _even_runs(chunks: list[tuple[int, int]], workers: int) -> list[int]:
    """Where to cut the chunks into one run of consecutive chunks per worker, each of about as many
    entries: a run follows its citizens' chains itself, so only each run's first entries are stitched."""
    size, total = chunks[0][1] - chunks[0][0], chunks[-1][1]
    inner = {round(total * i / workers / size) for i in range(1, workers)}
    return sorted(inner | {0, len(chunks)})


def _start_method() -> str:
    """Fork when it is safe, for it starts workers in milliseconds where spawning costs a second of
    imports: only from a process with no other thread (a thread holding a lock at the fork would leave
    it held in the child). Workers open their own connections and never touch the parent's."""
    if threading.active_count() == 1 and "fork" in get_all_start_methods():
        return "fork"
    return "spawn"


def _stitch(
    result: ChunkResult,
    prefix: list[bytes],
    heads: dict[bytes, tuple[int, bytes]],
    signed: dict[int, bytes],
) -> None:
    """Check what a chunk could not check alone, in position order: each citizen's first entry in it
    against the chain state their last entry before it left, each checkpoint inside it, and then its own
    first fault. When all is well (the common case) the chains are held in one set comparison each."""
    if (
        result.failure is None
        and heads.keys().isdisjoint(result.new)
        and result.joins.items() <= heads.items()
        and all(_fold(prefix + stack) == signed[size] for size, stack in result.snapshots.items())
    ):
        heads.update(result.last)
        return
    checks: list[tuple[int, int, Any]] = [(result.first_at[s], 0, s) for s in (*result.new, *result.joins)]
    checks += [(size - 1, 1, size) for size in result.snapshots]
    if result.failure is not None:
        checks.append((result.failure[0], 2, None))
    for position, kind, what in sorted(checks, key=lambda c: (c[0], c[1])):
        if kind == 0:
            _check_join(position, heads.get(what), result.joins.get(what))
        elif kind == 1:
            if _fold(prefix + result.snapshots[what]) != signed[what]:
                raise AuditFailure(
                    f"checkpoint {what}: entries 0-{what - 1} do not hash to its signed root "
                    "(an entry was changed, inserted, removed or moved)"
                )
        else:
            assert result.failure is not None
            raise AuditFailure(result.failure[1])
    heads.update(result.last)


def _check_join(position: int, head: tuple[int, bytes] | None, joins: tuple[int, bytes] | None) -> None:
    """A citizen's first entry in a chunk (`joins`: its sequence and chain members, None when it starts
    their chain) continues the chain state `head` their entries before it left (None: they had none)."""
    if head == joins:
        return
    seq = 0 if joins is None else joins[0]
    raise AuditFailure(chain_break(position, seq, 0 if head is None else head[0]))


def _push(prefix: list[bytes], chunk_root: bytes, chunks_so_far: int) -> None:
    prefix.append(chunk_root)
    m = chunks_so_far
    while not m & 1:
        right = prefix.pop()
        prefix[-1] = node_hash(prefix[-1], right)
        m >>= 1


def _fold(stack: list[bytes]) -> bytes:
    """The root of a tree from its complete subtrees, largest first (RFC 9162's split at k)."""
    if not stack:
        return EMPTY_ROOT
    result = stack[-1]
    for h in reversed(stack[:-1]):
        result = node_hash(h, result)
    return result


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

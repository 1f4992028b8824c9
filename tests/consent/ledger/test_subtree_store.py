"""The subtree store gives the roots and proofs of RFC 9162's recursive definitions, in O(log n) reads."""

from __future__ import annotations

import math
import re

import pytest

from consent.ledger.merkle import (
    EMPTY_ROOT,
    SubtreeStore,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    tree_root,
)
from consent.ledger.subtrees import MemorySubtreeStore, NodeKey
from consent.ledger.verify import verify_consistency, verify_inclusion

MAX_SIZE = 70


# A naive RFC 9162 s2.1 implementation, straight from the recursive definitions, to compare against.
def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """RFC 9162 s2.1.1 MTH over leaf hashes."""
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = split(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 9162 s2.1.3.1 PATH(m, D[n])."""
    if len(d) == 1:
        return []
    k = split(len(d))
    return [*path(m, d[:k]), mth(d[k:])] if m < k else [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """RFC 9162 s2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = split(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


LEAVES = [leaf_hash(f"consent event {i}".encode()) for i in range(MAX_SIZE)]


@pytest.fixture(scope="module")
def store() -> MemorySubtreeStore:
    store = MemorySubtreeStore()
    store.extend(LEAVES)
    return store


class CountingStore:
    """A SubtreeStore that counts the subtree hashes a computation reads."""

    def __init__(self, inner: SubtreeStore) -> None:
        self.inner = inner
        self.reads = 0

    @property
    def tree_size(self) -> int:
        return self.inner.tree_size

    def subtree_hash(self, start: int, size: int) -> bytes:
        self.reads += 1
        return self.inner.subtree_hash(start, size)


class CountingTable:
    """A NodeTable that is not a dict, as a database-backed mapping would not be; counts reads and writes."""

    def __init__(self) -> None:
        self.rows: dict[NodeKey, bytes] = {}
        self.reads = self.writes = 0

    def __getitem__(self, key: NodeKey) -> bytes:
        self.reads += 1
        return self.rows[key]

    def __setitem__(self, key: NodeKey, value: bytes) -> None:
        assert key not in self.rows, f"node {key} written twice: rows must be append-only"
        self.writes += 1
        self.rows[key] = value


def test_rfc9162_s2_1_1_roots_match_the_recursive_definition_at_every_size(store: MemorySubtreeStore) -> None:
    for n in range(MAX_SIZE + 1):
        assert store.root(n) == mth(LEAVES[:n]) == root_from_leaf_hashes(LEAVES[:n]), n


def test_rfc9162_s2_1_3_1_inclusion_proofs_match_path_for_every_index_and_size(
    store: MemorySubtreeStore,
) -> None:
    for n in range(1, MAX_SIZE + 1):
        root = mth(LEAVES[:n])
        for m in range(n):
            proof = store.inclusion_proof(m, n)
            assert proof == path(m, LEAVES[:n]), (m, n)
            verify_inclusion(leaf_index=m, tree_size=n, leaf_hash=LEAVES[m], proof=proof, root=root)


def test_rfc9162_s2_1_4_1_consistency_proofs_match_proof_for_every_pair(store: MemorySubtreeStore) -> None:
    for n in range(1, MAX_SIZE + 1):
        root2 = mth(LEAVES[:n])
        for m in range(1, n + 1):
            proof = store.consistency_proof(m, n)
            assert proof == subproof(m, LEAVES[:n], True), (m, n)
            verify_consistency(size1=m, size2=n, root1=mth(LEAVES[:m]), root2=root2, proof=proof)


def test_proofs_at_the_current_size_match_for_every_size() -> None:
    for n in range(1, MAX_SIZE + 1):
        own = MemorySubtreeStore()
        own.extend(LEAVES[:n])
        assert own.root() == mth(LEAVES[:n])
        assert [own.inclusion_proof(m) for m in range(n)] == [path(m, LEAVES[:n]) for m in range(n)]
        assert [own.consistency_proof(m) for m in range(1, n + 1)] == [
            subproof(m, LEAVES[:n], True) for m in range(1, n + 1)
        ]


def test_bulk_build_stores_the_same_rows_as_appending() -> None:
    for n in range(MAX_SIZE + 1):
        appended, bulk = CountingTable(), CountingTable()
        MemorySubtreeStore(appended).extend(LEAVES[:n])
        assert MemorySubtreeStore.from_leaf_hashes(LEAVES[:n], bulk).tree_size == n
        assert appended.rows == bulk.rows
        assert len(appended.rows) == sum(n >> level for level in range(n.bit_length()))


def test_append_writes_each_completed_subtree_once_and_costs_log_n() -> None:
    table = CountingTable()
    store = MemorySubtreeStore(table)
    for i in range(4096):
        before = table.writes
        store.append(leaf_hash(i.to_bytes(4, "big")))
        assert table.writes - before <= (i + 1).bit_length()  # one leaf row + one per trailing 1 bit of i
    assert table.writes < 2 * 4096  # amortised O(1) rows and hashes per append


def test_store_resumes_over_persisted_rows() -> None:
    # What a database-backed store does: rows from an earlier unit of work, and the size the log head records.
    table = CountingTable()
    MemorySubtreeStore(table).extend(LEAVES[:37])
    resumed = MemorySubtreeStore(table, tree_size=37)
    resumed.extend(LEAVES[37:])
    assert resumed.root() == mth(LEAVES)
    assert resumed.consistency_proof(37) == subproof(37, LEAVES, True)


@pytest.mark.parametrize(
    ("start", "size"), [(0, 3), (1, 2), (2, 4), (64, 8), (-2, 2), (0, 0)], ids=lambda v: str(v)
)
def test_subtree_hash_refuses_ranges_that_are_not_stored_subtrees(
    store: MemorySubtreeStore, start: int, size: int
) -> None:
    with pytest.raises(ValueError, match="not a complete subtree"):
        store.subtree_hash(start, size)


def test_proof_requests_outside_the_tree_are_refused(store: MemorySubtreeStore) -> None:
    with pytest.raises(ValueError, match=re.escape("leaf index 5 is outside 0..4")):
        store.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match=re.escape("tree size 71 is outside 1..70")):
        store.inclusion_proof(0, 71)
    with pytest.raises(ValueError, match=re.escape("first tree size 0 is outside 1..8")):
        store.consistency_proof(0, 8)
    with pytest.raises(ValueError, match=re.escape("first tree size 9 is outside 1..8")):
        store.consistency_proof(9, 8)
    with pytest.raises(ValueError, match=re.escape("tree size 71 is outside 0..70")):
        store.root(71)
    with pytest.raises(ValueError, match="must be 32 bytes"):
        MemorySubtreeStore().append(b"short")


# At a million entries: build once from synthetic leaf hashes (level by level, about two seconds),
# then count the stored subtrees each proof reads.
MILLION = 1_000_000
READ_BOUND = 2 * math.ceil(
    math.log2(MILLION)
)  # proof length <= ceil(log2 n), plus <= log2 n for the right edge


@pytest.fixture(scope="module")
def million() -> MemorySubtreeStore:
    return MemorySubtreeStore.from_leaf_hashes([i.to_bytes(32, "big") for i in range(MILLION)])


@pytest.mark.parametrize("index", [0, 1, 4242, 262_143, 524_287, 524_288, 999_998, 999_999])
def test_inclusion_proof_at_a_million_reads_o_log_n_subtrees(million: MemorySubtreeStore, index: int) -> None:
    counting = CountingStore(million)
    proof = inclusion_proof(counting, index, MILLION)
    assert counting.reads <= READ_BOUND, counting.reads
    assert len(proof) <= math.ceil(math.log2(MILLION))
    verify_inclusion(
        leaf_index=index,
        tree_size=MILLION,
        leaf_hash=index.to_bytes(32, "big"),
        proof=proof,
        root=million.root(),
    )


@pytest.mark.parametrize(
    ("size1", "size2"),
    [(1, MILLION), (524_288, MILLION), (524_289, MILLION), (999_999, MILLION), (123_457, 777_777), (3, 5)],
)
def test_consistency_proof_at_a_million_reads_o_log_n_subtrees(
    million: MemorySubtreeStore, size1: int, size2: int
) -> None:
    counting = CountingStore(million)
    proof = consistency_proof(counting, size1, size2)
    assert counting.reads <= READ_BOUND, counting.reads
    root1, root2 = million.root(size1), million.root(size2)
    verify_consistency(size1=size1, size2=size2, root1=root1, root2=root2, proof=proof)


@pytest.mark.parametrize("size", [1, 2**19, 777_777, MILLION - 1, MILLION])
def test_old_root_at_a_million_reads_one_subtree_per_set_bit(million: MemorySubtreeStore, size: int) -> None:
    counting = CountingStore(million)
    tree_root(counting, size)
    assert counting.reads == size.bit_count()

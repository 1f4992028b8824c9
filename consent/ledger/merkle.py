"""The RFC 9162 Merkle tree: roots, and inclusion and consistency proofs read from stored subtree hashes.

Proofs never walk the log. They read the hashes of aligned, complete subtrees (start a multiple of size,
size a power of two) from a `SubtreeStore`, so a proof or an old root costs O(log n) reads at any size:
every range the RFC 9162 recursion asks for is one such subtree per set bit of its length.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from consent.ledger.verify import HASH_SIZE, leaf_hash, node_hash

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "SubtreeStore",
    "consistency_proof",
    "inclusion_proof",
    "is_complete_subtree",
    "leaf_hash",
    "node_hash",
    "range_hash",
    "root_from_leaf_hashes",
    "split_point",
    "tree_root",
]

# RFC 9162 s2.1.1: MTH({}) = SHA-256() = e3b0c442...b855
EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


class SubtreeStore(Protocol):
    """Where proofs read from: the leaf count and the hash of any aligned, complete subtree."""

    @property
    def tree_size(self) -> int:
        """How many leaves the tree holds."""
        ...

    def subtree_hash(self, start: int, size: int) -> bytes:
        """MTH(D[start:start+size]) for size a power of two, start a multiple of size, within the tree."""
        ...


def split_point(n: int) -> int:
    """RFC 9162 s2.1.1: k, the largest power of two strictly less than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def is_complete_subtree(start: int, size: int) -> bool:
    """True if D[start:start+size] is an aligned, complete subtree: size 2^l and start a multiple of it."""
    return start >= 0 and size > 0 and size & (size - 1) == 0 and start % size == 0


def root_from_leaf_hashes(hashes: Iterable[bytes]) -> bytes:
    """RFC 9162 s2.1.1 MTH over every leaf hash, in one pass and O(log n) memory (for a full-log audit)."""
    stack: list[bytes] = []  # roots of the complete subtrees seen so far, largest first
    for count, h in enumerate(hashes, start=1):
        stack.append(h)
        # Each trailing zero bit of the new count is a pair of equal subtrees that now completes.
        merges = (count & -count).bit_length() - 1
        for _ in range(merges):
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
    if not stack:
        return EMPTY_ROOT
    # The leftover complete subtrees combine right to left, which is how MTH splits at k.
    root = stack.pop()
    while stack:
        root = node_hash(stack.pop(), root)
    return root


def range_hash(store: SubtreeStore, start: int, size: int) -> bytes:
    """MTH(D[start:start+size]) from stored complete subtrees (RFC 9162 s2.1.1's recursion, split at k).

    For the ranges RFC 9162 proofs use (start a multiple of the smallest power of two >= size) this reads
    one stored subtree per set bit of `size`: at most log2(n) + 1 reads.
    """
    if size < 1 or start < 0 or start + size > store.tree_size:
        raise ValueError(f"range [{start}, {start + size}) is not inside a tree of size {store.tree_size}")
    if is_complete_subtree(start, size):
        return store.subtree_hash(start, size)
    k = split_point(size)
    return node_hash(range_hash(store, start, k), range_hash(store, start + k, size - k))


def tree_root(store: SubtreeStore, tree_size: int | None = None) -> bytes:
    """MTH(D[0:tree_size]) for the current or any earlier size, in O(log n) reads."""
    n = store.tree_size if tree_size is None else tree_size
    if not 0 <= n <= store.tree_size:
        raise ValueError(f"tree size {n} is outside 0..{store.tree_size}")
    return EMPTY_ROOT if n == 0 else range_hash(store, 0, n)


def inclusion_proof(store: SubtreeStore, leaf_index: int, tree_size: int | None = None) -> list[bytes]:
    """RFC 9162 s2.1.3.1 PATH(m, D[0:n]): the audit path of leaf `leaf_index` in the tree of `tree_size`.

    The RFC's recursion, unrolled from the root down:
      m <  k: PATH(m, D[0:k])   + [MTH(D[k:n])]
      m >= k: PATH(m-k, D[k:n]) + [MTH(D[0:k])]
    """
    n = store.tree_size if tree_size is None else tree_size
    if not 0 < n <= store.tree_size:
        raise ValueError(f"tree size {n} is outside 1..{store.tree_size}")
    if not 0 <= leaf_index < n:
        raise ValueError(f"leaf index {leaf_index} is outside 0..{n - 1}")
    siblings: list[bytes] = []  # collected root-first; the RFC lists them leaf-first
    start, m = 0, leaf_index
    while n > 1:
        k = split_point(n)
        if m < k:
            siblings.append(range_hash(store, start + k, n - k))
            n = k
        else:
            siblings.append(range_hash(store, start, k))
            start, m, n = start + k, m - k, n - k
    siblings.reverse()
    return siblings


def consistency_proof(store: SubtreeStore, size1: int, size2: int | None = None) -> list[bytes]:
    """RFC 9162 s2.1.4.1 PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true), for 0 < m <= n.

    The RFC's recursion, unrolled from the root down:
      SUBPROOF(m, D[m], true) = []     SUBPROOF(m, D[m], false) = [MTH(D[m])]
      m <= k: SUBPROOF(m, D[0:k], b)       + [MTH(D[k:n])]
      m >  k: SUBPROOF(m-k, D[k:n], false) + [MTH(D[0:k])]
    A proof from size 0 is refused, as the verifier refuses it.
    """
    n = store.tree_size if size2 is None else size2
    if not 0 < n <= store.tree_size:
        raise ValueError(f"second tree size {n} is outside 1..{store.tree_size}")
    if not 0 < size1 <= n:
        raise ValueError(f"first tree size {size1} is outside 1..{n}")
    nodes: list[bytes] = []  # collected root-first; the RFC lists them leaf-first
    start, m, whole = 0, size1, True
    while m != n:
        k = split_point(n)
        if m <= k:
            nodes.append(range_hash(store, start + k, n - k))
            n = k
        else:
            nodes.append(range_hash(store, start, k))
            start, m, n, whole = start + k, m - k, n - k, False
    if not whole:
        nodes.append(range_hash(store, start, m))
    nodes.reverse()
    return nodes

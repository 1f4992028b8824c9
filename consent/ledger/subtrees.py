"""The subtree-hash store: every complete, aligned subtree's hash, kept as (level, index) -> hash rows.

Node (level, index) is MTH(D[index * 2^level : (index + 1) * 2^level]); level 0 holds the leaf hashes.
A node is written once, when its last leaf is appended, and never changed, so the rows are append-only.

Persisting: the rows live in any mapping with `__getitem__` and `__setitem__` over (level, index) keys.
A plain dict keeps them in memory; a later step backs the same interface with the table
`ledger_node(level, index, hash)` (primary key (level, index), rows inserted once, UPDATE and DELETE
refused) and passes the tree size it has recorded for the log head. Appending writes 1 + (trailing one
bits of the old size) rows; proofs and old roots read O(log n) of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from consent.ledger.merkle import (
    HASH_SIZE,
    consistency_proof,
    inclusion_proof,
    is_complete_subtree,
    leaf_hash,
    node_hash,
    tree_root,
)

NodeKey = tuple[int, int]  # (level, index)


class NodeTable(Protocol):
    """What the store needs from its rows; a dict qualifies, and so does a mapping over `ledger_node`."""

    def __getitem__(self, key: NodeKey, /) -> bytes: ...

    def __setitem__(self, key: NodeKey, value: bytes, /) -> None: ...


class MemorySubtreeStore:
    """A `SubtreeStore` that records each complete aligned subtree as it completes (O(1) amortised hashes)."""

    def __init__(self, nodes: NodeTable | None = None, *, tree_size: int = 0) -> None:
        """Start empty, or resume over existing `nodes` rows holding a tree of `tree_size` leaves."""
        if tree_size < 0:
            raise ValueError(f"tree size {tree_size} is negative")
        self.nodes: NodeTable = {} if nodes is None else nodes
        self._size = tree_size

    @classmethod
    def from_leaf_hashes(cls, hashes: Sequence[bytes], nodes: NodeTable | None = None) -> MemorySubtreeStore:
        """Build the rows for a whole log at once, level by level (to rebuild the table, or in tests)."""
        store = cls(nodes)
        level: Sequence[bytes] = hashes
        height = 0
        while level:
            for index, h in enumerate(level):
                store.nodes[(height, index)] = h
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            height += 1
        store._size = len(hashes)
        return store

    @property
    def tree_size(self) -> int:
        """How many leaves have been appended."""
        return self._size

    def append(self, leaf_hash: bytes) -> int:
        """Add the next leaf hash; store every subtree it completes. Returns the leaf's index."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        index = self._size
        level, position, h = 0, index, leaf_hash
        self.nodes[(level, position)] = h
        # A right child (odd position) completes its parent, which may in turn be a right child.
        while position & 1:
            h = node_hash(self.nodes[(level, position - 1)], h)
            level, position = level + 1, position >> 1
            self.nodes[(level, position)] = h
        self._size = index + 1
        return index

    def append_leaf(self, leaf: bytes) -> int:
        """Add the next leaf (its canonical bytes); see `append`."""
        return self.append(leaf_hash(leaf))

    def extend(self, hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order."""
        for h in hashes:
            self.append(h)

    def subtree_hash(self, start: int, size: int) -> bytes:
        """MTH(D[start:start+size]) for an aligned, complete subtree: one row read."""
        if not is_complete_subtree(start, size) or start + size > self._size:
            raise ValueError(
                f"[{start}, {start + size}) is not a complete subtree of a tree of size {self._size}"
            )
        return self.nodes[(size.bit_length() - 1, start // size)]

    def root(self, tree_size: int | None = None) -> bytes:
        """RFC 9162 s2.1.1 MTH at the current size, or at any earlier one, in O(log n) reads."""
        return tree_root(self, tree_size)

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> list[bytes]:
        """RFC 9162 s2.1.3.1 audit path; see `consent.ledger.merkle.inclusion_proof`."""
        return inclusion_proof(self, leaf_index, tree_size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 s2.1.4.1 consistency proof; see `consent.ledger.merkle.consistency_proof`."""
        return consistency_proof(self, size1, size2)

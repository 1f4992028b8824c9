"""Tampered proofs, indices, sizes and roots fail, saying what mismatched (RFC 9162 s2.1.3.2, s2.1.4.2)."""

from __future__ import annotations

import pytest

from consent.ledger.subtrees import MemorySubtreeStore
from consent.ledger.verify import VerificationError, leaf_hash, verify_consistency, verify_inclusion

SIZE, INDEX, OLD_SIZE = 37, 13, 21
LEAVES = [leaf_hash(f"grant {i}".encode()) for i in range(SIZE + 40)]


@pytest.fixture(scope="module")
def store() -> MemorySubtreeStore:
    store = MemorySubtreeStore()
    store.extend(LEAVES)
    return store


def flip(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def check_inclusion(store: MemorySubtreeStore, **changes: object) -> None:
    args: dict[str, object] = {
        "leaf_index": INDEX,
        "tree_size": SIZE,
        "leaf_hash": LEAVES[INDEX],
        "proof": store.inclusion_proof(INDEX, SIZE),
        "root": store.root(SIZE),
    }
    verify_inclusion(**{**args, **changes})  # type: ignore[arg-type]


def check_consistency(store: MemorySubtreeStore, **changes: object) -> None:
    args: dict[str, object] = {
        "size1": OLD_SIZE,
        "size2": SIZE,
        "root1": store.root(OLD_SIZE),
        "root2": store.root(SIZE),
        "proof": store.consistency_proof(OLD_SIZE, SIZE),
    }
    verify_consistency(**{**args, **changes})  # type: ignore[arg-type]


def test_untampered_proofs_verify(store: MemorySubtreeStore) -> None:
    check_inclusion(store)
    check_consistency(store)


@pytest.mark.parametrize("element", range(6))
@pytest.mark.parametrize("at", [0, 17, 31])
def test_rfc9162_s2_1_3_2_flipped_byte_in_inclusion_proof(
    store: MemorySubtreeStore, element: int, at: int
) -> None:
    proof = store.inclusion_proof(INDEX, SIZE)
    assert len(proof) == 6
    proof[element] = flip(proof[element], at)
    with pytest.raises(
        VerificationError, match=r"inclusion proof for leaf 13 of tree size 37 computes root \w+, not"
    ):
        check_inclusion(store, proof=proof)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (12, "inclusion proof for leaf 12 of tree size 37 computes root"),
        (14, "inclusion proof for leaf 14 of tree size 37 computes root"),
        (0, "inclusion proof for leaf 0 of tree size 37 computes root"),
        (36, "inclusion proof has 6 elements, more than leaf 36 of tree size 37 needs"),
        (37, "leaf index 37 is not below tree size 37"),
    ],
)
def test_rfc9162_s2_1_3_2_wrong_leaf_index(store: MemorySubtreeStore, index: int, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        check_inclusion(store, leaf_index=index)


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (65, "has 6 elements, too few for leaf 13 of tree size 65"),
        (128, "has 6 elements, too few for leaf 13 of tree size 128"),
        (32, "has 6 elements, more than leaf 13 of tree size 32 needs"),
        (16, "has 6 elements, more than leaf 13 of tree size 16 needs"),
        (13, "leaf index 13 is not below tree size 13"),
    ],
)
def test_rfc9162_s2_1_3_2_wrong_tree_size(store: MemorySubtreeStore, size: int, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        check_inclusion(store, tree_size=size)


def test_rfc9162_proofs_do_not_bind_the_tree_size_a_signed_checkpoint_does(store: MemorySubtreeStore) -> None:
    # RFC 9162 hashes no size: the size only picks left or right at each level, so any size giving leaf 13
    # the same path shape (33..64 here) rebuilds the same root. This is why verifiers take size and root
    # together from a verified checkpoint (C2SP tlog-checkpoint), never from the proof's sender.
    for size in range(33, 65):
        check_inclusion(store, tree_size=size)
        check_consistency(store, size2=size)


def test_rfc9162_s2_1_3_2_wrong_root(store: MemorySubtreeStore) -> None:
    with pytest.raises(VerificationError, match=f"not the expected {store.root(36).hex()}"):
        check_inclusion(store, root=store.root(36))


def test_rfc9162_s2_1_3_2_wrong_leaf(store: MemorySubtreeStore) -> None:
    with pytest.raises(VerificationError, match="computes root"):
        check_inclusion(store, leaf_hash=LEAVES[INDEX + 1])


def test_rfc9162_s2_1_3_2_proof_with_an_element_added_or_removed(store: MemorySubtreeStore) -> None:
    proof = store.inclusion_proof(INDEX, SIZE)
    with pytest.raises(VerificationError, match="has 5 elements, too few"):
        check_inclusion(store, proof=proof[:-1])
    with pytest.raises(VerificationError, match="has 7 elements, more than"):
        check_inclusion(store, proof=[*proof, proof[0]])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"leaf_hash": b"\x00" * 31}, "leaf hash must be 32 bytes, got 31"),
        ({"root": b""}, "root hash must be 32 bytes, got 0"),
        ({"proof": [b"\x00" * 33]}, "inclusion proof element 0 must be 32 bytes, got 33"),
        ({"leaf_index": -1}, "leaf index must be an integer from 0 to 2\\^64-1, got -1"),
        ({"tree_size": True}, "tree size must be an integer"),
    ],
)
def test_malformed_inclusion_inputs_are_rejected(
    store: MemorySubtreeStore, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(VerificationError, match=message):
        check_inclusion(store, **changes)


@pytest.mark.parametrize("element", range(7))
def test_rfc9162_s2_1_4_2_flipped_byte_in_consistency_proof(store: MemorySubtreeStore, element: int) -> None:
    proof = store.consistency_proof(OLD_SIZE, SIZE)
    assert len(proof) == 7
    proof[element] = flip(proof[element], 7)
    with pytest.raises(
        VerificationError, match=r"consistency proof computes (first|second) root \w+ for size"
    ):
        check_consistency(store, proof=proof)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size1": 20}, "has 7 elements, more than sizes 20 to 37 need"),
        ({"size1": 23}, "computes first root \\w+ for size 23"),
        ({"size2": 128}, "has 7 elements, too few for sizes 21 to 128"),
        ({"size2": 32}, "has 7 elements, more than sizes 21 to 32 need"),
        ({"size1": 37}, "between equal sizes 37 must be empty"),
        ({"size1": 0}, "first tree size is 0"),
        ({"size1": 38}, "first tree size 38 is larger than second tree size 37"),
        ({"proof": []}, "consistency proof from size 21 to 37 is empty"),
    ],
)
def test_rfc9162_s2_1_4_2_wrong_sizes(
    store: MemorySubtreeStore, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(VerificationError, match=message):
        check_consistency(store, **changes)


def test_rfc9162_s2_1_4_2_wrong_roots(store: MemorySubtreeStore) -> None:
    with pytest.raises(
        VerificationError, match=f"first root \\w+ for size 21, not the expected {store.root(20).hex()}"
    ):
        check_consistency(store, root1=store.root(20))
    with pytest.raises(
        VerificationError, match=f"second root \\w+ for size 37, not the expected {store.root(38).hex()}"
    ):
        check_consistency(store, root2=store.root(38))
    with pytest.raises(VerificationError, match="computes first root"):
        check_consistency(store, root1=store.root(SIZE), root2=store.root(OLD_SIZE))


def test_rfc9162_s2_1_4_2_proof_to_a_forked_history_fails(store: MemorySubtreeStore) -> None:
    # A log that rewrote leaf 5 after size 21 cannot prove the new head extends the old one.
    forked = MemorySubtreeStore()
    forked.extend([*LEAVES[:5], leaf_hash(b"rewritten"), *LEAVES[6:SIZE]])
    with pytest.raises(VerificationError, match="computes first root"):
        check_consistency(store, root2=forked.root(SIZE), proof=forked.consistency_proof(OLD_SIZE, SIZE))


def test_equal_sizes_need_an_empty_proof_and_equal_roots(store: MemorySubtreeStore) -> None:
    root = store.root(SIZE)
    verify_consistency(size1=SIZE, size2=SIZE, root1=root, root2=root, proof=[])
    with pytest.raises(VerificationError, match="between equal sizes 37 must be empty"):
        verify_consistency(size1=SIZE, size2=SIZE, root1=root, root2=root, proof=[root])
    with pytest.raises(VerificationError, match="trees of equal size 37 have different roots"):
        verify_consistency(size1=SIZE, size2=SIZE, root1=root, root2=store.root(36), proof=[])

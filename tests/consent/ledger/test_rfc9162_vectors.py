"""Every RFC 9162 vector in shared/merkle-test-vectors/rfc9162.json, including those that must fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from consent.ledger.merkle import EMPTY_ROOT, leaf_hash, node_hash, root_from_leaf_hashes
from consent.ledger.subtrees import MemorySubtreeStore
from consent.ledger.verify import VerificationError, verify_consistency, verify_inclusion

# CI checks shared/ out beside the repository clone: <parent>/shared and <parent>/<repo>/tests/...
VECTORS_PATH = Path(__file__).resolve().parents[3].parent / "shared" / "merkle-test-vectors" / "rfc9162.json"
VECTORS: dict[str, Any] | None = json.loads(VECTORS_PATH.read_text()) if VECTORS_PATH.exists() else None
pytestmark = pytest.mark.skipif(
    VECTORS is None, reason=f"RFC 9162 vectors not found at {VECTORS_PATH}: check out shared/ beside the repo"
)


def vectors(kind: str) -> list[dict[str, Any]]:
    return VECTORS[kind] if VECTORS else []


def h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


@pytest.fixture(scope="module")
def store() -> MemorySubtreeStore:
    """The vectors' eight leaves, appended one by one."""
    store = MemorySubtreeStore()
    for leaf in vectors("leaves"):
        store.append_leaf(h(leaf["input_hex"]))
    return store


def leaf_hash_at(index: int) -> bytes:
    return h(vectors("leaves")[index]["leaf_hash"])


def root_at(size: int) -> bytes:
    (root,) = [r["root"] for r in vectors("roots") if r["tree_size"] == size]
    return h(root)


def test_rfc9162_s2_1_1_empty_tree_root() -> None:
    assert VECTORS is not None
    assert h(VECTORS["empty_tree_root"]) == EMPTY_ROOT == root_from_leaf_hashes([])


def test_rfc9162_s2_1_1_hasher_vectors_from_the_reference() -> None:
    # ledger-crypto-anchors.md s2.1 (transparency-dev/merkle rfc6962_test.go)
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert (
        node_hash(b"N123", b"N456").hex()
        == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


@pytest.mark.parametrize("leaf", vectors("leaves"), ids=lambda v: f"leaf-{v['index']}")
def test_rfc9162_s2_1_1_leaf_hash(leaf: dict[str, Any]) -> None:
    assert leaf_hash(h(leaf["input_hex"])).hex() == leaf["leaf_hash"]


@pytest.mark.parametrize("vector", vectors("roots"), ids=lambda v: f"size-{v['tree_size']}")
def test_rfc9162_s2_1_1_root(vector: dict[str, Any], store: MemorySubtreeStore) -> None:
    size = vector["tree_size"]
    assert store.root(size).hex() == vector["root"]
    assert root_from_leaf_hashes([leaf_hash_at(i) for i in range(size)]).hex() == vector["root"]


@pytest.mark.parametrize(
    "vector", vectors("inclusion"), ids=lambda v: f"leaf-{v['leaf_index']}-of-{v['tree_size']}"
)
def test_rfc9162_s2_1_3_inclusion_proof_is_generated_and_verifies(
    vector: dict[str, Any], store: MemorySubtreeStore
) -> None:
    index, size = vector["leaf_index"], vector["tree_size"]
    proof = [h(p) for p in vector["proof"]]
    assert store.inclusion_proof(index, size) == proof  # s2.1.3.1
    verify_inclusion(  # s2.1.3.2
        leaf_index=index, tree_size=size, leaf_hash=leaf_hash_at(index), proof=proof, root=root_at(size)
    )


@pytest.mark.parametrize("vector", vectors("consistency"), ids=lambda v: f"{v['size1']}-to-{v['size2']}")
def test_rfc9162_s2_1_4_consistency_proof_is_generated_and_verifies(
    vector: dict[str, Any], store: MemorySubtreeStore
) -> None:
    size1, size2 = vector["size1"], vector["size2"]
    proof = [h(p) for p in vector["proof"]]
    assert (store.root(size1), store.root(size2)) == (h(vector["root1"]), h(vector["root2"]))
    assert store.consistency_proof(size1, size2) == proof  # s2.1.4.1
    verify_consistency(  # s2.1.4.2
        size1=size1, size2=size2, root1=h(vector["root1"]), root2=h(vector["root2"]), proof=proof
    )


def test_every_must_fail_vector_is_of_a_kind_we_run() -> None:
    assert {v["kind"] for v in vectors("must_fail")} <= {"inclusion", "consistency"}


# What each published failure must be reported as; a case added to the file later still has to raise.
MUST_FAIL_MESSAGES = {
    "proof element with one bit flipped": "computes root",
    "wrong leaf index for the proof": "computes root",
    "proof one element short": "too few",
    "proof with an extra trailing element": "more than",
    "size1 = 0 is rejected": "first tree size is 0",
    "roots swapped": "computes first root",
    "proof element missing": "too few",
}


def run_vector(vector: dict[str, Any]) -> None:
    proof = [h(p) for p in vector["proof"]]
    if vector["kind"] == "inclusion":
        verify_inclusion(
            leaf_index=vector["leaf_index"],
            tree_size=vector["tree_size"],
            leaf_hash=h(vector["leaf_hash"]),
            proof=proof,
            root=h(vector["root"]),
        )
    else:
        verify_consistency(
            size1=vector["size1"],
            size2=vector["size2"],
            root1=h(vector["root1"]),
            root2=h(vector["root2"]),
            proof=proof,
        )


@pytest.mark.parametrize("vector", vectors("must_fail"), ids=lambda v: v["why"].replace(" ", "-"))
def test_rfc9162_must_fail_vector_raises(vector: dict[str, Any]) -> None:
    with pytest.raises(VerificationError, match=MUST_FAIL_MESSAGES.get(vector["why"], "")):
        run_vector(vector)

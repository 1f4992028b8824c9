"""Check ledger proofs and checkpoints with nothing but the verifier key: the module a third party runs alone.

It imports only the standard library and `cryptography`, so it can be copied out of this repository and run
by itself. Every check returns None or raises `VerificationError` saying exactly what mismatched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_SIZE = 32  # RFC 9162 s2.1: SHA-256
LEAF_PREFIX = b"\x00"  # RFC 9162 s2.1.1: leaf hashes are domain-separated from node hashes
NODE_PREFIX = b"\x01"
ED25519_TYPE = b"\x01"  # C2SP signed-note: signature type byte for Ed25519
ED25519_KEY_SIZE = 32
ED25519_SIG_SIZE = 64
KEY_ID_SIZE = 4  # C2SP signed-note: signatures start with a 4-byte key ID
SIG_PREFIX = "\u2014 "  # C2SP signed-note: em dash, space
MAX_SIGNATURES = 64  # C2SP signed-note: verifiers MUST accept at least 16; bound the work beyond that
MAX_TREE_SIZE = 2**64 - 1  # tree sizes are uint64 in RFC 9162 and in every C2SP implementation


class VerificationError(Exception):
    """A proof, checkpoint or key did not check out; the message says exactly what mismatched."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 s2.1.1: MTH({d0}) = SHA-256(0x00 || d0)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 s2.1.1: an interior node is SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, bytes) else type(value).__name__
        raise VerificationError(f"{what} must be {HASH_SIZE} bytes, got {size}")


def _check_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise VerificationError(f"{what} must be an integer from 0 to 2^64-1, got {value!r}")


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def verify_inclusion(
    *, leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 s2.1.3.2: check that `leaf_hash` is leaf `leaf_index` of the tree `tree_size`, `root`.

    No size is hashed into a root: the size only steers left or right, so other sizes with the same path
    shape verify too. Take `tree_size` and `root` together from a checkpoint `verify_checkpoint` accepted.
    """
    _check_size(leaf_index, "leaf index")
    _check_size(tree_size, "tree size")
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root hash")
    for i, p in enumerate(proof):
        _check_hash(p, f"inclusion proof element {i}")
    # 1. The leaf must lie inside the tree.
    if leaf_index >= tree_size:
        raise VerificationError(f"leaf index {leaf_index} is not below tree size {tree_size}")
    # 2. fn is the leaf's index, sn the index of the tree's last leaf.
    fn, sn = leaf_index, tree_size - 1
    # 3. Start from the leaf hash.
    r = leaf_hash
    # 4. Climb the tree, one proof element per level where the node has a sibling.
    for p in proof:
        # 4a. A proof element beyond the root is one too many.
        if sn == 0:
            raise VerificationError(
                f"inclusion proof has {len(proof)} elements, more than leaf {leaf_index} "
                f"of tree size {tree_size} needs"
            )
        # 4b. Our node is a right child (or the last node of its level, promoted): the sibling is on the left.
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:  # an even last node has no right sibling: it rises unpaired
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        # 4c. Up one level.
        fn >>= 1
        sn >>= 1
    # 5. The climb must end at the root, and the computed root must be the one given.
    if sn != 0:
        raise VerificationError(
            f"inclusion proof has {len(proof)} elements, too few for leaf {leaf_index} "
            f"of tree size {tree_size}"
        )
    if not _same(r, root):
        raise VerificationError(
            f"inclusion proof for leaf {leaf_index} of tree size {tree_size} computes root {r.hex()}, "
            f"not the expected {root.hex()}"
        )


def verify_consistency(*, size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 s2.1.4.2: check that the tree of `size2` and `root2` extends that of `size1` and `root1`.

    Edge cases the RFC's algorithm leaves open: size1 = 0 is rejected (there is nothing to be consistent
    with, and the published transparency-dev vectors reject it); size1 = size2 needs an empty proof and
    equal roots. As with inclusion, take each size and root together from a verified checkpoint.
    """
    _check_size(size1, "first tree size")
    _check_size(size2, "second tree size")
    _check_hash(root1, "first root hash")
    _check_hash(root2, "second root hash")
    for i, c in enumerate(proof):
        _check_hash(c, f"consistency proof element {i}")
    # 0. Preconditions: 0 < size1 <= size2; equal sizes need no proof, only equal roots.
    if size1 == 0:
        raise VerificationError("first tree size is 0: no consistency proof from an empty tree is accepted")
    if size1 > size2:
        raise VerificationError(f"first tree size {size1} is larger than second tree size {size2}")
    if size1 == size2:
        if proof:
            raise VerificationError(f"consistency proof between equal sizes {size1} must be empty")
        if not _same(root1, root2):
            raise VerificationError(f"trees of equal size {size1} have different roots")
        return
    # 1. An empty proof cannot show anything between different sizes.
    if not proof:
        raise VerificationError(f"consistency proof from size {size1} to {size2} is empty")
    # 2. When the first tree is a complete subtree, the proof leaves its root out: put it back.
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    # 3. fn is the first tree's last leaf, sn the second tree's.
    fn, sn = size1 - 1, size2 - 1
    # 4. Skip the levels where the first tree's last node is a right child of a complete subtree.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Both computations start from the first proof element.
    fr = sr = path[0]
    # 6. Rebuild both roots level by level.
    for c in path[1:]:
        # 6a. A proof element beyond the second root is one too many.
        if sn == 0:
            raise VerificationError(
                f"consistency proof has {len(proof)} elements, more than sizes {size1} to {size2} need"
            )
        # 6b. A left sibling belongs to both trees; a right sibling only to the second.
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:  # an even last node has no right sibling: it rises unpaired
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        # 6c. Up one level.
        fn >>= 1
        sn >>= 1
    # 7. The proof must be used up exactly at the second root, and both computed roots must match.
    if sn != 0:
        raise VerificationError(
            f"consistency proof has {len(proof)} elements, too few for sizes {size1} to {size2}"
        )
    if not _same(fr, root1):
        raise VerificationError(
            f"consistency proof computes first root {fr.hex()} for size {size1}, "
            f"not the expected {root1.hex()}"
        )
    if not _same(sr, root2):
        raise VerificationError(
            f"consistency proof computes second root {sr.hex()} for size {size2}, "
            f"not the expected {root2.hex()}"
        )


def key_id(name: str, public_key: bytes) -> bytes:
    """C2SP signed-note: key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public_key).digest()[:KEY_ID_SIZE]


def valid_key_name(name: str) -> bool:
    """C2SP signed-note: key names are non-empty, without Unicode spaces, plus or control characters."""
    return bool(name) and not any(c.isspace() or c == "+" or ord(c) < 0x20 for c in name)


@dataclass(frozen=True)
class VerifierKey:
    """An Ed25519 note verifier key: the name it signs as, its 4-byte key ID and its raw public key."""

    name: str
    key_id: bytes
    public_key: bytes


@dataclass(frozen=True)
class Checkpoint:
    """C2SP tlog-checkpoint: the log's origin, its tree size and the RFC 9162 root hash at that size."""

    origin: str
    size: int
    root: bytes


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as e:
        raise VerificationError(f"{what} is not valid base64") from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise VerificationError(f"{what} is not canonical base64")
    return raw


def parse_verifier_key(vkey: str) -> VerifierKey:
    """Parse and check a C2SP signed-note verifier key `<name>+<hex key ID>+<base64(0x01 || key)>`."""
    # 1. Three fields; the name holds no plus, the base64 may.
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise VerificationError("verifier key must have the form <name>+<key id>+<base64 key>")
    name, hex_id, b64 = parts
    # 2. The name follows the signed-note rules.
    if not valid_key_name(name):
        raise VerificationError(f"verifier key name {name!r} is empty or holds spaces or control characters")
    # 3. The key ID is 8 hex digits.
    if len(hex_id) != 2 * KEY_ID_SIZE or any(c not in "0123456789abcdefABCDEF" for c in hex_id):
        raise VerificationError(f"verifier key ID {hex_id!r} is not 8 hex digits")
    # 4. The key is an Ed25519 key: type byte 0x01 then 32 bytes.
    raw = _b64decode(b64, "verifier key")
    if raw[:1] != ED25519_TYPE:
        raise VerificationError(f"verifier key type {raw[:1].hex() or 'missing'} is not Ed25519 (01)")
    if len(raw) != 1 + ED25519_KEY_SIZE:
        raise VerificationError(f"Ed25519 verifier key must be {ED25519_KEY_SIZE} bytes, got {len(raw) - 1}")
    public_key = raw[1:]
    # 5. The key ID is the one the name and key produce.
    expected = key_id(name, public_key)
    if not _same(bytes.fromhex(hex_id), expected):
        raise VerificationError(
            f"verifier key ID {hex_id} does not match its name and key ({expected.hex()})"
        )
    return VerifierKey(name=name, key_id=expected, public_key=public_key)


def _split_note(note: str | bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """C2SP signed-note: the text up to the last blank line, then `— <name> <base64>` signature lines."""
    try:
        note = note.decode() if isinstance(note, bytes) else note
        note.encode()
    except UnicodeError as e:
        raise VerificationError("note is not valid UTF-8") from e
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise VerificationError("note holds control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerificationError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise VerificationError("note's signature lines are missing or do not end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"note has {len(lines)} signatures, more than the {MAX_SIGNATURES} accepted")
    signatures = []
    for line in lines:
        fields = line[len(SIG_PREFIX) :].split(" ")
        if not line.startswith(SIG_PREFIX) or len(fields) != 2 or not valid_key_name(fields[0]):
            raise VerificationError(f"malformed signature line {line!r}")
        sig = _b64decode(fields[1], f"signature by {fields[0]}")
        if len(sig) <= KEY_ID_SIZE:
            raise VerificationError(f"signature by {fields[0]} is too short to hold a key ID and a signature")
        signatures.append((fields[0], sig))
    return text, signatures


def _parse_checkpoint(text: str) -> Checkpoint:
    """C2SP tlog-checkpoint note text: origin, decimal tree size, base64 root hash, one a line."""
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise VerificationError(f"checkpoint has {len(lines)} lines, not origin, size and root hash")
    if "" in lines:
        raise VerificationError("checkpoint has an empty line")
    if len(lines) > 3:
        raise VerificationError("checkpoint has extension lines; this ledger signs none")
    origin, size_text, root_text = lines
    if not size_text.isascii() or not size_text.isdigit() or (size_text != "0" and size_text[0] == "0"):
        raise VerificationError(f"checkpoint tree size {size_text!r} is not a decimal without leading zeros")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise VerificationError(f"checkpoint tree size {size} exceeds 2^64-1")
    root = _b64decode(root_text, "checkpoint root hash")
    if len(root) != HASH_SIZE:
        raise VerificationError(f"checkpoint root hash is {len(root)} bytes, not {HASH_SIZE}")
    return Checkpoint(origin=origin, size=size, root=root)


def verify_note(note: str | bytes, vkey: str | VerifierKey) -> str:
    """C2SP signed-note: return the note text only if `vkey` signed it.

    Signatures by other keys (witnesses, rotated keys) are ignored, as signed-note requires; a signature that
    claims to be by `vkey` and fails rejects the whole note.
    """
    key = parse_verifier_key(vkey) if isinstance(vkey, str) else vkey
    # 1. Split the note into signed text and signature lines.
    text, signatures = _split_note(note)
    # 2. Pick out the signatures that name our key by both name and key ID.
    ours = [
        sig[KEY_ID_SIZE:] for name, sig in signatures if name == key.name and sig[:KEY_ID_SIZE] == key.key_id
    ]
    if not ours:
        raise VerificationError(f"note has no signature by {key.name}+{key.key_id.hex()}")
    # 3. Every one of them must verify over the exact note text.
    try:
        public_key = Ed25519PublicKey.from_public_bytes(key.public_key)
    except ValueError as e:
        raise VerificationError(f"verifier key {key.name} is not a usable Ed25519 public key") from e
    for sig in ours:
        if len(sig) != ED25519_SIG_SIZE:
            raise VerificationError(f"signature by {key.name} is {len(sig)} bytes, not {ED25519_SIG_SIZE}")
        try:
            public_key.verify(sig, text.encode())
        except InvalidSignature as e:
            raise VerificationError(f"signature by {key.name} does not verify over the note text") from e
    return text


def verify_checkpoint(note: str | bytes, vkey: str | VerifierKey, *, origin: str | None = None) -> Checkpoint:
    """C2SP tlog-checkpoint: the checkpoint in a note signed by `vkey` (see `verify_note`).

    Pass `origin` to also pin the log's identity.
    """
    # 1. The note must carry a good signature by the key; only signed text is looked at after that.
    text = verify_note(note, vkey)
    # 2. The text is origin, tree size and root hash.
    checkpoint = _parse_checkpoint(text)
    # 3. The caller may pin the origin.
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}")
    return checkpoint


# -- the proof documents pds serves (GET /ledger/entries/{index}, GET /ledger/consistency) -----------------


def _field(doc: object, name: str, kind: type) -> object:
    if not isinstance(doc, dict) or name not in doc:
        raise VerificationError(f"proof document has no {name!r}")
    value = doc[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise VerificationError(f"proof document field {name!r} must be {kind.__name__}")
    return value


def _hashes(doc: object, name: str) -> list[bytes]:
    items = _field(doc, name, list)
    out = []
    for i, item in enumerate(items):  # type: ignore[attr-defined]
        if not isinstance(item, str):
            raise VerificationError(f"{name}[{i}] must be base64 text")
        out.append(_b64decode(item, f"{name}[{i}]"))
    return out


def check_entry_document(doc: object, vkey: str | VerifierKey) -> Checkpoint:
    """An entry as `GET /ledger/entries/{index}` serves it: its leaf is leaf `index` of the tree its
    checkpoint signs. Returns that checkpoint."""
    key = parse_verifier_key(vkey) if isinstance(vkey, str) else vkey
    checkpoint = verify_checkpoint(str(_field(doc, "checkpoint", str)), key, origin=key.name)
    index = _field(doc, "index", int)
    leaf = str(_field(doc, "leaf", str)).encode()
    if _field(doc, "tree_size", int) != checkpoint.size:
        raise VerificationError("proof document's tree_size is not its checkpoint's")
    verify_inclusion(
        leaf_index=index,  # type: ignore[arg-type]
        tree_size=checkpoint.size,
        leaf_hash=leaf_hash(leaf),
        proof=_hashes(doc, "inclusion_proof"),
        root=checkpoint.root,
    )
    return checkpoint


def check_consistency_document(
    doc: object, vkey: str | VerifierKey, *, old: str | None = None, new: str | None = None
) -> tuple[Checkpoint, Checkpoint]:
    """A proof as `GET /ledger/consistency` serves it: the checkpoint at `to` extends the one at `from`.

    The two checkpoints come from the document or, better, from the caller (`old` is the one they kept).
    """
    key = parse_verifier_key(vkey) if isinstance(vkey, str) else vkey
    first_note = old if old is not None else _field(doc, "from_checkpoint", str)
    second_note = new if new is not None else _field(doc, "to_checkpoint", str)
    first = verify_checkpoint(str(first_note), key, origin=key.name)
    second = verify_checkpoint(str(second_note), key, origin=key.name)
    if (_field(doc, "from", int), _field(doc, "to", int)) != (first.size, second.size):
        raise VerificationError(
            f"the proof is from {doc['from']} to {doc['to']} but the checkpoints are "  # type: ignore[index]
            f"of sizes {first.size} and {second.size}"
        )
    verify_consistency(
        size1=first.size, size2=second.size, root1=first.root, root2=second.root, proof=_hashes(doc, "proof")
    )
    return first, second

"""Sign tree heads as C2SP tlog-checkpoints inside C2SP signed-notes, and print the matching verifier key.

The verifying side is `consent.ledger.verify`, which a third party runs alone; this module shares its
constants and key-ID rule so the two cannot drift apart.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from consent.ledger.verify import (
    ED25519_KEY_SIZE,
    ED25519_TYPE,
    HASH_SIZE,
    MAX_TREE_SIZE,
    SIG_PREFIX,
    key_id,
    valid_key_name,
)


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 signed-note signer: the key name it signs as, its key ID and its private key."""

    name: str
    key_id: bytes
    private_key: Ed25519PrivateKey = field(repr=False)  # secrets are never logged, not even by repr

    def sign(self, message: bytes) -> bytes:
        """RFC 8032 Ed25519 signature over `message`."""
        return self.private_key.sign(message)


def _raw_public_key(public_key: Ed25519PublicKey | bytes) -> bytes:
    if isinstance(public_key, bytes):
        if len(public_key) != ED25519_KEY_SIZE:
            raise ValueError(f"Ed25519 public key must be {ED25519_KEY_SIZE} bytes, got {len(public_key)}")
        return public_key
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_name(name: str) -> None:
    if not valid_key_name(name):
        raise ValueError(f"key name {name!r} must be non-empty, without spaces, '+' or control characters")


def make_signer(name: str, private_key: Ed25519PrivateKey) -> NoteSigner:
    """A signer for `name`; C2SP tlog-checkpoint: the key name SHOULD match the log's origin."""
    _check_name(name)
    return NoteSigner(
        name=name, key_id=key_id(name, _raw_public_key(private_key.public_key())), private_key=private_key
    )


def verifier_key_string(name: str, public_key: Ed25519PublicKey | bytes) -> str:
    """C2SP signed-note verifier key: `<name>+<hex key ID>+<base64(0x01 || 32-byte public key)>`."""
    _check_name(name)
    raw = _raw_public_key(public_key)
    return f"{name}+{key_id(name, raw).hex()}+{base64.b64encode(ED25519_TYPE + raw).decode('ascii')}"


def sign_note(text: str, signer: NoteSigner) -> str:
    """C2SP signed-note: `text`, a blank line, then `— <key name> base64(key ID || signature)`."""
    if not text.endswith("\n"):
        raise ValueError("note text must end in a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise ValueError("note text must not hold control characters other than newline")
    signature = base64.b64encode(signer.key_id + signer.sign(text.encode())).decode("ascii")
    return f"{text}\n{SIG_PREFIX}{signer.name} {signature}\n"


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """C2SP tlog-checkpoint note text: origin, decimal tree size, base64 root hash, one a line."""
    _check_name(origin)  # stricter than the spec's SHOULD: our origins are schema-less URLs
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
        raise ValueError(f"tree size must be an integer from 0 to 2^64-1, got {size!r}")
    if len(root) != HASH_SIZE:
        raise ValueError(f"root hash must be {HASH_SIZE} bytes, got {len(root)}")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def sign_checkpoint(origin: str, size: int, root: bytes, signer: NoteSigner) -> str:
    """The signed checkpoint for the tree of `size` leaves with `root`, as the log serves it."""
    return sign_note(checkpoint_text(origin, size, root), signer)

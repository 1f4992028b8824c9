"""Checkpoints are C2SP tlog-checkpoints in C2SP signed-notes: published vectors, round trips, forgeries."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consent.ledger.checkpoint import (
    checkpoint_text,
    make_signer,
    sign_checkpoint,
    sign_note,
    verifier_key_string,
)
from consent.ledger.verify import (
    Checkpoint,
    VerificationError,
    leaf_hash,
    parse_verifier_key,
    verify_checkpoint,
    verify_note,
)

ORIGIN = "pds.example/consent-ledger/v1"
ROOT = leaf_hash(b"a root hash stand-in")
B64_ROOT = base64.b64encode(ROOT).decode()

# C2SP signed-note's example, as given in ledger-crypto-anchors.md s2.7.
EXAMPLE_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
EXAMPLE_TEXT = "This is an example message.\n"
EXAMPLE_SIG = "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="
EXAMPLE_NOTE = f"{EXAMPLE_TEXT}\n\u2014 example.com/foo {EXAMPLE_SIG}\n"

# golang.org/x/mod/sumdb/note (package doc and note_test.go): signing key, verifier key and the signed note.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
PETER_NOTE = (
    f"{PETER_TEXT}\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture(scope="module")
def vkey(key: Ed25519PrivateKey) -> str:
    return verifier_key_string(ORIGIN, key.public_key())


@pytest.fixture(scope="module")
def note(key: Ed25519PrivateKey) -> str:
    return sign_checkpoint(ORIGIN, 37, ROOT, make_signer(ORIGIN, key))


def test_c2sp_signed_note_example_verifies() -> None:
    parsed = parse_verifier_key(EXAMPLE_VKEY)
    assert parsed.key_id.hex() == "530d903a"
    assert verify_note(EXAMPLE_NOTE, EXAMPLE_VKEY) == EXAMPLE_TEXT
    with pytest.raises(VerificationError, match=re.escape("signature by example.com/foo does not verify")):
        verify_note(EXAMPLE_NOTE.replace("example message", "exemplary message"), EXAMPLE_VKEY)


def test_go_sumdb_note_vector_is_reproduced_byte_for_byte() -> None:
    # Ed25519 (RFC 8032) is deterministic, so signing the same text with the same key gives the same note.
    _, _, name, _, b64 = PETER_SKEY.split("+", 4)
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(b64)[1:])
    signer = make_signer(name, private)
    assert signer.key_id.hex() == "c74f20a3"
    assert verifier_key_string(name, private.public_key()) == PETER_VKEY
    assert sign_note(PETER_TEXT, signer) == PETER_NOTE
    assert verify_note(PETER_NOTE, PETER_VKEY) == PETER_TEXT


def test_checkpoint_round_trip(note: str, vkey: str) -> None:
    assert note == f"{ORIGIN}\n37\n{B64_ROOT}\n\n\u2014 {ORIGIN} {note.rsplit(' ', 1)[1]}"
    assert verify_checkpoint(note, vkey) == Checkpoint(origin=ORIGIN, size=37, root=ROOT)
    assert verify_checkpoint(note.encode(), parse_verifier_key(vkey), origin=ORIGIN).size == 37


def test_empty_tree_checkpoint_has_size_zero(key: Ed25519PrivateKey, vkey: str) -> None:
    note = sign_checkpoint(
        ORIGIN,
        0,
        bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        make_signer(ORIGIN, key),
    )
    assert verify_checkpoint(note, vkey).size == 0


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n37\n", "\n38\n"),
        (f"\n{B64_ROOT}\n", f"\n{base64.b64encode(leaf_hash(b'other root')).decode()}\n"),
        (f"{ORIGIN}\n", "pds.example/another-log\n"),
    ],
    ids=["size", "root", "origin"],
)
def test_forged_checkpoint_with_the_old_signature_is_rejected(
    note: str, vkey: str, old: str, new: str
) -> None:
    forged = note.replace(old, new, 1)
    assert forged != note
    with pytest.raises(VerificationError, match=f"signature by {ORIGIN} does not verify over the note text"):
        verify_checkpoint(forged, vkey)


def test_checkpoint_signed_by_another_key_is_rejected(note: str) -> None:
    other = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32).public_key()
    with pytest.raises(VerificationError, match=re.escape(f"note has no signature by {ORIGIN}+")):
        verify_checkpoint(note, verifier_key_string(ORIGIN, other))
    with pytest.raises(
        VerificationError, match=re.escape("note has no signature by example.com/foo+530d903a")
    ):
        verify_checkpoint(note, EXAMPLE_VKEY)


def test_c2sp_signed_note_unknown_signatures_are_ignored(note: str, vkey: str) -> None:
    # Witness cosignatures or a rotated key's signature: not ours, so not checked, and not in the way.
    witness = make_signer("witness.example/w1", Ed25519PrivateKey.from_private_bytes(b"\x09" * 32))
    cosigned = note + sign_note(note.split("\n\n")[0] + "\n", witness).split("\n\n")[1]
    assert verify_checkpoint(cosigned, vkey).size == 37


def test_c2sp_signed_note_a_bad_signature_by_our_key_rejects_the_note(note: str, vkey: str) -> None:
    good_line = note.split("\n\n")[1]
    sig = bytearray(base64.b64decode(good_line.split(" ")[2]))
    sig[10] ^= 1
    bad_line = f"\u2014 {ORIGIN} {base64.b64encode(bytes(sig)).decode()}\n"
    with pytest.raises(VerificationError, match="does not verify"):
        verify_checkpoint(note + bad_line, vkey)


def test_every_truncation_of_a_checkpoint_is_rejected(note: str, vkey: str) -> None:
    data = note.encode()
    for cut in range(len(data)):
        with pytest.raises(VerificationError):
            verify_checkpoint(data[:cut], vkey)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{ORIGIN}\n037\n{B64_ROOT}\n", "tree size '037' is not a decimal without leading zeros"),
        (f"{ORIGIN}\n00\n{B64_ROOT}\n", "tree size '00' is not a decimal"),
        (f"{ORIGIN}\n+37\n{B64_ROOT}\n", "tree size '\\+37' is not a decimal"),
        (f"{ORIGIN}\n-1\n{B64_ROOT}\n", "tree size '-1' is not a decimal"),
        (f"{ORIGIN}\n37 \n{B64_ROOT}\n", "tree size '37 ' is not a decimal"),
        (f"{ORIGIN}\n\u0663\u0667\n{B64_ROOT}\n", "is not a decimal"),
        (f"{ORIGIN}\n{2**64}\n{B64_ROOT}\n", "exceeds 2\\^64-1"),
        (f"{ORIGIN}\n37\n{base64.b64encode(ROOT[:31]).decode()}\n", "root hash is 31 bytes, not 32"),
        (f"{ORIGIN}\n37\n{base64.b64encode(ROOT + b'!').decode()}\n", "root hash is 33 bytes, not 32"),
        (f"{ORIGIN}\n37\n{B64_ROOT.rstrip('=')}\n", "root hash is not valid base64"),
        (f"{ORIGIN}\n37\n{B64_ROOT[:-2]}F=\n", "root hash is not canonical base64"),
        (f"{ORIGIN}\n37\n", "checkpoint has 2 lines"),
        (f"{ORIGIN}\n37\n{B64_ROOT}\nextension\n", "extension lines"),
    ],
)
def test_signed_but_malformed_checkpoint_bodies_are_rejected(
    key: Ed25519PrivateKey, vkey: str, text: str, message: str
) -> None:
    # C2SP tlog-checkpoint: size in ASCII decimal without leading zeros; root the base64 of a 32-byte hash.
    with pytest.raises(VerificationError, match=message):
        verify_checkpoint(sign_note(text, make_signer(ORIGIN, key)), vkey)


def test_pinned_origin_must_match(note: str, vkey: str) -> None:
    with pytest.raises(
        VerificationError, match=re.escape("origin 'pds.example/consent-ledger/v1' is not the expected 'x/y'")
    ):
        verify_checkpoint(note, vkey, origin="x/y")


@pytest.mark.parametrize(
    ("note_text", "message"),
    [
        ("no blank line\n\u2014 a AAAA\n", "no blank line"),
        (f"{ORIGIN}\n37\n{B64_ROOT}\n\n", "signature lines are missing"),
        (f"{ORIGIN}\n37\n{B64_ROOT}\n\n- {ORIGIN} AAAAAAAA\n", "malformed signature line"),
        (f"{ORIGIN}\n37\n{B64_ROOT}\n\n\u2014 {ORIGIN}\n", "malformed signature line"),
        (f"{ORIGIN}\n37\n{B64_ROOT}\n\n\u2014 {ORIGIN} AAAA\n", "too short to hold a key ID"),
        (f"{ORIGIN}\n37\n{B64_ROOT}\n\n\u2014 {ORIGIN} @@@@\n", "not valid base64"),
        (f"{ORIGIN}\r\n37\n{B64_ROOT}\n\n\u2014 {ORIGIN} AAAAAAAA\n", "control characters"),
        (b"\xff\n\n\xe2\x80\x94 a AAAAAAAA\n", "not valid UTF-8"),
    ],
)
def test_malformed_notes_are_rejected(vkey: str, note_text: str | bytes, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        verify_checkpoint(note_text, vkey)


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("example.com/foo+530d903a", "must have the form"),
        ("+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "name '' is empty"),
        ("example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "is not 8 hex digits"),
        ("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2", "not valid base64"),
        ("example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "type 02 is not Ed25519"),
        ("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv", "must be 32 bytes, got 29"),
        ("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "does not match its name"),
        ("example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "does not match its name"),
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey: str, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        parse_verifier_key(vkey)


def test_every_mangling_of_a_verifier_key_is_rejected() -> None:
    # As golang.org/x/mod/sumdb/note's TestNewVerifier: every proper substring and every one-character change.
    for i in range(len(PETER_VKEY)):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(VerificationError):
                    parse_verifier_key(PETER_VKEY[i:j])
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(VerificationError):
            parse_verifier_key(mangled)


def test_signing_side_refuses_what_a_verifier_would_reject(key: Ed25519PrivateKey) -> None:
    signer = make_signer(ORIGIN, key)
    with pytest.raises(ValueError, match="root hash must be 32 bytes, got 31"):
        sign_checkpoint(ORIGIN, 1, ROOT[:31], signer)
    with pytest.raises(ValueError, match="tree size must be an integer"):
        sign_checkpoint(ORIGIN, -1, ROOT, signer)
    with pytest.raises(ValueError, match="key name 'a b' must be non-empty"):
        make_signer("a b", key)
    with pytest.raises(ValueError, match="key name 'x\\\\ny' must be non-empty"):
        checkpoint_text("x\ny", 1, ROOT)
    with pytest.raises(ValueError, match="must end in a newline"):
        sign_note("no newline", signer)


def test_signer_never_shows_its_private_key(key: Ed25519PrivateKey) -> None:
    assert "private_key" not in repr(make_signer(ORIGIN, key))

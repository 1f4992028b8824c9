"""Envelope encryption: the only module that encrypts or decrypts citizen data.

Each citizen has a random 256-bit data key (DEK). DEKs are stored only wrapped by a
key-encryption key (KEK) that a KeyProvider holds. A ciphertext is

    header = version(1) | algorithm(1) | data key id(8) | nonce(12)
    ciphertext = header | AES-256-GCM(DEK, nonce, plaintext, aad) (ciphertext and 16-byte tag)

and the associated data covers the header and binds the ciphertext to its citizen, its row
and its category, so a ciphertext copied anywhere else fails to decrypt.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pds.errors import IntegrityFailure, KeyMissing

FORMAT_VERSION = 1
ALG_AES_256_GCM = 1
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit random nonces: safe for 2**32 messages per key (NIST SP 800-38D s8.3)
HEADER = struct.Struct(">BBQ12s")
AAD_DOMAIN = b"pds/record/v1"
WRAP_DOMAIN = b"pds/dek/v1"
CANARY_DOMAIN = b"pds/kek-canary/v1"
BLIND_INDEX_DOMAIN = b"pds/blind-index/v1"

KEK_FILE = re.compile(r"^kek-(\d{4,})\.key$")
BLIND_INDEX_FILE = "blind-index.key"


def _length_prefixed(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(2, "big") + p for p in parts)


@dataclass(frozen=True)
class DataKey:
    """An unwrapped citizen data key, ready to use. Never stored, never logged."""

    id: int
    citizen_id: UUID
    aead: AESGCM

    def __repr__(self) -> str:
        return f"DataKey(id={self.id}, citizen_id={self.citizen_id})"


def new_data_key_material() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: DataKey, plaintext: bytes, *, row_id: UUID, category: str) -> bytes:
    """Encrypt plaintext for one row of key's citizen."""
    nonce = os.urandom(NONCE_BYTES)
    header = HEADER.pack(FORMAT_VERSION, ALG_AES_256_GCM, key.id, nonce)
    aad = record_aad(header, key.citizen_id, row_id, category)
    return header + key.aead.encrypt(nonce, plaintext, aad)


def record_aad(header: bytes, citizen_id: UUID, row_id: UUID, category: str) -> bytes:
    """The associated data of a record's ciphertext: the domain, the header, then the citizen, the row
    and the category, each length-prefixed. Spelled out, not through _length_prefixed: seal and
    open_sealed run once per record stored or read, and the general form cost as much as the encryption
    (tests/vault hold it to the format's definition, and a golden ciphertext to its bytes)."""
    return b"".join(
        (
            AAD_DOMAIN,
            header,
            _UUID_LENGTH,
            citizen_id.bytes,
            _UUID_LENGTH,
            row_id.bytes,
            _category_part(category),
        )
    )


_UUID_LENGTH = (16).to_bytes(2, "big")


@functools.lru_cache(maxsize=64)
def _category_part(category: str) -> bytes:
    return _length_prefixed(category.encode())


def data_key_id(ciphertext: bytes) -> int:
    """The id of the data key a ciphertext needs, read from its (authenticated) header."""
    if len(ciphertext) < HEADER.size + 16:
        raise IntegrityFailure("ciphertext is too short to be a pds ciphertext")
    version, alg, key_id, _nonce = HEADER.unpack_from(ciphertext)
    if version != FORMAT_VERSION or alg != ALG_AES_256_GCM:
        raise IntegrityFailure(f"unknown ciphertext format (version {version}, algorithm {alg})")
    return int(key_id)


def open_sealed(key: DataKey, ciphertext: bytes, *, row_id: UUID, category: str) -> bytes:
    """Decrypt, or raise IntegrityFailure if the ciphertext was altered or belongs elsewhere."""
    if data_key_id(ciphertext) != key.id:
        raise IntegrityFailure(f"ciphertext of row {row_id} was sealed with another data key")
    header = ciphertext[: HEADER.size]
    aad = record_aad(header, key.citizen_id, row_id, category)
    try:
        return key.aead.decrypt(header[-NONCE_BYTES:], ciphertext[HEADER.size :], aad)
    except InvalidTag:
        raise IntegrityFailure(
            f"ciphertext of row {row_id} failed its integrity check: it was altered, "
            "or copied from another row or citizen"
        ) from None


class KeyProvider(Protocol):
    """Holds key-encryption keys. Local files today; a KMS or Vault transit can stand in later."""

    def active_kek_id(self) -> str: ...

    def kek_ids(self) -> list[str]: ...

    def wrap(self, material: bytes, context: bytes) -> tuple[str, bytes]: ...

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes: ...

    def blind_index_key(self) -> bytes: ...


class _AeadKeyProvider:
    """Wraps with AES-256-GCM under KEKs held in memory; subclasses say where the KEKs come from."""

    def __init__(self, keks: Mapping[str, bytes], blind_key: bytes, origin: str) -> None:
        if not keks:
            raise KeyMissing(f"no key-encryption key found in {origin}: run `pds init`")
        for kek_id, key in keks.items():
            if len(key) != KEY_BYTES:
                raise KeyMissing(f"key {kek_id} in {origin} is not a {KEY_BYTES}-byte key")
        if len(blind_key) != KEY_BYTES:
            raise KeyMissing(f"the blind-index key in {origin} is not a {KEY_BYTES}-byte key")
        self._keks = {k: AESGCM(v) for k, v in keks.items()}
        self._blind_key = blind_key
        self.origin = origin

    def kek_ids(self) -> list[str]:
        return sorted(self._keks, key=_kek_order)

    def active_kek_id(self) -> str:
        return self.kek_ids()[-1]

    def wrap(self, material: bytes, context: bytes) -> tuple[str, bytes]:
        kek_id = self.active_kek_id()
        nonce = os.urandom(NONCE_BYTES)
        aad = WRAP_DOMAIN + _length_prefixed(kek_id.encode(), context)
        return kek_id, nonce + self._keks[kek_id].encrypt(nonce, material, aad)

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        aead = self._kek(kek_id)
        aad = WRAP_DOMAIN + _length_prefixed(kek_id.encode(), context)
        try:
            return aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag:
            raise KeyMissing(
                f"key {kek_id} in {self.origin} does not open the data it should: wrong key file?"
            ) from None

    def blind_index_key(self) -> bytes:
        return self._blind_key

    def _kek(self, kek_id: str) -> AESGCM:
        try:
            return self._keks[kek_id]
        except KeyError:
            raise KeyMissing(f"key-encryption key {kek_id} is missing from {self.origin}") from None


def _kek_order(kek_id: str) -> int:
    return int(kek_id.removeprefix("kek-"))


def _decode_key(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (ValueError, TypeError):
        raise KeyMissing(f"{where} is not base64") from None


class LocalKeyProvider(_AeadKeyProvider):
    """KEKs in files kek-0001.key, kek-0002.key... (the highest is active) in one folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise KeyMissing(f"key folder {self.folder} does not exist: run `pds init`")
        keks = {}
        for path in self.folder.iterdir():
            match = KEK_FILE.match(path.name)
            if match:
                keks[path.stem] = _decode_key(path.read_text(), str(path))
        blind_path = self.folder / BLIND_INDEX_FILE
        if not blind_path.exists():
            raise KeyMissing(f"blind-index key {blind_path} is missing: run `pds init`")
        super().__init__(keks, _decode_key(blind_path.read_text(), str(blind_path)), str(self.folder))

    @staticmethod
    def create(folder: str | Path) -> list[Path]:
        """Make the folder and its first keys if absent. Returns the files written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        written = []
        if not any(KEK_FILE.match(p.name) for p in folder.iterdir()):
            written.append(_write_key(folder / "kek-0001.key"))
        if not (folder / BLIND_INDEX_FILE).exists():
            written.append(_write_key(folder / BLIND_INDEX_FILE))
        return written

    def add_kek(self) -> str:
        """Write a new KEK file, which becomes the active key. Returns its id."""
        next_number = _kek_order(self.active_kek_id()) + 1
        path = _write_key(self.folder / f"kek-{next_number:04d}.key")
        self._keks[path.stem] = AESGCM(_decode_key(path.read_text(), str(path)))
        return path.stem

    def remove_kek(self, kek_id: str) -> None:
        self._kek(kek_id)
        (self.folder / f"{kek_id}.key").unlink()
        del self._keks[kek_id]


def _write_key(path: Path) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n")
    return path


class EnvKeyProvider(_AeadKeyProvider):
    """KEKs from PDS_KEYS_KEKS ("kek-0001=BASE64,kek-0002=BASE64") and PDS_KEYS_BLIND_INDEX."""

    KEKS_VAR = "PDS_KEYS_KEKS"
    BLIND_VAR = "PDS_KEYS_BLIND_INDEX"

    def __init__(self, environ: Mapping[str, str]) -> None:
        keks = {}
        for item in filter(None, (s.strip() for s in environ.get(self.KEKS_VAR, "").split(","))):
            kek_id, sep, value = item.partition("=")
            if not sep or not re.fullmatch(r"kek-\d{4,}", kek_id):
                raise KeyMissing(f"{self.KEKS_VAR} entries must look like kek-0001=BASE64")
            keks[kek_id] = _decode_key(value, f"{self.KEKS_VAR} entry {kek_id}")
        if self.BLIND_VAR not in environ:
            raise KeyMissing(f"{self.BLIND_VAR} is not set")
        super().__init__(keks, _decode_key(environ[self.BLIND_VAR], self.BLIND_VAR), self.KEKS_VAR)


def wrap_context(citizen_id: UUID) -> bytes:
    """Binds a wrapped data key to its citizen: a wrapped key moved to another citizen won't open."""
    return citizen_id.bytes


def canary(provider: KeyProvider) -> tuple[str, bytes]:
    """A known value wrapped under the active KEK, stored so a wrong key is caught at start-up."""
    return provider.wrap(CANARY_DOMAIN, CANARY_DOMAIN)


def check_canary(provider: KeyProvider, kek_id: str, wrapped: bytes) -> None:
    if not hmac.compare_digest(provider.unwrap(kek_id, wrapped, CANARY_DOMAIN), CANARY_DOMAIN):
        raise KeyMissing(f"key {kek_id} does not match this database")


def blind_index_fingerprint(key: bytes) -> bytes:
    return hmac.new(key, b"pds/blind-index-check/v1", hashlib.sha256).digest()


def blind_index(key: bytes, kind: str, value: str) -> bytes:
    """HMAC-SHA-256 over the identifier's kind and normalised value: lookups without the clear value."""
    return hmac.new(
        key, BLIND_INDEX_DOMAIN + _length_prefixed(kind.encode(), value.encode()), hashlib.sha256
    ).digest()


def open_data_key(
    provider: KeyProvider, *, key_id: int, citizen_id: UUID, kek_id: str, wrapped: bytes
) -> DataKey:
    material = provider.unwrap(kek_id, wrapped, wrap_context(citizen_id))
    return DataKey(id=key_id, citizen_id=citizen_id, aead=AESGCM(material))


def wrap_data_key(provider: KeyProvider, citizen_id: UUID, material: bytes) -> tuple[str, bytes]:
    return provider.wrap(material, wrap_context(citizen_id))

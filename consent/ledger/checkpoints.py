"""Signed tree heads: the Ed25519 signer (sealed under the KEK), making checkpoints, and reading them back.

The key is made at init and kept in the database sealed like every other pds secret; the KEK provider
is passed in as anything with `wrap`/`unwrap`/`active_kek_id`, so this package needs nothing of the vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.ledger import store
from consent.ledger.checkpoint import NoteSigner, make_signer, sign_checkpoint, verifier_key_string
from consent.ledger.models import LedgerCheckpoint, LedgerSigner
from pds.db import utcnow
from pds.errors import KeyMissing

_UNWRAPPED: dict[str, NoteSigner] = {}  # by key ID: an ID never changes its key


class Sealer(Protocol):
    def wrap(self, plaintext: bytes, context: bytes) -> tuple[str, bytes]: ...

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes: ...

    def active_kek_id(self) -> str: ...


def _context(key_id: str) -> bytes:
    return b"pds/ledger-signer/v1:" + key_id.encode()


@dataclass(frozen=True)
class Head:
    tree_size: int
    root: bytes
    note: str


class Checkpoints:
    def __init__(self, session: Session, *, provider: Sealer, origin: str) -> None:
        self.session = session
        self.provider = provider
        self.origin = origin

    # the signer

    def ensure_signer(self) -> str:
        """The key ID checkpoints are signed with, making the key on first use."""
        row = self._signer_row()
        if row is not None and row.name == self.origin:
            return row.key_id
        if row is not None:  # the origin changed (a new issuer): a new log identity needs a new key
            row.retired_at = utcnow()
        private = Ed25519PrivateKey.generate()
        signer = make_signer(self.origin, private)
        key_id = signer.key_id.hex()
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        kek_id, sealed = self.provider.wrap(raw, _context(key_id))
        self.session.add(
            LedgerSigner(
                key_id=key_id,
                name=self.origin,
                public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
                kek_id=kek_id,
                private_key=sealed,
            )
        )
        self.session.flush()
        return key_id

    def verifier_key(self) -> str:
        """The C2SP verifier key (`name+keyid+base64`) anyone checks checkpoints with."""
        row = self._require_signer()
        return verifier_key_string(row.name, row.public_key)

    def signer(self) -> NoteSigner:
        row = self._require_signer()
        signer = _UNWRAPPED.get(row.key_id)
        if signer is None:
            raw = self.provider.unwrap(row.kek_id, row.private_key, _context(row.key_id))
            signer = _UNWRAPPED[row.key_id] = make_signer(row.name, Ed25519PrivateKey.from_private_bytes(raw))
        return signer

    def rewrap(self) -> int:
        """Reseal the signer under the active KEK (part of `pds keys rotate`)."""
        active = self.provider.active_kek_id()
        rows = self.session.scalars(select(LedgerSigner).where(LedgerSigner.kek_id != active)).all()
        for row in rows:
            raw = self.provider.unwrap(row.kek_id, row.private_key, _context(row.key_id))
            row.kek_id, row.private_key = self.provider.wrap(raw, _context(row.key_id))
        return len(rows)

    def kek_usage(self) -> dict[str, int]:
        usage: dict[str, int] = {}
        for kek_id in self.session.scalars(select(LedgerSigner.kek_id)):
            usage[kek_id] = usage.get(kek_id, 0) + 1
        return usage

    # checkpoints

    def make(self, *, min_size: int = 1) -> Head | None:
        """Sign the current tree head if the log holds at least `min_size` entries and has grown since
        the last checkpoint; return the latest checkpoint either way (None for an empty log)."""
        return self.sign_new(min_size=min_size) or self.latest()

    def sign_new(self, *, min_size: int = 1) -> Head | None:
        """A new checkpoint of the current head, or None if there is nothing new to sign."""
        store.lock(self.session)  # a checkpoint must describe a head no append is halfway into
        latest = self.latest()
        size = store.tree_size(self.session)
        if size < min_size or (latest is not None and latest.tree_size >= size):
            return None
        root = store.root(self.session, size)
        signer = self.signer()  # its name is the log's origin: the key, made at start-up, is the identity
        note = sign_checkpoint(signer.name, size, root, signer)
        self.session.add(LedgerCheckpoint(tree_size=size, root=root, note=note))
        self.session.flush()
        return Head(size, root, note)

    def latest(self) -> Head | None:
        row = self.session.scalars(
            select(LedgerCheckpoint).order_by(LedgerCheckpoint.tree_size.desc()).limit(1)
        ).first()
        return None if row is None else Head(row.tree_size, row.root, row.note)

    def at(self, tree_size: int) -> Head | None:
        row = self.session.get(LedgerCheckpoint, tree_size)
        return None if row is None else Head(row.tree_size, row.root, row.note)

    def covering(self, position: int) -> Head | None:
        """The latest checkpoint, made now if none yet includes `position`."""
        latest = self.latest()
        if latest is not None and latest.tree_size > position:
            return latest
        return self.make(min_size=position + 1)

    def _signer_row(self) -> LedgerSigner | None:
        return self.session.scalars(
            select(LedgerSigner)
            .where(LedgerSigner.retired_at.is_(None))
            .order_by(LedgerSigner.created_at.desc())
        ).first()

    def _require_signer(self) -> LedgerSigner:
        row = self._signer_row()
        if row is None:
            raise KeyMissing("the ledger has no checkpoint signing key: run `pds init`")
        return row

"""Token signing keys (ES256): made at init, sealed under the key-encryption key, rotatable.

Old keys stay in the JWKS until every token they signed has expired.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from consent.models import SigningKey
from pds.db import utcnow
from pds.errors import KeyMissing
from pds.vault.crypto import KeyProvider

ALG = "ES256"  # P-256 verifies faster than Ed25519 with this OpenSSL (performance-floors.md s5)
MAX_SIGNED_LIFETIME = dt.timedelta(minutes=10)  # the longest-lived JWT pds signs (access and id tokens)
JWKS_GRACE = MAX_SIGNED_LIFETIME + dt.timedelta(minutes=5)  # clock skew on top
# Unwrapped private keys by kid: a kid never changes its key, and the process holds the KEKs anyway.
_UNWRAPPED: dict[str, ec.EllipticCurvePrivateKey] = {}


def _context(kid: str) -> bytes:
    return b"pds/signing-key/v1:" + kid.encode()


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    def as_jwk(self) -> dict[str, Any]:
        """The private key as a JWK, for Authlib's id_token signing."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {**ECKey.import_key(pem).as_dict(private=True), "kid": self.kid, "alg": ALG}


class SigningKeys:
    def __init__(self, session: Session, *, provider: KeyProvider) -> None:
        self.session = session
        self.provider = provider

    def ensure(self) -> str:
        """The kid of the active key, making the first one if there is none."""
        row = self._active_row()
        return row.kid if row is not None else self.create()

    def create(self) -> str:
        kid = secrets.token_urlsafe(12)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        kek_id, wrapped = self.provider.wrap(pem, _context(kid))
        public = ECKey.import_key(key.public_key()).as_dict(private=False)
        public.update({"kid": kid, "alg": ALG, "use": "sig"})
        self.session.add(
            SigningKey(kid=kid, alg=ALG, kek_id=kek_id, private_key=wrapped, public_jwk=json.dumps(public))
        )
        self.session.flush()
        return kid

    def rotate(self) -> tuple[str, str | None]:
        """Retire the active key (it still verifies until its tokens expire) and make a new one."""
        old = self._active_row()
        if old is not None:
            old.retired_at = utcnow()
        return self.create(), old.kid if old else None

    def active(self) -> ActiveKey:
        row = self._active_row()
        if row is None:
            raise KeyMissing("no token signing key: run `pds init`")
        key = _UNWRAPPED.get(row.kid)  # a token response signs twice (access and id token): unwrap once
        if key is None:
            pem = self.provider.unwrap(row.kek_id, row.private_key, _context(row.kid))
            loaded = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(loaded, ec.EllipticCurvePrivateKey)
            key = _UNWRAPPED[row.kid] = loaded
        return ActiveKey(row.kid, key)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Public keys that may have signed a token still in date."""
        rows = self.session.scalars(
            select(SigningKey)
            .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > utcnow() - JWKS_GRACE))
            .order_by(SigningKey.created_at.desc())
        )
        return {"keys": [json.loads(r.public_jwk) for r in rows]}

    def rewrap(self) -> int:
        """Rewrap every signing key under the active KEK (part of `pds keys rotate`)."""
        active = self.provider.active_kek_id()
        rows = self.session.scalars(select(SigningKey).where(SigningKey.kek_id != active)).all()
        for row in rows:
            pem = self.provider.unwrap(row.kek_id, row.private_key, _context(row.kid))
            row.kek_id, row.private_key = self.provider.wrap(pem, _context(row.kid))
        return len(rows)

    def kek_usage(self) -> dict[str, int]:
        usage: dict[str, int] = {}
        for kek_id in self.session.scalars(select(SigningKey.kek_id)):
            usage[kek_id] = usage.get(kek_id, 0) + 1
        return usage

    def _active_row(self) -> SigningKey | None:
        return self.session.scalar(
            select(SigningKey).where(SigningKey.retired_at.is_(None)).order_by(SigningKey.created_at.desc())
        )

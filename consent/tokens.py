"""JWT access tokens (RFC 9068): signed with the active ES256 key, verified against the key's kid."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import ECAlgorithm
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import SigningKey
from consent.signing import ALG, ActiveKey

ACCESS_TOKEN_TTL = dt.timedelta(minutes=10)  # at most 10 minutes: a revoked grant is checked anyway
JWT_TYPE = "at+jwt"  # RFC 9068 s2.1
LEEWAY_S = 30
VERIFIED_CACHE_SIZE = 10_000  # verified tokens remembered per process


class InvalidToken(Exception):
    """The bearer token is not one pds issued for this audience, or it has expired."""


@dataclass(frozen=True)
class AccessClaims:
    jti: str
    subject: str
    client_id: str
    scope: str
    audience: str
    grant_id: uuid.UUID | None
    citizen_id: uuid.UUID | None
    expires_at: dt.datetime
    staff_id: uuid.UUID | None = None  # a professional's token: no grant of its own

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()


def issue_access_token(
    key: ActiveKey,
    *,
    issuer: str,
    client_id: str,
    scope: str,
    audience: str,
    citizen_id: uuid.UUID | None,
    grant_id: uuid.UUID | None,
    auth_time: int | None = None,
    staff_id: uuid.UUID | None = None,
) -> tuple[str, AccessClaims]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expires = now + ACCESS_TOKEN_TTL
    jti = secrets.token_urlsafe(16)
    claims: dict[str, Any] = {
        "iss": issuer,
        # RFC 9068 s2.2: the user (citizen or professional), else the client
        "sub": str(citizen_id or staff_id or "") or client_id,
        "aud": audience,
        "exp": int(expires.timestamp()),
        "iat": int(now.timestamp()),
        "jti": jti,
        "client_id": client_id,
        "scope": scope,
    }
    if grant_id:
        claims["grant"] = str(grant_id)
    if staff_id:
        claims["staff"] = True
    if auth_time:
        claims["auth_time"] = auth_time
    token = jwt.encode(claims, key.private_key, algorithm=ALG, headers={"kid": key.kid, "typ": JWT_TYPE})
    return token, _claims(claims)


class TokenVerifier:
    """Verifies access tokens.

    Public keys are cached by kid (a kid never changes its key), and verified tokens until they
    expire: the signature check costs more than the rest of a read, and whether the token is still
    wanted (revoked? grant live?) is asked of the database on every request anyway.
    """

    _keys: dict[str, Any] = {}
    _verified: dict[tuple[str, str, str], AccessClaims] = {}
    _lock = threading.Lock()

    def __init__(self, session: Session, *, issuer: str) -> None:
        self.session = session
        self.issuer = issuer

    def verify(self, token: str, *, audience: str) -> AccessClaims:
        key = (token, audience, self.issuer)
        claims = self._verified.get(key)
        if claims is not None and claims.expires_at > dt.datetime.now(dt.UTC):
            return claims
        claims = self._verify(token, audience=audience)
        with self._lock:
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()  # crude but bounded; a miss only costs one verification
            self._verified[key] = claims
        return claims

    def _verify(self, token: str, *, audience: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is not a JWT") from None
        if header.get("typ") != JWT_TYPE or header.get("alg") != ALG:
            raise InvalidToken("the token is not a pds access token")
        key = self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALG],
                audience=audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "jti", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(f"the token is not for {audience}") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is invalid: {exc}") from None
        return _claims(claims)

    def _key(self, kid: str) -> Any:
        key = self._keys.get(kid)
        if key is None:
            row = self.session.scalar(select(SigningKey).where(SigningKey.kid == kid))
            if row is None:
                raise InvalidToken("the token was signed with an unknown key")
            key = ECAlgorithm.from_jwk(row.public_jwk)
            with self._lock:
                self._keys[kid] = key
        return key


def _claims(claims: dict[str, Any]) -> AccessClaims:
    grant = claims.get("grant")
    client_id = str(claims.get("client_id", ""))
    sub = str(claims["sub"])
    return AccessClaims(
        jti=str(claims["jti"]),
        subject=sub,
        client_id=client_id,
        scope=str(claims.get("scope", "")),
        audience=str(claims["aud"]),
        grant_id=uuid.UUID(grant) if grant else None,
        citizen_id=uuid.UUID(sub) if grant else None,
        expires_at=dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC),
        staff_id=uuid.UUID(sub) if claims.get("staff") is True else None,
    )

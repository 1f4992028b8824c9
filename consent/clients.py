"""OAuth clients: register apps and systems; secrets and initial access tokens kept only as hashes."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import scopes as scope_words
from consent.models import InitialAccessToken, OAuthClient
from pds.db import utcnow
from pds.errors import ValidationError

SECRET_BYTES = 32  # 256-bit client secrets: high entropy, so a plain SHA-256 hash suffices to store them
INITIAL_ACCESS_TOKEN_TTL = dt.timedelta(days=7)
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")  # where plain http is allowed (RFC 8252 s7.3)
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(stored_hash: str | None, presented: str) -> bool:
    return stored_hash is not None and hmac.compare_digest(stored_hash, hash_secret(presented))


def check_redirect_uri(uri: str, field: str = "redirect_uris") -> str:
    """HTTPS, or HTTP on loopback only; absolute; no fragment and no user info (RFC 9700 s2.1, s2.6)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise ValidationError(f"{uri!r} is not a URL", field=field) from None
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValidationError(f"{uri!r} must be an absolute https URL", field=field)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValidationError(f"{uri!r}: plain http is allowed only on loopback", field=field)
    if parts.fragment or "@" in parts.netloc:
        raise ValidationError(f"{uri!r} must have no fragment and no user info", field=field)
    return uri


@dataclass(frozen=True)
class NewClient:
    client: OAuthClient
    secret: str | None

    def to_json(self) -> dict[str, object]:
        c = self.client
        data: dict[str, object] = {
            "client_id": c.client_id,
            "client_name": c.name,
            "redirect_uris": c.redirect_uri_list,
            "scope": c.scope,
            "grant_types": c.grant_type_list,
            "token_endpoint_auth_method": c.token_endpoint_auth_method,
            "client_id_issued_at": int(c.created_at.timestamp()),
        }
        if c.users == "staff":
            data["users"] = "staff"
        if self.secret:
            data["client_secret"] = self.secret
            data["client_secret_expires_at"] = 0  # RFC 7591 s3.2.1: 0 means it does not expire
        return data


class ClientService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        name: str,
        redirect_uris: list[str],
        scope: str,
        public: bool = False,
        operator: str = "",
        purpose: str = "",
        verified: bool = False,
        grant_types: list[str] | None = None,
        auth_method: str | None = None,
        client_id: str | None = None,
        secret: str | None = None,
        users: str = "citizens",
    ) -> NewClient:
        name = name.strip()
        if not 0 < len(name) <= 200:
            raise ValidationError("must be 1 to 200 characters", field="client_name")
        requested = scope_words.split(scope)
        unknown = [s for s in requested if not scope_words.is_supported(s)]
        if unknown or not requested:
            raise ValidationError(
                f"must be some of {' '.join(scope_words.SUPPORTED_SCOPES)}; unknown: {' '.join(unknown)}",
                field="scope",
            )
        if users not in ("citizens", "staff"):
            raise ValidationError("must be citizens or staff", field="users")
        if users == "staff" and not set(requested) <= set(scope_words.STAFF_SCOPES):
            raise ValidationError(
                f"a professionals' client may hold only {' '.join(scope_words.STAFF_SCOPES)}", field="scope"
            )
        if users == "citizens" and scope_words.STAFF_SCOPE in requested:
            raise ValidationError(f"{scope_words.STAFF_SCOPE} is for professionals' clients", field="scope")
        grant_types = grant_types or ["authorization_code", "refresh_token"]
        if any(g not in GRANT_TYPES for g in grant_types):
            raise ValidationError(f"must be some of {', '.join(GRANT_TYPES)}", field="grant_types")
        if public and "client_credentials" in grant_types:
            raise ValidationError("a public client cannot use client credentials", field="grant_types")
        if "authorization_code" in grant_types and not redirect_uris:
            raise ValidationError(
                "at least one is needed for the authorization code grant", field="redirect_uris"
            )
        uris = [check_redirect_uri(u) for u in redirect_uris]
        method = "none" if public else (auth_method or "client_secret_basic")
        if (
            method not in ("none", "client_secret_basic", "client_secret_post")
            or (method == "none") != public
        ):
            raise ValidationError(
                "must match whether the client is public", field="token_endpoint_auth_method"
            )
        secret = None if public else (secret or secrets.token_urlsafe(SECRET_BYTES))
        client = OAuthClient(
            client_id=client_id or secrets.token_urlsafe(16),
            secret_hash=hash_secret(secret) if secret else None,
            name=name,
            operator=operator.strip(),
            purpose=purpose.strip(),
            verified=verified,
            redirect_uris=json.dumps(uris),
            scope=scope_words.join(requested),
            grant_types=json.dumps(grant_types),
            token_endpoint_auth_method=method,
            users=users,
        )
        self.session.add(client)
        self.session.flush()
        return NewClient(client, secret)

    def get(self, client_id: str) -> OAuthClient | None:
        client = self.session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
        return client if client is not None and client.disabled_at is None else None

    def all(self) -> list[OAuthClient]:
        return list(self.session.scalars(select(OAuthClient).order_by(OAuthClient.created_at)))

    def issue_initial_access_token(self, note: str = "") -> tuple[str, dt.datetime]:
        token = secrets.token_urlsafe(SECRET_BYTES)
        expires = utcnow() + INITIAL_ACCESS_TOKEN_TTL
        self.session.add(InitialAccessToken(token_hash=hash_secret(token), note=note, expires_at=expires))
        self.session.flush()
        return token, expires

    def spend_initial_access_token(self, token: str) -> bool:
        """True once for a valid, unexpired, unused token; it cannot register a second client."""
        row = self.session.scalar(
            select(InitialAccessToken).where(InitialAccessToken.token_hash == hash_secret(token))
        )
        if row is None or row.used_at is not None or row.expires_at <= utcnow():
            return False
        row.used_at = utcnow()
        return True

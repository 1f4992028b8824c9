"""Authlib grants, subclassed for pds: PKCE S256 for everyone, one-time codes, rotating refresh tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode, UserInfo
from joserfc.jwk import ECKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from consent import events
from consent.models import AuthorizationCode, Grant, OAuthToken, Organisation, StaffMember
from consent.oauth.context import OAuthContext, Subject
from consent.signing import ALG, MAX_SIGNED_LIFETIME
from pds.db import utcnow
from pds.vault.citizens import CitizenService
from pds.vault.crypto import KeyProvider
from pds.vault.keys import DataKeys

log = logging.getLogger(__name__)

CODE_TTL = dt.timedelta(seconds=60)  # RFC 6749 s4.1.2 recommends at most 10 minutes; a browser needs seconds
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class InvalidTargetError(OAuth2Error):
    """RFC 8707 s2: the resource asked for is not one this server issues tokens for."""

    error = "invalid_target"


def ctx_of(grant: Any) -> OAuthContext:
    return grant.server.ctx  # type: ignore[no-any-return]


def requested_resource(ctx: OAuthContext, data: dict[str, Any]) -> str:
    """The audience from `resource` (RFC 8707) or SMART's `aud`; the API if neither."""
    resource = data.get("resource") or data.get("aud") or ctx.default_resource
    if resource not in ctx.resources:
        raise InvalidTargetError(f"resource must be one of {', '.join(ctx.resources)}")
    return str(resource)


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only, required of every client, confidential ones too (RFC 9700 s2.1.1)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge and code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_authorization_request(self) -> str:
        redirect_uri = super().validate_authorization_request()
        if not self.request.payload.state:  # our CSRF defence for the client, so not optional
            raise InvalidRequestError("state is required", redirect_uri=redirect_uri)
        try:
            requested_resource(ctx_of(self), self.request.payload.data)
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        return str(redirect_uri)

    def save_authorization_code(self, code: str, request: Any) -> None:
        subject: Subject = request.user
        data = request.payload.data
        ctx_of(self).session().add(
            AuthorizationCode(
                code_hash=sha256(code),
                client_id=request.client.get_client_id(),
                citizen_id=subject.citizen_id,
                grant_id=subject.grant_id,
                staff_id=subject.staff_id,
                redirect_uri=request.payload.redirect_uri or "",
                scope=subject.scope,
                resource=subject.resource,
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method="S256",
                auth_time=subject.auth_time,
                expires_at=utcnow() + CODE_TTL,
            )
        )

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        ctx = ctx_of(self)
        row = ctx.session().scalar(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == sha256(code))
        )
        if row is None or row.client_id != client.get_client_id():
            return None  # a code is bound to the client it was issued to
        if row.used_at is not None:
            revoke_issued_from_code(ctx, row)
            return None
        if row.expires_at <= utcnow():
            return None
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Mark the code used (kept, so a replay can be recognised); a concurrent redemption loses."""
        done = (
            ctx_of(self)
            .session()
            .execute(
                update(AuthorizationCode)
                .where(AuthorizationCode.id == authorization_code.id, AuthorizationCode.used_at.is_(None))
                .values(used_at=utcnow())
            )
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidGrantError("Invalid 'code' in request.")

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Subject | None:
        if authorization_code.staff_id is not None:
            return staff_subject(
                ctx_of(self).session(),
                authorization_code.staff_id,
                scope=authorization_code.scope,
                resource=authorization_code.resource,
                auth_time=authorization_code.auth_time,
                code_id=authorization_code.id,
            )
        grant = ctx_of(self).session().get(Grant, authorization_code.grant_id)
        if grant is None or not grant.is_live(utcnow()):
            return None
        return Subject(
            citizen_id=authorization_code.citizen_id,
            grant_id=authorization_code.grant_id,
            scope=authorization_code.scope,
            resource=authorization_code.resource,
            auth_time=authorization_code.auth_time,
            code_id=authorization_code.id,
        )


def revoke_issued_from_code(ctx: OAuthContext, code: AuthorizationCode) -> None:
    """A replayed code revokes every token it issued (RFC 6749 s4.1.2), committed even though the
    replay itself is answered with an error."""
    code_id, client_id, citizen_id, grant_id = code.id, code.client_id, code.citizen_id, code.grant_id
    ctx.session().rollback()  # it has only read so far; release its hold (SQLite's write lock) first
    with ctx.sessions() as session, session.begin():
        families = session.scalars(select(OAuthToken.family_id).where(OAuthToken.code_id == code_id)).all()
        if families:
            session.execute(
                update(OAuthToken)
                .where(OAuthToken.family_id.in_(families), OAuthToken.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        events.append_event(
            session,
            events.CODE_REPLAY,
            actor=f"client:{client_id}",
            citizen_id=citizen_id,
            grant_id=grant_id,
            details={"tokens_revoked": len(families)},
        )
    log.warning("authorization code replayed by client %s; its tokens were revoked", client_id)


class RotatingRefreshGrant(grants.RefreshTokenGrant):
    """Every refresh returns a new refresh token; reusing an old one revokes the family (RFC 9700 s4.14.2)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> OAuthToken | None:
        ctx = ctx_of(self)
        row = ctx.session().scalar(select(OAuthToken).where(OAuthToken.refresh_hash == sha256(refresh_token)))
        if row is None:
            return None
        if row.refresh_used_at is not None:
            revoke_family(ctx, row)
            return None
        if row.revoked_at is not None or (row.refresh_expires_at and row.refresh_expires_at <= utcnow()):
            return None
        return row

    def authenticate_user(self, refresh_token: OAuthToken) -> Subject:
        if refresh_token.staff_id is not None:
            subject = staff_subject(
                ctx_of(self).session(),
                refresh_token.staff_id,
                scope=refresh_token.scope,
                resource=refresh_token.audience,
                auth_time=int(refresh_token.issued_at.timestamp()),
                family_id=refresh_token.family_id,
            )
            if subject is None:
                raise InvalidGrantError("this member of staff's access has been revoked")
            return subject
        grant = ctx_of(self).session().get(Grant, refresh_token.grant_id)
        if grant is None or refresh_token.citizen_id is None or not grant.is_live(utcnow()):
            raise InvalidGrantError("the consent behind this token is no longer live")
        return Subject(
            citizen_id=refresh_token.citizen_id,
            grant_id=grant.id,
            scope=refresh_token.scope,
            resource=refresh_token.audience,
            auth_time=int(refresh_token.issued_at.timestamp()),
            family_id=refresh_token.family_id,
        )

    def revoke_old_credential(self, refresh_token: OAuthToken) -> None:
        done = (
            ctx_of(self)
            .session()
            .execute(
                update(OAuthToken)
                .where(OAuthToken.id == refresh_token.id, OAuthToken.refresh_used_at.is_(None))
                .values(refresh_used_at=utcnow())
            )
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidGrantError("the refresh token was already used")


def revoke_family(ctx: OAuthContext, token: OAuthToken) -> None:
    """Committed even though the request is answered with an error (RFC 9700 s4.14.2)."""
    family, client_id, citizen_id, grant_id = (
        token.family_id,
        token.client_id,
        token.citizen_id,
        token.grant_id,
    )
    ctx.session().rollback()  # it has only read so far; release its hold (SQLite's write lock) first
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(OAuthToken)
            .where(OAuthToken.family_id == family, OAuthToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        events.append_event(
            session,
            events.TOKEN_REUSE,
            actor=f"client:{client_id}",
            citizen_id=citizen_id,
            grant_id=grant_id,
            details={"family": str(family)},
        )
    log.warning("refresh token reused by client %s; its family was revoked", client_id)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """For service connectors and systems: a token that names no citizen, so it reads no vault."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class PdsOpenIDCode(OpenIDCode):
    """id_token for the authorization code flow, signed with pds's current ES256 key.

    One instance serves every request, so per-request state lives on the request's client object.
    """

    def __init__(self, ctx: OAuthContext) -> None:
        super().__init__(require_nonce=False)
        self.ctx = ctx

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        found = self.ctx.session().scalar(
            select(AuthorizationCode.id).where(
                AuthorizationCode.nonce == nonce, AuthorizationCode.client_id == request.payload.client_id
            )
        )
        return found is not None

    def get_encode_header(self, client: Any) -> dict[str, str]:
        client.signing_key = self.ctx.signing().active()
        return {"alg": ALG, "kid": client.signing_key.kid}

    def resolve_client_private_key(self, client: Any) -> Any:
        return ECKey.import_key(client.signing_key.as_jwk())

    def get_client_algorithm(self, client: Any) -> str:
        return ALG

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.ctx.issuer,
            "aud": [client.get_client_id()],
            "iat": now,
            "exp": now + int(MAX_SIGNED_LIFETIME.total_seconds()),
        }

    def generate_user_info(self, user: Subject, scope: str) -> UserInfo:
        if user.staff_id is not None:
            return staff_info(self.ctx.session(), user.staff_id, scope)
        info = user_info(self.ctx.session(), self.ctx.provider, user.citizen_id, scope)
        if "profile" in scope.split():  # name and email leave in the id_token: a read like any other
            events.append_event(
                self.ctx.session(),
                events.RECORDS_READ,
                actor="oauth:id_token",
                citizen_id=user.citizen_id,
                grant_id=user.grant_id,
                details={"what": "profile", "claims": sorted(k for k in info if k != "sub")},
            )
        return info


def user_info(session: Session, provider: KeyProvider, citizen_id: Any, scope: str) -> UserInfo:
    """OIDC claims about the citizen: `sub` always; name and email with the profile scope."""
    info = UserInfo(sub=str(citizen_id))
    if "profile" in scope.split():
        profile = CitizenService(session, keys=DataKeys(session, provider=provider)).get(citizen_id)
        # OIDC Core s5.3.2: a claim with no value is left out, not sent as null
        info.update({k: v for k, v in (("name", profile.name), ("email", profile.email)) if v})
    return info


def staff_subject(session: Session, staff_id: Any, **fields: Any) -> Subject | None:
    """A professional as a token's subject, only while they are still active."""
    member = session.get(StaffMember, staff_id)
    if member is None or member.status != "active":
        return None
    return Subject(citizen_id=None, grant_id=None, staff_id=member.id, **fields)


def staff_info(session: Session, staff_id: Any, scope: str) -> UserInfo:
    """OIDC claims about a professional: `sub`; with profile, their name, email, organisation and role."""
    info = UserInfo(sub=str(staff_id))
    member = session.get(StaffMember, staff_id)
    if member is not None and "profile" in scope.split():
        org = session.get(Organisation, member.org_id)
        info.update({"name": member.name, "email": member.email, "role": member.role})
        if org is not None:
            info.update({"org": org.code, "org_name": org.name})
    return info

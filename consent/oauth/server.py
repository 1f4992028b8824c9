"""The authorization server: Authlib's Flask server wired to pds's tables, keys and grants."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, request
from sqlalchemy import select, update

from consent import scopes
from consent.clients import ClientService
from consent.models import Grant, OAuthToken
from consent.oauth.clients import AuthlibClient
from consent.oauth.context import OAuthContext, Subject
from consent.oauth.grants import (
    AUTH_METHODS,
    ClientCredentialsGrant,
    CodeGrant,
    PdsOpenIDCode,
    RotatingRefreshGrant,
    S256CodeChallenge,
    requested_resource,
    sha256,
)
from consent.oauth.registration import Registration
from consent.tokens import ACCESS_TOKEN_TTL, issue_access_token
from pds.db import utcnow

REFRESH_TOKEN_TTL = dt.timedelta(days=30)  # and never past the grant's end
STAFF_REFRESH_TTL = dt.timedelta(hours=12)  # a professional signs in again each working day
REFRESH_TOKEN_BYTES = 48


class TokenGenerator:
    """Access tokens as signed JWTs; refresh tokens random, only with offline_access."""

    def __init__(self, ctx: OAuthContext) -> None:
        self.ctx = ctx

    def __call__(
        self,
        grant_type: str,
        client: AuthlibClient,
        user: Subject | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        scope = scope or ""
        audience = user.resource if user else requested_resource(self.ctx, request.form.to_dict())
        token, _ = issue_access_token(
            self.ctx.signing().active(),
            issuer=self.ctx.issuer,
            client_id=client.get_client_id(),
            scope=scope,
            audience=audience,
            citizen_id=user.citizen_id if user else None,
            grant_id=user.grant_id if user else None,
            auth_time=user.auth_time if user else None,
            staff_id=user.staff_id if user else None,
        )
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(ACCESS_TOKEN_TTL.total_seconds()),
            "scope": scope,
        }
        if user and include_refresh_token and "offline_access" in scope.split():
            body["refresh_token"] = generate_token(REFRESH_TOKEN_BYTES)
        return body


class PdsAuthorizationServer(AuthorizationServer):
    def __init__(self, ctx: OAuthContext) -> None:
        super().__init__()
        self.ctx = ctx

    def query_client(self, client_id: str) -> AuthlibClient | None:
        row = ClientService(self.ctx.session()).get(client_id)
        return AuthlibClient(row) if row else None

    def save_token(self, token: dict[str, Any], req: Any) -> None:
        claims = jwt.decode(token["access_token"], options={"verify_signature": False})
        user: Subject | None = req.user
        refresh = token.get("refresh_token")
        refresh_expires = None
        if refresh and user and user.staff_id:
            refresh_expires = utcnow() + STAFF_REFRESH_TTL
        elif refresh and user:
            grant = self.ctx.session().get(Grant, user.grant_id)
            refresh_expires = min(utcnow() + REFRESH_TOKEN_TTL, grant.ends_at) if grant else utcnow()
        self.ctx.session().add(
            OAuthToken(
                jti=claims["jti"],
                refresh_hash=sha256(refresh) if refresh else None,
                family_id=(user.family_id if user and user.family_id else uuid.uuid4()),
                client_id=req.client.get_client_id(),
                citizen_id=user.citizen_id if user else None,
                grant_id=user.grant_id if user else None,
                staff_id=user.staff_id if user else None,
                code_id=user.code_id if user else None,
                scope=token.get("scope", ""),
                audience=claims["aud"],
                access_expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
                refresh_expires_at=refresh_expires,
            )
        )

    def validate_requested_scope(self, scope: str | None) -> None:
        """The fixed vocabulary plus one push scope per connector (connector:<name>)."""
        if scope and not all(scopes.is_supported(s) for s in scopes.split(scope)):
            raise InvalidScopeError()

    def get_issuer(self) -> str:
        return self.ctx.issuer


@dataclass
class TokenRecord:
    """A stored token as the revocation and introspection endpoints see it: access or refresh."""

    row: OAuthToken
    kind: str

    def check_client(self, client: AuthlibClient) -> bool:
        return self.row.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.row.scope

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or (
            self.kind == "refresh_token" and self.row.refresh_used_at is not None
        )

    def is_expired(self) -> bool:
        ends = self.row.refresh_expires_at if self.kind == "refresh_token" else self.row.access_expires_at
        return ends is None or ends <= utcnow()


def find_token(ctx: OAuthContext, token: str, hint: str | None) -> TokenRecord | None:
    session = ctx.session()
    if hint != "refresh_token":
        try:
            jti = jwt.decode(token, options={"verify_signature": False}).get("jti")
        except jwt.PyJWTError:
            jti = None
        row = session.scalar(select(OAuthToken).where(OAuthToken.jti == jti)) if jti else None
        if row is not None:
            return TokenRecord(row, "access_token")
    row = session.scalar(select(OAuthToken).where(OAuthToken.refresh_hash == sha256(token)))
    return TokenRecord(row, "refresh_token") if row else None


class Revocation(RevocationEndpoint):
    """RFC 7009. Revoking either token of an issue revokes its whole refresh family."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        return find_token(self.server.ctx, token_string, token_type_hint)

    def revoke_token(self, token: TokenRecord, req: Any) -> None:
        self.server.ctx.session().execute(
            update(OAuthToken)
            .where(OAuthToken.family_id == token.row.family_id, OAuthToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


class Introspection(IntrospectionEndpoint):
    """RFC 7662, for the client the token was issued to. Inactive once its grant is not live."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        found = find_token(self.server.ctx, token_string, token_type_hint)
        if found and found.row.grant_id:
            grant = self.server.ctx.session().get(Grant, found.row.grant_id)
            if grant is None or not grant.is_live(utcnow()):
                return None
        return found

    def check_permission(self, token: TokenRecord, client: AuthlibClient, req: Any) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
        row = token.row
        ends = row.refresh_expires_at if token.kind == "refresh_token" else row.access_expires_at
        body: dict[str, Any] = {
            "active": True,
            "scope": row.scope,
            "client_id": row.client_id,
            "exp": int(ends.timestamp()) if ends else None,
            "iat": int(row.issued_at.timestamp()),
            "iss": self.server.ctx.issuer,
            "aud": row.audience,
            "sub": str(row.citizen_id or row.staff_id or "") or row.client_id,
        }
        if token.kind == "access_token":
            body["token_type"] = "Bearer"  # noqa: S105  RFC 7662 s2.2; refresh tokens have no RFC 6749 type
        if row.grant_id:
            body["grant"] = str(row.grant_id)
        return body


def build_server(app: Flask, ctx: OAuthContext, metadata: dict[str, Any]) -> PdsAuthorizationServer:
    server = PdsAuthorizationServer(ctx)
    app.config["OAUTH2_SCOPES_SUPPORTED"] = list(scopes.SUPPORTED_SCOPES)
    server.init_app(app)
    server.register_token_generator("default", TokenGenerator(ctx))
    server.register_grant(CodeGrant, [S256CodeChallenge(required=True), PdsOpenIDCode(ctx)])
    server.register_grant(RotatingRefreshGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    server.register_endpoint(Registration(server, metadata))
    issuer = IssuerParameter()
    issuer.get_issuer = server.get_issuer  # type: ignore[method-assign]
    server.register_extension(issuer)
    return server

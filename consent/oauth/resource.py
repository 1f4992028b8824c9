"""The resource side: Authlib's ResourceProtector with a validator that checks the live grant.

A token is accepted only if its signature, audience and expiry hold, it has not been revoked,
and the grant it carries is live at this moment (so revoking a grant bites on the next request).
Failures become RFC 9457 problems that also carry RFC 6750's WWW-Authenticate challenge.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import MissingAuthorizationError, UnsupportedTokenTypeError
from authlib.oauth2.rfc6750 import BearerTokenValidator, InsufficientScopeError, InvalidTokenError
from sqlalchemy.orm import Session

from consent import scopes
from consent.models import LiveGrant
from consent.services import GrantNotLive, GrantService, TokenRevoked
from consent.tokens import AccessClaims, InvalidToken, TokenVerifier
from pds.errors import PdsError

SYSTEM_TOKEN = "this token was issued to a system and reads no citizen's records"  # noqa: S105 (a message)
GRANT_NOT_LIVE = "the consent behind this token was revoked or has ended"


class BearerError(PdsError):
    """RFC 6750 s3.1: the error also goes in WWW-Authenticate."""

    status = 401
    slug = "invalid-token"
    title = "Invalid token"
    error = "invalid_token"

    def headers(self) -> dict[str, str]:
        description = self.detail.replace('"', "'")
        return {
            "WWW-Authenticate": f'Bearer realm="pds", error="{self.error}", error_description="{description}"'
        }


class NoCredentials(BearerError):
    """RFC 6750 s3.1: a request with no bearer token at all gets a challenge without an error code."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="pds"'}


class InsufficientScope(BearerError):
    status = 403
    slug = "insufficient-scope"
    title = "Insufficient scope"
    error = "insufficient_scope"


@dataclass
class Access:
    """A token that passed every check, with the grant it carries and what both allow."""

    claims: AccessClaims
    grant: LiveGrant | None = None
    categories: list[str] = field(default_factory=list)  # the token's scope and the grant both allow

    @property
    def citizen_id(self) -> uuid.UUID:
        assert self.grant is not None
        return self.grant.citizen_id

    def window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The record dates the grant covers, as [since, until)."""
        assert self.grant is not None
        return self.grant.record_window()


class GrantBoundValidator(BearerTokenValidator):
    def __init__(
        self,
        *,
        session: Callable[[], Session],
        issuer: Callable[[], str],
        audience: Callable[[], str],
        on_grant_not_live: Callable[[uuid.UUID], None],
    ) -> None:
        super().__init__()
        self.session, self.issuer, self.audience = session, issuer, audience
        self.on_grant_not_live = on_grant_not_live

    def authenticate_token(self, token_string: str) -> Access:
        try:
            claims = TokenVerifier(self.session(), issuer=self.issuer()).verify(
                token_string, audience=self.audience()
            )
        except InvalidToken as exc:
            raise InvalidTokenError(description=str(exc)) from None
        return Access(claims)

    def validate_token(self, token: Access, scopes_needed: Any, request: Any) -> None:
        claims = token.claims
        session = self.session()
        # 1. it carries a citizen's grant (a system's client-credentials token reads no vault)
        if claims.grant_id is None or claims.citizen_id is None:
            raise InsufficientScopeError(description=SYSTEM_TOKEN)
        # 2. issued by us and not revoked since; 3. its grant is live now, this citizen's, this client's
        try:
            grant = GrantService(session).check_for_read(
                jti=claims.jti,
                grant_id=claims.grant_id,
                citizen_id=claims.citizen_id,
                client_id=claims.client_id,
            )
        except TokenRevoked:
            raise InvalidTokenError(description="the token has been revoked") from None
        except GrantNotLive:
            self.on_grant_not_live(claims.grant_id)
            raise InvalidTokenError(description=GRANT_NOT_LIVE) from None
        token.grant = grant
        # 4. what the token's scope and the grant both allow
        token.categories = [c for c in scopes.categories_of(claims.scope) if c in grant.category_list]
        for needed in scopes_needed or []:
            if needed not in claims.scopes:
                raise InsufficientScopeError(description=f"this needs the {needed} scope")


class PdsResourceProtector(ResourceProtector):
    """Authlib's protector, answering in problem+json instead of its bare JSON."""

    def raise_error_response(self, error: OAuth2Error) -> None:
        description = error.description or ""
        if isinstance(error, MissingAuthorizationError | UnsupportedTokenTypeError):
            raise NoCredentials("send an access token: Authorization: Bearer <token>")
        if isinstance(error, InsufficientScopeError):
            raise InsufficientScope(description or "the token's scope does not allow this")
        raise BearerError(description or "the token is not valid")

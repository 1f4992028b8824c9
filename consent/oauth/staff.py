"""The resource side for professionals' systems (a GP system): a validator for staff access tokens.

A professional's token carries no grant: what they may read is each patient's grant to them, checked
on each read. What this validator checks, on every request, is who is asking: a token pds issued for
this API, to a professional (never a citizen's app), not revoked, with the consent.requests scope, held
by a member of staff who is still active now (revoking them bites on their next request).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6750 import BearerTokenValidator, InsufficientScopeError, InvalidTokenError
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import OAuthToken, StaffMember
from consent.scopes import STAFF_SCOPE
from consent.tokens import AccessClaims, InvalidToken, TokenVerifier

NOT_STAFF = (
    "this token acts for a citizen or a system, not a professional: "
    "consent requests need a token a professional signed in for"
)
STAFF_REVOKED = "this member of staff's access has been revoked"
TOKEN_REVOKED = "the token has been revoked"  # noqa: S105 (a message)


@dataclass
class StaffAccess:
    """A professional's token that passed every check, and the member of staff holding it."""

    claims: AccessClaims
    member: StaffMember | None = None

    @property
    def staff(self) -> StaffMember:
        assert self.member is not None
        return self.member


def token_holder(session: Session, *, jti: str, staff_id: uuid.UUID) -> StaffMember:
    """The member of staff a stored, unrevoked token of theirs belongs to, if they are active now.

    One query: every request of a GP system pays for it. Raises InvalidTokenError otherwise.
    """
    row = session.execute(
        select(StaffMember, OAuthToken.revoked_at)
        .join(OAuthToken, OAuthToken.staff_id == StaffMember.id)
        .where(OAuthToken.jti == jti, StaffMember.id == staff_id)
    ).first()
    if row is None or row[1] is not None:
        raise InvalidTokenError(description=TOKEN_REVOKED)
    member: StaffMember = row[0]
    if member.status != "active":
        raise InvalidTokenError(description=STAFF_REVOKED)
    return member


class StaffTokenValidator(BearerTokenValidator):
    def __init__(
        self, *, session: Callable[[], Session], issuer: Callable[[], str], audience: Callable[[], str]
    ) -> None:
        super().__init__()
        self.session, self.issuer, self.audience = session, issuer, audience

    def authenticate_token(self, token_string: str) -> StaffAccess:
        # 1. signed by pds, for this API (RFC 9068 s4: aud), from this issuer, in date
        try:
            claims = TokenVerifier(self.session(), issuer=self.issuer()).verify(
                token_string, audience=self.audience()
            )
        except InvalidToken as exc:
            raise InvalidTokenError(description=str(exc)) from None
        return StaffAccess(claims)

    def validate_token(self, token: StaffAccess, scopes_needed: Any, request: Any) -> None:
        claims = token.claims
        # 2. a professional's token: a citizen's app (or a system's client credentials) asks nothing here
        if claims.staff_id is None:
            raise InsufficientScopeError(description=NOT_STAFF)
        # 3. issued by us and not revoked since; 4. its professional still active now
        token.member = token_holder(self.session(), jti=claims.jti, staff_id=claims.staff_id)
        # 5. the scope that lets a system act for its professionals here (RFC 6750 s3.1)
        for needed in [STAFF_SCOPE, *(scopes_needed or [])]:
            if needed not in claims.scopes:
                raise InsufficientScopeError(description=f"this needs the {needed} scope")

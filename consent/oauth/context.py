"""What the Authlib glue needs from pds: the request's database session, keys and the issuer."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from consent.signing import SigningKeys
from pds.vault.crypto import KeyProvider

API_PATH = "/api/v1"
FHIR_PATH = "/fhir"


@dataclass(frozen=True)
class OAuthContext:
    issuer: str
    session: Callable[[], Session]  # the current request's session, committed when the response is a success
    sessions: sessionmaker[Session]  # for what must be committed even when the response is an error
    provider: KeyProvider

    @property
    def resources(self) -> tuple[str, ...]:
        """The audiences a token may be issued for (RFC 8707 resource, or SMART's aud)."""
        return (self.issuer + API_PATH, self.issuer + FHIR_PATH)

    @property
    def default_resource(self) -> str:
        return self.issuer + API_PATH

    def signing(self) -> SigningKeys:
        return SigningKeys(self.session(), provider=self.provider)


@dataclass(frozen=True)
class Subject:
    """Who signed in, as Authlib carries them through a grant: a citizen with the grant they approved,
    or a professional (staff_id; no grant: what they may read is each patient's grant to them)."""

    citizen_id: uuid.UUID | None
    grant_id: uuid.UUID | None
    scope: str
    resource: str
    auth_time: int
    code_id: int | None = None
    family_id: uuid.UUID | None = None
    staff_id: uuid.UUID | None = None

    def get_user_id(self) -> str:
        return str(self.staff_id or self.citizen_id)

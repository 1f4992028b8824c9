"""Consent tables: OAuth clients, codes and tokens (secrets hashed), grants, and signing keys."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlmodel import Field, SQLModel

from pds.db import UTCDateTime, utcnow

GRANT_STATUSES = ("active", "revoked", "expired")
ORG_KINDS = ("gp_practice", "school", "council", "police")
ROLES = ("gp", "nurse", "teacher", "caseworker", "officer", "admin")
STAFF_STATUSES = ("active", "revoked")
REQUEST_STATUSES = ("pending", "approved", "approved_with_changes", "refused", "expired", "withdrawn")


def _when(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable)


class OAuthClient(SQLModel, table=True):
    """An app or system that may ask citizens for access. Its secret is kept only as a hash."""

    __tablename__ = "oauth_client"
    __table_args__ = (
        CheckConstraint(
            "token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')",
            name="auth_method",
        ),
        CheckConstraint("users IN ('citizens', 'staff')", name="users"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(sa_type=String(64), unique=True)
    secret_hash: str | None = Field(default=None, sa_type=String(128))
    name: str = Field(sa_type=String(200))
    operator: str = Field(default="", sa_type=String(200))  # who runs the app, shown on the consent screen
    purpose: str = Field(default="", sa_type=Text)  # why it asks, in the app's words
    verified: bool = Field(default=False, sa_type=Boolean)  # the operator checked who runs it
    # who signs in to it: citizens (apps), or professionals (the portal, GP systems)
    users: str = Field(
        default="citizens", sa_column=Column(String(16), nullable=False, server_default="citizens")
    )
    redirect_uris: str = Field(default="[]", sa_type=Text)  # JSON list, matched exactly
    scope: str = Field(default="", sa_type=Text)  # the most it may ever ask for
    grant_types: str = Field(default="[]", sa_type=Text)  # JSON list
    token_endpoint_auth_method: str = Field(sa_type=String(32))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    disabled_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))

    @property
    def redirect_uri_list(self) -> list[str]:
        return list(json.loads(self.redirect_uris))

    @property
    def grant_type_list(self) -> list[str]:
        return list(json.loads(self.grant_types))

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"  # noqa: S105 (a method name)


class AskedFor:
    """Categories and FHIR types, stored comma-separated, as lists: grants and requests both hold them."""

    if TYPE_CHECKING:  # the columns it reads; declared by each class, not here (they would be fields)
        categories: str
        resource_types: str

    @property
    def category_list(self) -> list[str]:
        return [c for c in self.categories.split(",") if c]

    @property
    def resource_type_list(self) -> list[str]:
        return [t for t in self.resource_types.split(",") if t]


class GrantTerms(AskedFor):
    """What a grant allows and when, worked out from its columns: shared by Grant and LiveGrant."""

    if TYPE_CHECKING:
        status: str
        starts_at: dt.datetime
        ends_at: dt.datetime
        records_from: dt.date | None
        records_until: dt.date | None

    def is_live(self, now: dt.datetime) -> bool:
        return self.status == "active" and self.starts_at <= now < self.ends_at

    def record_window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The record dates the grant covers, as [since, until)."""
        start, end = self.records_from, self.records_until
        since = dt.datetime.combine(start, dt.time(), dt.UTC) if start else None
        until = dt.datetime.combine(end, dt.time(), dt.UTC) + dt.timedelta(days=1) if end else None
        return since, until

    def covers_kind(self, kind: str) -> bool:
        """Whether a record of this kind is within the grant's FHIR resource types (if it names any)."""
        types = self.resource_type_list
        return not types or not kind.startswith("fhir:") or kind.partition(":")[2] in types


class Grant(GrantTerms, SQLModel, table=True):
    """The consent itself: a citizen lets a grantee read some categories, for a purpose, for a time.

    Tokens only carry a grant; every read checks the grant is still live.
    """

    __tablename__ = "consent_grant"
    __table_args__ = (
        CheckConstraint(f"status IN {GRANT_STATUSES!r}", name="status"),
        Index("ix_consent_grant_citizen_id_client_id", "citizen_id", "client_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    citizen_id: uuid.UUID = Field(sa_column=Column(ForeignKey("citizen.id"), nullable=False))
    client_id: str = Field(sa_type=String(64))  # an app's client_id, or "staff:<id>" for a professional
    # a professional grantee (a GP, say): they read it in the portal or through their GP system
    staff_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("staff_member.id"), nullable=True, index=True)
    )
    categories: str = Field(sa_type=String(64))  # comma-separated record categories
    # comma-separated FHIR types; empty: all of them
    resource_types: str = Field(default="", sa_column=Column(Text(), nullable=False, server_default=""))
    emergency: bool = Field(default=False, sa_column=Column(Boolean(), nullable=False, server_default="0"))
    scope: str = Field(default="", sa_type=Text)  # the OAuth scopes approved
    purpose: str = Field(default="", sa_type=Text)
    status: str = Field(default="active", sa_type=String(16))
    starts_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    ends_at: dt.datetime = Field(sa_column=_when())
    records_from: dt.date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    records_until: dt.date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    revoked_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))


@dataclass(frozen=True)
class LiveGrant(GrantTerms):
    """A grant as a read found it live: the columns a read uses, read without the ORM (every read pays
    for it). Those the live check compares are in GrantService.check_for_read."""

    id: uuid.UUID
    citizen_id: uuid.UUID
    client_id: str
    categories: str
    resource_types: str
    purpose: str
    status: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    records_from: dt.date | None
    records_until: dt.date | None


class AuthorizationCode(SQLModel, table=True):
    """A one-time code, bound to its client, redirect URI and PKCE challenge; kept only as a hash."""

    __tablename__ = "oauth_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(sa_type=String(64), unique=True)
    client_id: str = Field(sa_type=String(64))
    # a citizen with the grant they approved, or a professional signing in (no grant)
    citizen_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("citizen.id"), nullable=True)
    )
    grant_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("consent_grant.id"), nullable=True)
    )
    staff_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("staff_member.id"), nullable=True)
    )
    redirect_uri: str = Field(sa_type=Text)
    scope: str = Field(sa_type=Text)
    resource: str = Field(sa_type=Text)
    nonce: str | None = Field(default=None, sa_type=String(255))
    code_challenge: str = Field(sa_type=String(128))
    code_challenge_method: str = Field(sa_type=String(8))
    auth_time: int = Field()
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    expires_at: dt.datetime = Field(sa_column=_when())
    used_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))

    # Authlib's AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd", "otp"] if self.staff_id else ["pwd"]


class OAuthToken(SQLModel, table=True):
    """One issue of tokens: the access token's jti and the refresh token's hash, never the tokens.

    Refresh tokens rotate; each rotation stays in the same family, so replaying an old one
    revokes the whole family (RFC 9700 s4.14.2).
    """

    __tablename__ = "oauth_token"

    id: int | None = Field(default=None, primary_key=True)
    jti: str = Field(sa_type=String(64), unique=True)
    refresh_hash: str | None = Field(default=None, sa_type=String(64), unique=True)
    family_id: uuid.UUID = Field(
        default_factory=uuid.uuid4, sa_column=Column(Uuid(), nullable=False, index=True)
    )
    client_id: str = Field(sa_type=String(64), index=True)
    citizen_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("citizen.id"), nullable=True)
    )
    grant_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("consent_grant.id"), nullable=True, index=True)
    )
    staff_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("staff_member.id"), nullable=True, index=True)
    )
    code_id: int | None = Field(default=None, sa_column=Column(ForeignKey("oauth_code.id"), nullable=True))
    scope: str = Field(sa_type=Text)
    audience: str = Field(sa_type=Text)
    issued_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    access_expires_at: dt.datetime = Field(sa_column=_when())
    refresh_expires_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))
    refresh_used_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))

    # Authlib's TokenMixin
    def check_client(self, client: OAuthClient) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.access_expires_at - utcnow()).total_seconds()))

    def is_expired(self) -> bool:
        return self.access_expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class SigningKey(SQLModel, table=True):
    """A key pds signs tokens with. The private half is sealed under the active key-encryption key."""

    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True, sa_type=String(64))
    alg: str = Field(sa_type=String(16))
    kek_id: str = Field(sa_type=String(32))
    private_key: bytes = Field(sa_type=LargeBinary)
    public_jwk: str = Field(sa_type=Text)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    retired_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))


class InitialAccessToken(SQLModel, table=True):
    """Lets one app register itself (RFC 7591 s3); issued by the operator, stored as a hash."""

    __tablename__ = "oauth_initial_access_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=String(64), unique=True)
    note: str = Field(default="", sa_type=String(200))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    expires_at: dt.datetime = Field(sa_column=_when())
    used_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Organisation(SQLModel, table=True):
    """A GP practice (by ODS code), a school, a council or a police force whose staff use pds."""

    __tablename__ = "organisation"
    __table_args__ = (
        CheckConstraint(_in("kind", ORG_KINDS), name="kind"),
        UniqueConstraint("kind", "code"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(sa_type=String(16))
    code: str = Field(sa_type=String(32))  # ODS code, school URN, council or force code
    name: str = Field(sa_type=String(200))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())


class StaffMember(SQLModel, table=True):
    """A professional of one organisation. Password as an argon2id hash; the second factor's secret sealed
    under the key-encryption key; `session_epoch` ends every portal session when raised."""

    __tablename__ = "staff_member"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint(_in("status", STAFF_STATUSES), name="status"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(sa_column=Column(ForeignKey("organisation.id"), nullable=False, index=True))
    name: str = Field(sa_type=String(200))
    email: str = Field(sa_type=String(320), unique=True)  # lower case: how they sign in
    role: str = Field(sa_type=String(16))
    status: str = Field(default="active", sa_type=String(16))
    password_hash: str = Field(sa_type=String(255))
    totp_kek_id: str | None = Field(default=None, sa_type=String(32))
    totp_secret: bytes | None = Field(default=None, sa_type=LargeBinary)
    totp_last_step: int | None = Field(default=None, sa_type=BigInteger)
    session_epoch: int = Field(default=0, sa_column=Column(Integer(), nullable=False, server_default="0"))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    revoked_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))


class ConsentRequest(AskedFor, SQLModel, table=True):
    """A professional asks a citizen for consent. Made for an NHS number whether or not it is known here,
    so the asker learns nothing beyond "request sent"; the number itself is kept only as its blind index."""

    __tablename__ = "consent_request"
    __table_args__ = (CheckConstraint(_in("status", REQUEST_STATUSES), name="status"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(sa_column=Column(ForeignKey("organisation.id"), nullable=False, index=True))
    staff_id: uuid.UUID = Field(sa_column=Column(ForeignKey("staff_member.id"), nullable=False))
    citizen_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("citizen.id"), nullable=True, index=True)
    )
    patient_blind: bytes = Field(sa_type=LargeBinary)  # blind index of the NHS number asked about
    patient_hint: str = Field(sa_type=String(8))  # its last three digits, for the asker's list
    purpose: str = Field(sa_type=Text)
    categories: str = Field(sa_type=String(64))
    resource_types: str = Field(default="", sa_type=Text)
    days: int = Field(sa_type=Integer)  # how long the access is asked for
    records_from: dt.date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    records_until: dt.date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    callback_url: str | None = Field(default=None, sa_type=Text)  # told (signed) when the citizen decides
    callback_due_at: dt.datetime | None = Field(  # indexed: each server's sender asks every few seconds
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    callback_attempts: int = Field(default=0, sa_column=Column(Integer(), nullable=False, server_default="0"))
    callback_error: str = Field(default="", sa_column=Column(Text(), nullable=False, server_default=""))
    status: str = Field(default="pending", sa_type=String(24))
    grant_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("consent_grant.id"), nullable=True)
    )
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    expires_at: dt.datetime = Field(sa_column=_when())  # unanswered by then: expired
    decided_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))

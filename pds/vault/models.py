"""Vault tables: citizens, their identifiers and data keys, guardian links, sources and records."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

from pds.db import UTCDateTime, utcnow

CATEGORIES = ("health", "education", "case")
IDENTIFIER_KINDS = ("nhs_number", "upn", "council_account", "crime_reference", "email")


def _when(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Citizen(SQLModel, table=True):
    """A person with a vault. Their name, email and birth date are sealed in `profile`."""

    __tablename__ = "citizen"
    __table_args__ = (CheckConstraint("status IN ('active', 'erased')", name="status"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    status: str = Field(default="active", sa_type=String(16))
    profile: bytes | None = Field(default=None, sa_type=LargeBinary)
    password_hash: str | None = Field(default=None, sa_type=String(255))
    # the second factor: a TOTP secret sealed with the data key, and the last time step used (no replay)
    totp_secret: bytes | None = Field(default=None, sa_type=LargeBinary)
    totp_last_step: int | None = Field(default=None, sa_type=BigInteger)
    # raised by "sign out everywhere": a browser session from before it is no longer signed in
    session_epoch: int = Field(default=0, sa_column=Column(Integer(), nullable=False, server_default="0"))
    # when they last opened their home page: "what is new since your last visit", on any device
    last_seen_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    erased_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))


class DataKeyRow(SQLModel, table=True):
    """A citizen's data key, wrapped by a key-encryption key. `wrapped` is NULL once destroyed."""

    __tablename__ = "data_key"

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: uuid.UUID = Field(sa_column=Column(ForeignKey("citizen.id"), nullable=False, index=True))
    kek_id: str = Field(sa_type=String(32), index=True)
    wrapped: bytes | None = Field(default=None, sa_type=LargeBinary)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    destroyed_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))


class KeyCheck(SQLModel, table=True):
    """A value each key must reproduce: a wrong or swapped key stops start-up instead of reading garbage."""

    __tablename__ = "key_check"

    key_id: str = Field(primary_key=True, sa_type=String(32))
    check_value: bytes = Field(sa_type=LargeBinary)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())


class Identifier(SQLModel, table=True):
    """An identifier to look a citizen up by: a keyed blind index and a sealed copy, never the clear value."""

    __tablename__ = "identifier"
    __table_args__ = (
        UniqueConstraint("kind", "blind_index"),
        CheckConstraint(_in("kind", IDENTIFIER_KINDS), name="kind"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    citizen_id: uuid.UUID = Field(sa_column=Column(ForeignKey("citizen.id"), nullable=False, index=True))
    kind: str = Field(sa_type=String(32))
    blind_index: bytes = Field(sa_type=LargeBinary)
    value: bytes = Field(sa_type=LargeBinary)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())


class GuardianLink(SQLModel, table=True):
    """A parent acting for a child, over some categories. Its age limits are worked out when read."""

    __tablename__ = "guardian_link"
    __table_args__ = (UniqueConstraint("parent_id", "child_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    parent_id: uuid.UUID = Field(sa_column=Column(ForeignKey("citizen.id"), nullable=False, index=True))
    child_id: uuid.UUID = Field(sa_column=Column(ForeignKey("citizen.id"), nullable=False, index=True))
    categories: str = Field(sa_type=String(64))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    reviewed_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))
    ended_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))
    end_reason: str | None = Field(default=None, sa_type=String(64))


class Source(SQLModel, table=True):
    """A system that feeds vaults: a GP practice system, a school MIS, a council or police case system."""

    __tablename__ = "source"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(64), unique=True)
    kind: str = Field(sa_type=String(32))
    title: str = Field(sa_type=String(200))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())


class Record(SQLModel, table=True):
    """One item in a vault. Only `payload` holds its content, sealed with the citizen's data key."""

    __tablename__ = "record"
    __table_args__ = (
        UniqueConstraint("source_id", "source_record_id"),
        CheckConstraint(_in("category", CATEGORIES), name="category"),
        Index("ix_record_citizen_id_occurred_at_id", "citizen_id", "occurred_at", "id"),
        # what arrived for a citizen since a moment (live updates, the "new since you last looked" summary)
        Index("ix_record_citizen_id_received_at_id", "citizen_id", "received_at", "id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    citizen_id: uuid.UUID = Field(sa_column=Column(ForeignKey("citizen.id"), nullable=False))
    category: str = Field(sa_type=String(16))
    kind: str = Field(sa_type=String(64))
    source_id: int = Field(sa_column=Column(ForeignKey("source.id"), nullable=False))
    source_record_id: str = Field(sa_type=String(255))
    version: int = Field(sa_type=BigInteger)
    occurred_at: dt.datetime = Field(sa_column=_when())
    received_at: dt.datetime = Field(sa_column=_when())
    # marked confidential by the source (GP Connect meta.security, a school's sensitive flag): kept,
    # and shown to the citizen, but never to a proxy (a parent or carer)
    sensitive: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, server_default=false())
    )
    payload: bytes = Field(sa_type=LargeBinary)


class Notification(SQLModel, table=True):
    """A message to a citizen waiting to be emailed (an outbox): its text sealed with their data key,
    written in the transaction of what it tells them about, sent after it commits."""

    __tablename__ = "notification"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    citizen_id: uuid.UUID = Field(sa_column=Column(ForeignKey("citizen.id"), nullable=False, index=True))
    kind: str = Field(sa_type=String(32))
    message: bytes = Field(sa_type=LargeBinary)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    sent_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    attempts: int = Field(default=0)
    last_error: str = Field(default="", sa_type=String(500))


class SignInFailure(SQLModel, table=True):
    """Failed sign-ins to one account, so every server process imposes the same growing wait. The
    account is named only by a keyed hash."""

    __tablename__ = "signin_failure"

    key: bytes = Field(primary_key=True, sa_type=LargeBinary)  # HMAC-SHA-256 of the lower-cased account
    count: int = Field(sa_column=Column(Integer(), nullable=False))
    last_at: dt.datetime = Field(sa_column=_when())

"""The ledger's tables. The log itself (entries, nodes, checkpoints) is append-only: rows are inserted
once and never changed (on PostgreSQL, triggers refuse UPDATE and DELETE). What links a leaf to a
person (the pseudonym key, the salted details) lives beside it, sealed under the citizen's data key,
so erasure can make leaves unlinkable without touching the tree."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Column, ForeignKey, Index, LargeBinary, SmallInteger, String, Text, Uuid
from sqlmodel import Field, SQLModel

from pds.db import UTCDateTime, utcnow

APPEND_ONLY_TABLES = ("ledger_entry", "ledger_node", "ledger_checkpoint")


def _when(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable)


class LedgerEntry(SQLModel, table=True):
    """One leaf: its canonical JSON bytes and RFC 9162 leaf hash (level 0 of the tree).

    `subject` and `subject_seq` repeat what the leaf says, so a citizen's own entries can be found
    by index; `pds ledger verify` checks they agree with the leaf.
    """

    __tablename__ = "ledger_entry"
    __table_args__ = (Index("ix_ledger_entry_subject_seq", "subject", "subject_seq", unique=True),)

    position: int = Field(sa_column=Column(BigInteger(), primary_key=True, autoincrement=False))
    leaf: bytes = Field(sa_type=LargeBinary)
    leaf_hash: bytes = Field(sa_type=LargeBinary)
    subject: bytes | None = Field(default=None, sa_column=Column(LargeBinary(), nullable=True))
    subject_seq: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))


class LedgerNode(SQLModel, table=True):
    """The hash of a complete, aligned subtree of 2^level leaves; level 0 is `ledger_entry.leaf_hash`."""

    __tablename__ = "ledger_node"

    level: int = Field(sa_column=Column(SmallInteger(), primary_key=True, autoincrement=False))
    position: int = Field(sa_column=Column(BigInteger(), primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_type=LargeBinary)


class LedgerCheckpoint(SQLModel, table=True):
    """A signed tree head, as the C2SP signed note the log serves. All are kept."""

    __tablename__ = "ledger_checkpoint"

    tree_size: int = Field(sa_column=Column(BigInteger(), primary_key=True, autoincrement=False))
    root: bytes = Field(sa_type=LargeBinary)
    note: str = Field(sa_type=Text)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())


class LedgerSigner(SQLModel, table=True):
    """The Ed25519 key checkpoints are signed with; the private half sealed under the active KEK."""

    __tablename__ = "ledger_signer"

    key_id: str = Field(primary_key=True, sa_type=String(8))  # hex of the 4-byte signed-note key ID
    name: str = Field(sa_type=String(200))
    public_key: bytes = Field(sa_type=LargeBinary)
    kek_id: str = Field(sa_type=String(32))
    private_key: bytes = Field(sa_type=LargeBinary)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_when())
    retired_at: dt.datetime | None = Field(default=None, sa_column=_when(nullable=True))


class LedgerSubjectKey(SQLModel, table=True):
    """A citizen's pseudonym key, sealed under their data key: erasure shreds it with the rest."""

    __tablename__ = "ledger_subject_key"

    citizen_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("citizen.id", ondelete="CASCADE"), primary_key=True)
    )
    sealed: bytes = Field(sa_type=LargeBinary)


class LedgerDetail(SQLModel, table=True):
    """The salt and details a leaf commits to. Sealed under the citizen's data key when the event is
    about a citizen; plain for system events, which name no one."""

    __tablename__ = "ledger_detail"

    position: int = Field(sa_column=Column(BigInteger(), primary_key=True, autoincrement=False))
    citizen_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid(), nullable=True, index=True))
    body: bytes = Field(sa_type=LargeBinary)

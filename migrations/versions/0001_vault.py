"""vault: citizens, identifiers, data keys, guardian links, sources, records

Revision ID: 0001
Revises:
Create Date: 2026-11-25 23:44:32.079932
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pds.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "citizen",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("profile", sa.LargeBinary(), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("erased_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('active', 'erased')", name=op.f("ck_citizen_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen")),
    )
    op.create_table(
        "key_check",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("check_value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_check")),
    )
    op.create_table(
        "source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source")),
        sa.UniqueConstraint("name", name=op.f("uq_source_name")),
    )
    op.create_table(
        "data_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizen.id"], name=op.f("fk_data_key_citizen_id_citizen")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_key")),
    )
    with op.batch_alter_table("data_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_key_citizen_id"), ["citizen_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_data_key_kek_id"), ["kek_id"], unique=False)

    op.create_table(
        "guardian_link",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=False),
        sa.Column("child_id", sa.Uuid(), nullable=False),
        sa.Column("categories", sa.String(length=64), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["child_id"], ["citizen.id"], name=op.f("fk_guardian_link_child_id_citizen")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["citizen.id"], name=op.f("fk_guardian_link_parent_id_citizen")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardian_link")),
        sa.UniqueConstraint("parent_id", "child_id", name=op.f("uq_guardian_link_parent_id_child_id")),
    )
    with op.batch_alter_table("guardian_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guardian_link_child_id"), ["child_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guardian_link_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "identifier",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("blind_index", sa.LargeBinary(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('nhs_number', 'upn', 'council_account', 'crime_reference', 'email')",
            name=op.f("ck_identifier_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizen.id"], name=op.f("fk_identifier_citizen_id_citizen")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identifier")),
        sa.UniqueConstraint("kind", "blind_index", name=op.f("uq_identifier_kind_blind_index")),
    )
    with op.batch_alter_table("identifier", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identifier_citizen_id"), ["citizen_id"], unique=False)

    op.create_table(
        "record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("source_record_id", sa.String(length=255), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("category IN ('health', 'education', 'case')", name=op.f("ck_record_category")),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizen.id"], name=op.f("fk_record_citizen_id_citizen")),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"], name=op.f("fk_record_source_id_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record")),
        sa.UniqueConstraint(
            "source_id", "source_record_id", name=op.f("uq_record_source_id_source_record_id")
        ),
    )
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_record_citizen_id_occurred_at_id", ["citizen_id", "occurred_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.drop_index("ix_record_citizen_id_occurred_at_id")

    op.drop_table("record")
    with op.batch_alter_table("identifier", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identifier_citizen_id"))

    op.drop_table("identifier")
    with op.batch_alter_table("guardian_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guardian_link_parent_id"))
        batch_op.drop_index(batch_op.f("ix_guardian_link_child_id"))

    op.drop_table("guardian_link")
    with op.batch_alter_table("data_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_key_kek_id"))
        batch_op.drop_index(batch_op.f("ix_data_key_citizen_id"))

    op.drop_table("data_key")
    op.drop_table("source")
    op.drop_table("key_check")
    op.drop_table("citizen")

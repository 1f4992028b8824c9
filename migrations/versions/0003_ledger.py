"""ledger: the tamper-evident log (entries, nodes, checkpoints), its signer, subject keys and sealed details;
replaces the plain ledger_event table. On PostgreSQL, triggers refuse UPDATE and DELETE on the log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:24:42.447367
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pds.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY = ("ledger_entry", "ledger_node", "ledger_checkpoint")


def upgrade() -> None:
    op.create_table(
        "ledger_checkpoint",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_ledger_checkpoint")),
    )
    op.create_table(
        "ledger_detail",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_ledger_detail")),
    )
    with op.batch_alter_table("ledger_detail", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_detail_citizen_id"), ["citizen_id"], unique=False)

    op.create_table(
        "ledger_entry",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("subject", sa.LargeBinary(), nullable=True),
        sa.Column("subject_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_ledger_entry")),
    )
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entry_subject_seq", ["subject", "subject_seq"], unique=True)

    op.create_table(
        "ledger_node",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "position", name=op.f("pk_ledger_node")),
    )
    op.create_table(
        "ledger_signer",
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_ledger_signer")),
    )
    op.create_table(
        "ledger_subject_key",
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizen.id"],
            name=op.f("fk_ledger_subject_key_citizen_id_citizen"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("citizen_id", name=op.f("pk_ledger_subject_key")),
    )
    with op.batch_alter_table("ledger_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_event_citizen_id"))

    op.drop_table("ledger_event")

    if op.get_bind().dialect.name == "postgresql":
        # a second line behind the Merkle tree: the log's rows cannot be changed or removed in place
        op.execute(
            """
            CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
            END $$
            """
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION ledger_refuse_change()")
    op.create_table(
        "ledger_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("grant_id", sa.Uuid(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_event")),
    )
    with op.batch_alter_table("ledger_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_event_citizen_id"), ["citizen_id"], unique=False)

    op.drop_table("ledger_subject_key")
    op.drop_table("ledger_signer")
    op.drop_table("ledger_node")
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entry_subject_seq")

    op.drop_table("ledger_entry")
    with op.batch_alter_table("ledger_detail", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_detail_citizen_id"))

    op.drop_table("ledger_detail")
    op.drop_table("ledger_checkpoint")

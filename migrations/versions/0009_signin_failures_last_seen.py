"""sign-in failures shared by every process; citizen last seen

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 06:00:03.767017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pds.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signin_failure",
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_signin_failure")),
    )
    with op.batch_alter_table("citizen", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", pds.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("citizen", schema=None) as batch_op:
        batch_op.drop_column("last_seen_at")

    op.drop_table("signin_failure")

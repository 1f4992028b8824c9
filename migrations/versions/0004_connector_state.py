"""connector state: each connector's pull cursor and last run

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 03:09:55.955769
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pds.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connector_state",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("last_run_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_connector_state")),
    )


def downgrade() -> None:
    op.drop_table("connector_state")

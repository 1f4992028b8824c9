"""record: index arrivals by citizen and time received

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 08:40:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_record_citizen_id_received_at_id", "record", ["citizen_id", "received_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_record_citizen_id_received_at_id", table_name="record")

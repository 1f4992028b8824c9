"""citizen: the second factor (sealed TOTP secret, last step used) and the session epoch behind "sign out everywhere"

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 03:48:53.116898
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("citizen", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("citizen", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_secret")

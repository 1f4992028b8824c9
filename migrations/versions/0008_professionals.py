"""professionals: organisations, staff, consent requests; grants to staff

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 05:31:05.379255
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pds.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('gp_practice', 'school', 'council', 'police')", name=op.f("ck_organisation_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation")),
        sa.UniqueConstraint("kind", "code", name=op.f("uq_organisation_kind_code")),
    )
    op.create_table(
        "staff_member",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("totp_kek_id", sa.String(length=32), nullable=True),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('gp', 'nurse', 'teacher', 'caseworker', 'officer', 'admin')",
            name=op.f("ck_staff_member_role"),
        ),
        sa.CheckConstraint("status IN ('active', 'revoked')", name=op.f("ck_staff_member_status")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisation.id"], name=op.f("fk_staff_member_org_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_member")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_member_email")),
    )
    with op.batch_alter_table("staff_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_member_org_id"), ["org_id"], unique=False)

    op.create_table(
        "consent_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=True),
        sa.Column("patient_blind", sa.LargeBinary(), nullable=False),
        sa.Column("patient_hint", sa.String(length=8), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("categories", sa.String(length=64), nullable=False),
        sa.Column("resource_types", sa.Text(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("records_from", sa.Date(), nullable=True),
        sa.Column("records_until", sa.Date(), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("callback_due_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("callback_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("callback_error", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("grant_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'approved_with_changes', 'refused', 'expired', 'withdrawn')",
            name=op.f("ck_consent_request_status"),
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizen.id"], name=op.f("fk_consent_request_citizen_id_citizen")
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["consent_grant.id"], name=op.f("fk_consent_request_grant_id_consent_grant")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisation.id"], name=op.f("fk_consent_request_org_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_member.id"], name=op.f("fk_consent_request_staff_id_staff_member")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_request")),
    )
    with op.batch_alter_table("consent_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_request_citizen_id"), ["citizen_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consent_request_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consent_request_callback_due_at"), ["callback_due_at"], unique=False
        )

    with op.batch_alter_table("consent_grant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("staff_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("resource_types", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("emergency", sa.Boolean(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_consent_grant_staff_id"), ["staff_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_consent_grant_staff_id_staff_member"), "staff_member", ["staff_id"], ["id"]
        )

    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("users", sa.String(length=16), server_default="citizens", nullable=False)
        )
        batch_op.create_check_constraint(op.f("ck_oauth_client_users"), "users IN ('citizens', 'staff')")

    with op.batch_alter_table("oauth_code", schema=None) as batch_op:
        batch_op.add_column(sa.Column("staff_id", sa.Uuid(), nullable=True))
        batch_op.alter_column("citizen_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.alter_column("grant_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_oauth_code_staff_id_staff_member"), "staff_member", ["staff_id"], ["id"]
        )

    with op.batch_alter_table("oauth_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("staff_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_oauth_token_staff_id"), ["staff_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_oauth_token_staff_id_staff_member"), "staff_member", ["staff_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_token", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_oauth_token_staff_id_staff_member"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_oauth_token_staff_id"))
        batch_op.drop_column("staff_id")

    with op.batch_alter_table("oauth_code", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_oauth_code_staff_id_staff_member"), type_="foreignkey")
        batch_op.alter_column("grant_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column("citizen_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("staff_id")

    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_oauth_client_users"), type_="check")
        batch_op.drop_column("users")

    with op.batch_alter_table("consent_grant", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_consent_grant_staff_id_staff_member"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_consent_grant_staff_id"))
        batch_op.drop_column("emergency")
        batch_op.drop_column("resource_types")
        batch_op.drop_column("staff_id")

    with op.batch_alter_table("consent_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_request_org_id"))
        batch_op.drop_index(batch_op.f("ix_consent_request_callback_due_at"))
        batch_op.drop_index(batch_op.f("ix_consent_request_citizen_id"))

    op.drop_table("consent_request")
    with op.batch_alter_table("staff_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_member_org_id"))

    op.drop_table("staff_member")
    op.drop_table("organisation")

"""consent: clients, grants, codes, tokens, signing keys, ledger events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 23:58:48.016776
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pds.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
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

    op.create_table(
        "oauth_client",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("grant_types", sa.Text(), nullable=False),
        sa.Column("token_endpoint_auth_method", sa.String(length=32), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')",
            name=op.f("ck_oauth_client_auth_method"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_client")),
        sa.UniqueConstraint("client_id", name=op.f("uq_oauth_client_client_id")),
    )
    op.create_table(
        "oauth_initial_access_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_initial_access_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_oauth_initial_access_token_token_hash")),
    )
    op.create_table(
        "signing_key",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_key")),
    )
    op.create_table(
        "consent_grant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("categories", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("starts_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("records_from", sa.Date(), nullable=True),
        sa.Column("records_until", sa.Date(), nullable=True),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'revoked', 'expired')", name=op.f("ck_consent_grant_status")
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizen.id"], name=op.f("fk_consent_grant_citizen_id_citizen")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_grant")),
    )
    with op.batch_alter_table("consent_grant", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_grant_citizen_id_client_id", ["citizen_id", "client_id"], unique=False
        )

    op.create_table(
        "oauth_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("grant_id", sa.Uuid(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(length=255), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("code_challenge_method", sa.String(length=8), nullable=False),
        sa.Column("auth_time", sa.Integer(), nullable=False),
        sa.Column("created_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizen.id"], name=op.f("fk_oauth_code_citizen_id_citizen")
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["consent_grant.id"], name=op.f("fk_oauth_code_grant_id_consent_grant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_code")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_oauth_code_code_hash")),
    )
    op.create_table(
        "oauth_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("refresh_hash", sa.String(length=64), nullable=True),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=True),
        sa.Column("grant_id", sa.Uuid(), nullable=True),
        sa.Column("code_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("issued_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("access_expires_at", pds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("refresh_expires_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("refresh_used_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", pds.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizen.id"], name=op.f("fk_oauth_token_citizen_id_citizen")
        ),
        sa.ForeignKeyConstraint(
            ["code_id"], ["oauth_code.id"], name=op.f("fk_oauth_token_code_id_oauth_code")
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["consent_grant.id"], name=op.f("fk_oauth_token_grant_id_consent_grant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_token")),
        sa.UniqueConstraint("jti", name=op.f("uq_oauth_token_jti")),
        sa.UniqueConstraint("refresh_hash", name=op.f("uq_oauth_token_refresh_hash")),
    )
    with op.batch_alter_table("oauth_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_token_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oauth_token_family_id"), ["family_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oauth_token_grant_id"), ["grant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oauth_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_token_grant_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_token_family_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_token_client_id"))

    op.drop_table("oauth_token")
    op.drop_table("oauth_code")
    with op.batch_alter_table("consent_grant", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_grant_citizen_id_client_id")

    op.drop_table("consent_grant")
    op.drop_table("signing_key")
    op.drop_table("oauth_initial_access_token")
    op.drop_table("oauth_client")
    with op.batch_alter_table("ledger_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_event_citizen_id"))

    op.drop_table("ledger_event")

"""Baseline node schema: audit log and chain head, replay memory, policies.

Revision ID: 0001
Revises: -
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("node_id", sa.String(length=1100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("node_id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("node_id", sa.String(length=1100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("logged_at", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("client", sa.String(length=1100), nullable=True),
        sa.Column("service", sa.String(length=1400), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("peer_node", sa.String(length=1100), nullable=True),
        sa.Column("user_id", sa.String(length=1024), nullable=True),
        sa.Column("purpose", sa.String(length=255), nullable=True),
        sa.Column("subject", sa.String(length=1024), nullable=True),
        sa.Column("request_hash", sa.String(length=100), nullable=True),
        sa.Column("request_body_sha256", sa.String(length=64), nullable=True),
        sa.Column("request_signature", sa.Text(), nullable=True),
        sa.Column("response_body_sha256", sa.String(length=64), nullable=True),
        sa.Column("response_signature", sa.Text(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("consent", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id", "seq", name="uq_audit_node_seq"),
    )
    op.create_index(op.f("ix_audit_log_client"), "audit_log", ["client"], unique=False)
    op.create_index(op.f("ix_audit_log_message_id"), "audit_log", ["message_id"], unique=False)
    op.create_index(op.f("ix_audit_log_request_id"), "audit_log", ["request_id"], unique=False)
    op.create_index(op.f("ix_audit_log_service"), "audit_log", ["service"], unique=False)
    op.create_index(op.f("ix_audit_log_subject"), "audit_log", ["subject"], unique=False)
    op.create_table(
        "replay_seen",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index(op.f("ix_replay_seen_expires_at"), "replay_seen", ["expires_at"], unique=False)
    op.create_table(
        "policy_access_rights",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("service", sa.String(length=1300), nullable=False),
        sa.Column("provider", sa.String(length=1300), nullable=False),
        sa.Column("grantee", sa.String(length=1316), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("service", "grantee", "method", "path", name="uq_policy_access_right"),
    )
    op.create_index(
        "ix_policy_access_rights_service", "policy_access_rights", ["service"], unique=False
    )
    op.create_table(
        "policy_consents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("consumer", sa.String(length=1300), nullable=False),
        sa.Column("service", sa.String(length=1300), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_policy_consents_lookup",
        "policy_consents",
        ["subject", "service", "purpose", "consumer"],
        unique=False,
    )
    op.create_index("ix_policy_consents_service", "policy_consents", ["service"], unique=False)
    op.create_table(
        "policy_local_groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=1300), nullable=False),
        sa.Column("code", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "code", name="uq_policy_local_group"),
    )
    op.create_table(
        "policy_purpose_declarations",
        sa.Column("consumer", sa.String(length=1300), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "code"),
    )
    op.create_table(
        "policy_service_declarations",
        sa.Column("service", sa.String(length=1300), nullable=False),
        sa.Column("provider", sa.String(length=1300), nullable=False),
        sa.Column("media_types", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("public_fields", sa.JSON(), nullable=False),
        sa.Column("consent_governed", sa.Boolean(), nullable=False),
        sa.Column("subject_kind", sa.String(length=10), nullable=False),
        sa.Column("subject_name", sa.String(length=1024), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("service"),
    )
    op.create_index(
        op.f("ix_policy_service_declarations_provider"),
        "policy_service_declarations",
        ["provider"],
        unique=False,
    )
    op.create_table(
        "policy_local_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("member", sa.String(length=1300), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["policy_local_groups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_id", "member"),
    )


def downgrade() -> None:
    op.drop_table("policy_local_group_members")
    op.drop_table("policy_service_declarations")
    op.drop_table("policy_purpose_declarations")
    op.drop_table("policy_local_groups")
    op.drop_table("policy_consents")
    op.drop_table("policy_access_rights")
    op.drop_table("replay_seen")
    op.drop_table("audit_log")
    op.drop_table("audit_chain_head")

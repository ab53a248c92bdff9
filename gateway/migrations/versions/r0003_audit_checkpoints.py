"""Audit checkpoints, archives, encrypted bodies, row visibility and operational records.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_archive",
        sa.Column("node_id", sa.String(length=1100), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("previous_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "first_seq"),
    )
    op.create_table(
        "audit_archived_leaf",
        sa.Column("node_id", sa.String(length=1100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "seq"),
    )
    op.create_table(
        "audit_body",
        sa.Column("node_id", sa.String(length=1100), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=True),
        sa.Column("stored_at", sa.String(length=40), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "message_id", "kind"),
    )
    op.create_index(op.f("ix_audit_body_subject"), "audit_body", ["subject"], unique=False)
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("node_id", sa.String(length=1100), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("signed", sa.Text(), nullable=False),
        sa.Column("timestamp_token", sa.LargeBinary(), nullable=True),
        sa.Column("cosignature", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id", "tree_size", name="uq_audit_checkpoint_size"),
    )
    op.create_index(
        op.f("ix_audit_checkpoint_node_id"), "audit_checkpoint", ["node_id"], unique=False
    )
    op.create_table(
        "audit_operational",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("node_id", sa.String(length=1100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("client", sa.String(length=1100), nullable=True),
        sa.Column("service", sa.String(length=1400), nullable=True),
        sa.Column("started_at", sa.String(length=40), nullable=False),
        sa.Column("committed_at", sa.String(length=40), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("backend_ms", sa.Float(), nullable=True),
        sa.Column("request_size", sa.BigInteger(), nullable=True),
        sa.Column("response_size", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_audit_operational_message_id"), "audit_operational", ["message_id"], unique=False
    )
    op.create_index(
        op.f("ix_audit_operational_node_id"), "audit_operational", ["node_id"], unique=False
    )
    op.create_index(
        op.f("ix_audit_operational_service"), "audit_operational", ["service"], unique=False
    )
    op.create_index(
        op.f("ix_audit_operational_started_at"), "audit_operational", ["started_at"], unique=False
    )
    op.create_table(
        "audit_visibility",
        sa.Column("node_id", sa.String(length=1100), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("hidden_from_subject_until", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("node_id", "message_id"),
    )


def downgrade() -> None:
    op.drop_table("audit_visibility")
    op.drop_table("audit_operational")
    op.drop_table("audit_checkpoint")
    op.drop_table("audit_body")
    op.drop_table("audit_archived_leaf")
    op.drop_table("audit_archive")

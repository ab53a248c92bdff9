"""Node registration requests (``member_registry.registration``).

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
        "registry_registrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("node_id", sa.String(length=1279), nullable=False),
        sa.Column("auth_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("proof_of_possession", sa.Text(), nullable=False),
        sa.Column("member_consent", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_registrations")),
        sa.UniqueConstraint("nonce", name=op.f("uq_registry_registrations_nonce")),
    )
    op.create_index(
        op.f("ix_registry_registrations_node_id"), "registry_registrations", ["node_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_registry_registrations_status"), "registry_registrations", ["status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_registry_registrations_status"), table_name="registry_registrations")
    op.drop_index(op.f("ix_registry_registrations_node_id"), table_name="registry_registrations")
    op.drop_table("registry_registrations")

"""The API catalogue and the operator trail.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_catalogue",
        sa.Column("service_id", sa.String(length=1400), nullable=False),
        sa.Column("node_id", sa.String(length=1279), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("declaration", sa.Text(), nullable=True),
        sa.Column("openapi", sa.Text(), nullable=True),
        sa.Column("published_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_registry_catalogue")),
    )
    op.create_index(
        op.f("ix_registry_catalogue_node_id"), "registry_catalogue", ["node_id"], unique=False
    )
    op.create_table(
        "registry_operator_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=255), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_operator_log")),
    )
    op.create_index(
        op.f("ix_registry_operator_log_actor"), "registry_operator_log", ["actor"], unique=False
    )
    op.create_index(
        op.f("ix_registry_operator_log_at"), "registry_operator_log", ["at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("registry_operator_log")
    op.drop_table("registry_catalogue")

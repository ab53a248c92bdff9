"""A node's services move from node.toml into its database (changed at runtime).

node.toml's [[service]] entries are added at the next start, once (gateway/bootstrap.py).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_services",
        sa.Column("service", sa.String(length=1300), nullable=False),
        sa.Column("provider", sa.String(length=1300), nullable=False),
        sa.Column("backend_url", sa.Text(), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("openapi", sa.Text(), nullable=True),
        sa.Column("openapi_source", sa.Text(), nullable=False),
        sa.Column("path_parameters", sa.Boolean(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("tls_verify", sa.Boolean(), nullable=False),
        sa.Column("tls_ca_pem", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("service"),
    )
    op.create_index(
        op.f("ix_node_services_provider"), "node_services", ["provider"], unique=False
    )
    table = op.create_table(
        "node_services_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("node_services_version")
    op.drop_index(op.f("ix_node_services_provider"), table_name="node_services")
    op.drop_table("node_services")

"""Client-port authentication: connection types, registered certificates, client tokens.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_connections",
        sa.Column("subsystem", sa.String(length=1024), nullable=False),
        sa.Column("connection_type", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subsystem"),
    )
    op.create_table(
        "client_certificates",
        sa.Column("subsystem", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subsystem", "sha256"),
    )
    op.create_table(
        "client_tokens",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("subsystem", sa.String(length=1024), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_id"),
    )
    op.create_index(
        op.f("ix_client_tokens_subsystem"), "client_tokens", ["subsystem"], unique=False
    )
    table = op.create_table(
        "client_auth_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("client_auth_version")
    op.drop_index(op.f("ix_client_tokens_subsystem"), table_name="client_tokens")
    op.drop_table("client_tokens")
    op.drop_table("client_certificates")
    op.drop_table("client_connections")

"""Client message-id claims: a repeated X-Road-Id from one client is refused.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_message_claims",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(
        op.f("ix_client_message_claims_expires_at"),
        "client_message_claims",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("client_message_claims")

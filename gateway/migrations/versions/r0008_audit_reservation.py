"""Audit reservations: a consumer node commits one before relaying a request.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_reservation",
        sa.Column("node_id", sa.String(length=1100), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("reserved_at", sa.String(length=40), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "request_id"),
    )
    op.create_index(
        op.f("ix_audit_reservation_reserved_at"),
        "audit_reservation",
        ["reserved_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("audit_reservation")

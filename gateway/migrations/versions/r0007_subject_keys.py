"""Per-subject body keys (crypto-shredding): the key table, and which key sealed a body.

Bodies stored before this revision keep ``key_id`` NULL: they are Fernet tokens
under the node's body key and still open; erasure deletes them as before.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_subject_key",
        sa.Column("node_id", sa.String(length=1100), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "subject"),
        sa.UniqueConstraint("key_id", name="uq_audit_subject_key_id"),
    )
    with op.batch_alter_table("audit_body") as batch:
        batch.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
        batch.create_index(op.f("ix_audit_body_key_id"), ["key_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_body") as batch:
        batch.drop_index(op.f("ix_audit_body_key_id"))
        batch.drop_column("key_id")
    op.drop_table("audit_subject_key")

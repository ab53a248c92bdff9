"""The operator trail becomes a hash chain and records what changed.

Rows written before are chained in their order, so the whole trail verifies.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from member_registry.operator_log import chain_rows_written_before

revision = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None

TABLE = "node_operator_log"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("change", sa.Text(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("entry_hash", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(f"uq_{TABLE}_seq", ["seq"])
    chain_rows_written_before(op.get_bind(), TABLE)


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_constraint(f"uq_{TABLE}_seq", type_="unique")
        for name in ("entry_hash", "prev_hash", "change", "seq"):
            batch.drop_column(name)

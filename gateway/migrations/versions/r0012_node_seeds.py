"""Which of a node's files seeded its database (applied once, at the first start).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None

_POLICY_TABLES = (
    "policy_access_rights",
    "policy_service_declarations",
    "policy_purpose_declarations",
    "policy_local_groups",
)


def upgrade() -> None:
    op.create_table(
        "node_seeds",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("applied_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    if _holds_a_policy():
        # A node that ran before: its database already holds what its policy file
        # said at its last start. That file is not applied again at start.
        op.execute(
            "INSERT INTO node_seeds (name, sha256, source, applied_at) "
            "VALUES ('policy_file', 'before-seeding', 'upgraded', '')"
        )


def _holds_a_policy() -> bool:
    bind = op.get_bind()
    names = set(sa.inspect(bind).get_table_names())
    for table in _POLICY_TABLES:
        query = sa.text(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608 - fixed names
        if table in names and bind.execute(query).first():
            return True
    return False


def downgrade() -> None:
    op.drop_table("node_seeds")

"""Service declarations say where the data names its subject, which resource types carry
no personal data, and which backend response headers may pass.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None

_COLUMNS = ("subject_fields", "impersonal", "response_headers")


def _has_declarations() -> bool:
    # A database stamped from before migrations may not have the policy tables yet;
    # the policy store creates them whole (with these columns) when it starts.
    return "policy_service_declarations" in sa.inspect(op.get_bind()).get_table_names()


def upgrade() -> None:
    if not _has_declarations():
        return
    with op.batch_alter_table("policy_service_declarations") as batch:
        for name in _COLUMNS:
            batch.add_column(
                sa.Column(name, sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
            )


def downgrade() -> None:
    if not _has_declarations():
        return
    with op.batch_alter_table("policy_service_declarations") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)

"""Consents become rules: permit or deny, nested, with conditions on the data and the
actor; the operator's table maps FHIR codes and references onto purposes and consumers.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision: str | None = "0015"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("decision", sa.String(8), nullable=False, server_default="permit"),
        sa.Column("depth", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("resource_types", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
        sa.Column("resources", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
        sa.Column("labels", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
        sa.Column("data_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("origin", sa.String(255), nullable=True),
        sa.Column("provision", sa.String(64), nullable=True),
    ]


def _tables() -> list[str]:
    return list(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    # A database stamped from before migrations may not have the policy tables yet;
    # the policy store creates them whole when it starts.
    if "policy_consents" not in _tables():
        return
    with op.batch_alter_table("policy_consents") as batch:
        for column in _columns():
            batch.add_column(column)
    op.create_table(
        "policy_fhir_codes",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("code", sa.String(512), nullable=False),
        sa.Column("target", sa.String(1300), nullable=False),
        sa.Column("break_glass", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("kind", "code"),
    )


def downgrade() -> None:
    if "policy_consents" not in _tables():
        return
    op.drop_table("policy_fhir_codes")
    with op.batch_alter_table("policy_consents") as batch:
        for column in _columns():
            batch.drop_column(column.name)

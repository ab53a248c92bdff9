"""The NGSI-LD entity store: entities, their attribute and geometry index, registered @contexts.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ngsi_entities",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=1024), nullable=False),
        sa.Column("entity_id", sa.String(length=1024), nullable=False),
        sa.Column("entity_type", sa.String(length=1024), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("modified_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("owner", "entity_id", name="uq_ngsi_entities_owner_id"),
    )
    op.create_index("ix_ngsi_entities_owner_type", "ngsi_entities", ["owner", "entity_type"])
    op.create_table(
        "ngsi_entity_attrs",
        sa.Column("entity_pk", _PK, nullable=False),
        sa.Column("attribute", sa.String(length=1024), nullable=False),
        sa.Column("owner", sa.String(length=1024), nullable=False),
        sa.Column("entity_type", sa.String(length=1024), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["entity_pk"], ["ngsi_entities.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entity_pk", "attribute"),
    )
    op.create_index(
        "ix_ngsi_entity_attrs_owner_attr", "ngsi_entity_attrs", ["owner", "attribute"]
    )
    op.create_table(
        "ngsi_entity_geo",
        sa.Column("entity_pk", _PK, nullable=False),
        sa.Column("attribute", sa.String(length=1024), nullable=False),
        sa.Column("owner", sa.String(length=1024), nullable=False),
        sa.Column("entity_type", sa.String(length=1024), nullable=False),
        sa.Column("large", sa.Boolean(), nullable=False),
        sa.Column("min_lon", sa.Float(), nullable=False),
        sa.Column("min_lat", sa.Float(), nullable=False),
        sa.Column("max_lon", sa.Float(), nullable=False),
        sa.Column("max_lat", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["entity_pk"], ["ngsi_entities.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entity_pk", "attribute"),
    )
    op.create_index(
        "ix_ngsi_entity_geo_box",
        "ngsi_entity_geo",
        ["owner", "entity_type", "attribute", "large", "min_lat"],
    )
    op.create_table(
        "ngsi_contexts",
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("url"),
    )


def downgrade() -> None:
    op.drop_table("ngsi_contexts")
    op.drop_index("ix_ngsi_entity_geo_box", table_name="ngsi_entity_geo")
    op.drop_table("ngsi_entity_geo")
    op.drop_index("ix_ngsi_entity_attrs_owner_attr", table_name="ngsi_entity_attrs")
    op.drop_table("ngsi_entity_attrs")
    op.drop_index("ix_ngsi_entities_owner_type", table_name="ngsi_entities")
    op.drop_table("ngsi_entities")

"""Baseline registry schema: members, subsystems, nodes, groups, trust, settings, versions.

Revision ID: 0001
Revises: -
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_global_groups",
        sa.Column("id", sa.String(length=1279), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_global_groups")),
    )
    op.create_table(
        "registry_members",
        sa.Column("id", sa.String(length=1279), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_members")),
    )
    op.create_table(
        "registry_published_confs",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_registry_published_confs")),
    )
    op.create_table(
        "registry_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_registry_settings")),
    )
    op.create_table(
        "registry_trusted_cas",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("ocsp_urls", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_registry_trusted_cas")),
    )
    op.create_table(
        "registry_tsas",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_registry_tsas")),
    )
    op.create_table(
        "registry_nodes",
        sa.Column("id", sa.String(length=1279), nullable=False),
        sa.Column("member_id", sa.String(length=1279), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("peer_port", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["registry_members.id"], name=op.f("fk_registry_nodes_member_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_nodes")),
    )
    op.create_index(
        op.f("ix_registry_nodes_member_id"), "registry_nodes", ["member_id"], unique=False
    )
    op.create_table(
        "registry_subsystems",
        sa.Column("id", sa.String(length=1279), nullable=False),
        sa.Column("member_id", sa.String(length=1279), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["registry_members.id"], name=op.f("fk_registry_subsystems_member_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_subsystems")),
    )
    op.create_index(
        op.f("ix_registry_subsystems_member_id"), "registry_subsystems", ["member_id"], unique=False
    )
    op.create_table(
        "registry_global_group_members",
        sa.Column("group_id", sa.String(length=1279), nullable=False),
        sa.Column("subsystem_id", sa.String(length=1279), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["registry_global_groups.id"],
            name=op.f("fk_registry_global_group_members_group_id"),
        ),
        sa.ForeignKeyConstraint(
            ["subsystem_id"],
            ["registry_subsystems.id"],
            name=op.f("fk_registry_global_group_members_subsystem_id"),
        ),
        sa.PrimaryKeyConstraint(
            "group_id", "subsystem_id", name=op.f("pk_registry_global_group_members")
        ),
    )
    op.create_table(
        "registry_node_auth_certificates",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.String(length=1279), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["registry_nodes.id"],
            name=op.f("fk_registry_node_auth_certificates_node_id"),
        ),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_registry_node_auth_certificates")),
    )
    op.create_index(
        op.f("ix_registry_node_auth_certificates_node_id"),
        "registry_node_auth_certificates",
        ["node_id"],
        unique=False,
    )
    op.create_table(
        "registry_node_subsystems",
        sa.Column("node_id", sa.String(length=1279), nullable=False),
        sa.Column("subsystem_id", sa.String(length=1279), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["registry_nodes.id"], name=op.f("fk_registry_node_subsystems_node_id")
        ),
        sa.ForeignKeyConstraint(
            ["subsystem_id"],
            ["registry_subsystems.id"],
            name=op.f("fk_registry_node_subsystems_subsystem_id"),
        ),
        sa.PrimaryKeyConstraint(
            "node_id", "subsystem_id", name=op.f("pk_registry_node_subsystems")
        ),
    )


def downgrade() -> None:
    op.drop_table("registry_node_subsystems")
    op.drop_table("registry_node_auth_certificates")
    op.drop_table("registry_global_group_members")
    op.drop_table("registry_subsystems")
    op.drop_table("registry_nodes")
    op.drop_table("registry_tsas")
    op.drop_table("registry_trusted_cas")
    op.drop_table("registry_settings")
    op.drop_table("registry_published_confs")
    op.drop_table("registry_members")
    op.drop_table("registry_global_groups")

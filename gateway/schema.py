"""The node's schema migrations: gateway tables and the policy store, in one history."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db import create_engine
from member_registry.schema import SchemaScripts, upgrade_schema

__all__ = ["NODE_SCHEMA", "migrate_node_database", "upgrade_node_schema"]

NODE_SCHEMA = SchemaScripts(
    location=Path(__file__).parent / "migrations",
    version_table="renkei_node_schema",
    baseline_marker="audit_log",
)


async def upgrade_node_schema(engine: AsyncEngine, revision: str = "head") -> None:
    await upgrade_schema(engine, NODE_SCHEMA, revision)


async def migrate_node_database(url: str, revision: str = "head") -> None:
    """Upgrade the node database at ``url`` (what a node does before it serves)."""
    engine = create_engine(url)
    try:
        await upgrade_node_schema(engine, revision)
    finally:
        await engine.dispose()

"""Schema migrations (Alembic), run at start and by ``renkei db upgrade``.

The registry and the node each keep their own migration scripts and their own
version table, so one PostgreSQL database could even hold both. Upgrades are
serialised between processes (an advisory lock on PostgreSQL, SQLite's write
lock otherwise), so several processes starting at once migrate exactly once.
A database created before migrations existed (tables, no version table) is
stamped with the baseline revision first, so its data is kept.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from member_registry.errors import RegistryError

__all__ = [
    "REGISTRY_SCHEMA",
    "MigrationError",
    "SchemaScripts",
    "current_revision",
    "head_revision",
    "upgrade_registry_schema",
    "upgrade_schema",
]

BASELINE = "0001"


class MigrationError(RegistryError):
    """A schema migration failed; the database is left at its previous revision."""

    code = "database.migration_failed"


@dataclass(frozen=True, slots=True)
class SchemaScripts:
    """One schema's migration scripts: where they live and which table records the revision."""

    location: Path
    version_table: str
    # A table the baseline creates: its presence without a version table marks a
    # database made before migrations existed.
    baseline_marker: str

    def config(self, connection: Connection | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.location))
        config.attributes["connection"] = connection
        config.attributes["version_table"] = self.version_table
        return config


REGISTRY_SCHEMA = SchemaScripts(
    location=Path(__file__).parent / "migrations",
    version_table="renkei_registry_schema",
    baseline_marker="registry_members",
)


def head_revision(scripts: SchemaScripts) -> str:
    head = ScriptDirectory.from_config(scripts.config()).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection, scripts: SchemaScripts) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": scripts.version_table})
    return context.get_current_revision()


def _upgrade(connection: Connection, scripts: SchemaScripts, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        lock = zlib.crc32(scripts.version_table.encode())
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
    names = set(inspect(connection).get_table_names())
    config = scripts.config(connection)
    if scripts.version_table not in names and scripts.baseline_marker in names:
        command.stamp(config, BASELINE)
    command.upgrade(config, revision)


async def upgrade_schema(
    engine: AsyncEngine, scripts: SchemaScripts, revision: str = "head"
) -> None:
    """Bring the database of ``engine`` to ``revision`` in one transaction."""
    # Alembic narrates every step at INFO on the root logger; a node's log is JSON only.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, scripts, revision)
    except (SQLAlchemyError, OSError) as exc:
        raise MigrationError(f"schema upgrade failed: {exc.__class__.__name__}: {exc}") from exc


async def current_revision(engine: AsyncEngine, scripts: SchemaScripts) -> str | None:
    async with engine.connect() as connection:
        result: Any = await connection.run_sync(_current, scripts)
    return None if result is None else str(result)


async def upgrade_registry_schema(engine: AsyncEngine, revision: str = "head") -> None:
    await upgrade_schema(engine, REGISTRY_SCHEMA, revision)

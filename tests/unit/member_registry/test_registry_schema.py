"""Registry schema migrations: head matches the models; subsystem names survive the upgrade."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import member_registry.ops_api
import member_registry.registration
import member_registry.witness  # noqa: F401 - registers the cosigned checkpoints
from member_registry.models import metadata
from member_registry.schema import (
    REGISTRY_SCHEMA,
    current_revision,
    head_revision,
    upgrade_registry_schema,
)


def _differences(connection: Any) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"version_table": REGISTRY_SCHEMA.version_table}
    )
    return list(compare_metadata(context, metadata))


async def test_head_matches_the_models(engine: AsyncEngine) -> None:
    await upgrade_registry_schema(engine)
    assert await current_revision(engine, REGISTRY_SCHEMA) == head_revision(REGISTRY_SCHEMA)
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == [], "a model changed without a migration (member_registry/migrations)"


async def test_subsystems_of_revision_0003_gain_an_empty_name(engine: AsyncEngine) -> None:
    await upgrade_registry_schema(engine, "0003")
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO registry_members (id, name) VALUES ('RENKEI/GOV/A', 'A')")
        )
        await connection.execute(
            text(
                "INSERT INTO registry_subsystems (id, member_id) "
                "VALUES ('RENKEI/GOV/A/EHR', 'RENKEI/GOV/A')"
            )
        )
    await upgrade_registry_schema(engine)
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT id, name FROM registry_subsystems"))).all()
    assert [tuple(row) for row in rows] == [("RENKEI/GOV/A/EHR", None)]

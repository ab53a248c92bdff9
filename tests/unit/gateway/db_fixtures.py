"""A node database on SQLite and on PostgreSQL (a schema of its own per test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.db import create_engine
from tests.conftest import POSTGRES_SERVER, require_postgres

EngineFactory = Callable[[], AsyncEngine]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engines(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[EngineFactory]:
    """New engines on one database: each stands for one start of the node."""
    made: list[AsyncEngine] = []
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"

        def sqlite() -> AsyncEngine:
            made.append(create_engine(url))
            return made[-1]

        yield sqlite
    else:
        require_postgres()
        schema = f"node_{uuid.uuid4().hex}"
        admin = create_async_engine(POSTGRES_SERVER)
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))

        def postgres() -> AsyncEngine:
            made.append(
                create_engine(
                    POSTGRES_SERVER, connect_args={"server_settings": {"search_path": schema}}
                )
            )
            return made[-1]

        try:
            yield postgres
        finally:
            for engine in made:
                await engine.dispose()
            async with admin.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()
        return
    for engine in made:
        await engine.dispose()

"""Throw-away PostgreSQL databases for sandbox nodes (one database per node)."""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

__all__ = ["create_databases", "drop_databases"]

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


async def create_databases(server_url: str, names: list[str]) -> list[str]:
    """Create each database on the server of ``server_url``; return their URLs."""
    url = make_url(server_url)
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for name in names:
                if not _NAME.fullmatch(name):
                    raise ValueError(f"unsafe database name {name!r}")
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return [url.set(database=name).render_as_string(hide_password=False) for name in names]


async def drop_databases(server_url: str, urls: list[str]) -> None:
    engine = create_async_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for database_url in urls:
                name = make_url(database_url).database or ""
                if _NAME.fullmatch(name):
                    await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()

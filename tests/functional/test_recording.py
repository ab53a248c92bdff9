"""Nothing runs that is not recorded: what the nodes of a running sandbox log
when their own database, their peer or their management API misbehaves."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gateway.db import create_engine
from tests.functional.sandbox_helpers import node

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
ECHO = "RENKEI/GOV/HOSP-B/EHR/echo"
HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"


@contextlib.asynccontextmanager
async def locked_database(url: str) -> AsyncIterator[None]:
    """Hold the write lock of a node's database (SQLite) or its chain head (PostgreSQL)."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
        finally:
            connection.rollback()
            connection.close()
        return
    engine = create_engine(url)
    try:
        async with engine.connect() as locker:
            transaction = await locker.begin()
            await locker.execute(text("SELECT seq FROM audit_chain_head FOR UPDATE"))
            try:
                yield
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


async def rows_with_path(
    session: aiohttp.ClientSession, federation: dict[str, Any], node_id: str, marker: str
) -> list[dict[str, Any]]:
    entry = node(federation, node_id)
    async with session.get(
        f"{entry['management_url']}/api/audit/rows",
        params={"service": ECHO, "limit": "10000"},
        headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
    ) as response:
        assert response.status == 200
        rows = (await response.json())["rows"]
    return [row for row in rows if marker in (row["path"] or "")]


async def test_a_consumer_with_a_locked_database_relays_nothing(
    federation: dict[str, Any],
) -> None:
    consumer = node(federation, HOSP_A)
    marker = f"locked-{uuid.uuid4().hex}"
    async with aiohttp.ClientSession() as session:
        async with locked_database(consumer["database"]):
            # No X-Road-Id: nothing but the audit log touches the database first.
            async with session.get(
                f"{consumer['client_url']}/r1/{ECHO}/{marker}",
                headers={"X-Road-Client": CONSUMER},
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response:
                await response.read()
                assert response.status == 503
                assert response.headers["X-Road-Error"] == "server.database_unavailable"
        # A relayed request would have been logged by the provider before it answered.
        assert await rows_with_path(session, federation, HOSP_B, marker) == []
        # The consumer's refusal row lands once its database is back.
        for _ in range(100):
            refused = await rows_with_path(session, federation, HOSP_A, marker)
            if refused:
                break
            await asyncio.sleep(0.2)
        assert [row["error_code"] for row in refused] == ["server.database_unavailable"]

"""The audit writer against a slow database: a coded refusal past the deadline,
nothing acknowledged without its row, no half rows, and recovery."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.chain import fetch_rows, verify_chain
from gateway.audit.models import AuditEntry
from gateway.audit.writer import AuditWriter
from gateway.db import Base, create_engine
from gateway.errors import DatabaseUnavailable
from gateway.sandbox.postgres import create_databases, drop_databases
from tests.conftest import POSTGRES_SERVER, require_postgres

NODE = "EE/GOV/70000001/node1"
DEADLINE_S = 0.5


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgres":
        require_postgres()
        (url,) = await create_databases(POSTGRES_SERVER, [f"renkei_slow_{secrets.token_hex(4)}"])
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()
        if request.param == "postgres":
            await drop_databases(POSTGRES_SERVER, [url])


def _entry(message_id: str) -> AuditEntry:
    return AuditEntry(
        role="provider", message_id=message_id, logged_at=datetime.now(UTC),
        request_id=secrets.token_hex(8), method="GET", path="/x", status=200,
    )


async def test_a_slow_database_gets_a_503_past_the_deadline_then_recovers(
    engine: AsyncEngine,
) -> None:
    writer = AuditWriter(engine, NODE, commit_deadline_s=DEADLINE_S)
    await writer.start()
    try:
        assert (await writer.append(_entry("before")))["seq"] == 1
        # Another transaction holds the chain head: the database is "slow".
        async with engine.connect() as locker:
            transaction = await locker.begin()
            await locker.execute(text("UPDATE audit_chain_head SET seq = seq"))
            started = asyncio.get_running_loop().time()
            with pytest.raises(DatabaseUnavailable) as caught:
                await writer.append(_entry("during"))
            waited = asyncio.get_running_loop().time() - started
            assert caught.value.status == 503
            assert caught.value.code == "server.database_unavailable"
            assert DEADLINE_S <= waited < DEADLINE_S + 2
            await transaction.rollback()
        # Recovery: the next exchange is logged, after the late row if it landed.
        row = await writer.append(_entry("after"))
    finally:
        await writer.stop()
    rows = await fetch_rows(engine, NODE)
    assert verify_chain(rows) == len(rows)  # no half row, no gap
    assert [r["message_id"] for r in rows if r["message_id"] != "during"] == ["before", "after"]
    assert row["seq"] == rows[-1]["seq"]

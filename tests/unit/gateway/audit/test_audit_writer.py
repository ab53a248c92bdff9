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


async def _reservations(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT request_id FROM audit_reservation"))
        return [str(value) for value in result.scalars()]


async def test_a_locked_database_refuses_the_reservation_within_two_seconds(
    engine: AsyncEngine,
) -> None:
    writer = AuditWriter(engine, NODE)  # the default reservation deadline: 2 s
    await writer.start()
    try:
        async with engine.connect() as locker:
            transaction = await locker.begin()
            await locker.execute(text("UPDATE audit_chain_head SET seq = seq"))
            started = asyncio.get_running_loop().time()
            with pytest.raises(DatabaseUnavailable) as caught:
                await writer.reserve(_entry("locked"))
            waited = asyncio.get_running_loop().time() - started
            assert caught.value.code == "server.database_unavailable"
            assert waited < 4  # the default deadline, not the 10 s row deadline
            await transaction.rollback()
    finally:
        await writer.stop()


async def test_the_exchange_row_settles_its_reservation_in_one_transaction(
    engine: AsyncEngine,
) -> None:
    writer = AuditWriter(engine, NODE)
    await writer.start()
    try:
        entry = _entry("relayed")
        await writer.reserve(entry)
        assert await _reservations(engine) == [entry.request_id]  # committed before relaying
        entry.status = 200
        await writer.append(entry)
        assert await _reservations(engine) == []
    finally:
        await writer.stop()
    rows = await fetch_rows(engine, NODE)
    assert [r["message_id"] for r in rows] == ["relayed"]


async def test_a_refusal_queued_without_waiting_settles_a_late_reservation(
    engine: AsyncEngine,
) -> None:
    writer = AuditWriter(engine, NODE, reserve_deadline_s=DEADLINE_S)
    await writer.start()
    entry = _entry("late")
    try:
        async with engine.connect() as locker:
            transaction = await locker.begin()
            await locker.execute(text("UPDATE audit_chain_head SET seq = seq"))
            with pytest.raises(DatabaseUnavailable):
                await writer.reserve(entry)
            entry.error_code, entry.status = "server.database_unavailable", 503
            writer.append_later(entry)
            await transaction.rollback()
    finally:
        await writer.stop()  # drains the queue
    assert await _reservations(engine) == []
    rows = await fetch_rows(engine, NODE)
    assert [(r["message_id"], r["error_code"]) for r in rows] == [
        ("late", "server.database_unavailable")
    ]


async def test_an_orphaned_reservation_becomes_a_row_with_an_unknown_outcome(
    engine: AsyncEngine,
) -> None:
    crashed = AuditWriter(engine, NODE)
    await crashed.start()
    entry = _entry("orphan")
    entry.request_hash = "h" * 86
    await crashed.reserve(entry)
    await crashed.stop()  # the process "dies" between relaying and logging
    restarted = AuditWriter(engine, NODE, stale_reservation_s=0)
    await restarted.start()
    await restarted.stop()
    assert await _reservations(engine) == []
    rows = await fetch_rows(engine, NODE)
    assert verify_chain(rows) == 1
    (row,) = rows
    assert (row["message_id"], row["request_id"], row["request_hash"]) == (
        "orphan", entry.request_id, entry.request_hash,
    )
    assert row["error_code"] == "audit.outcome_unknown"


async def test_a_young_reservation_is_left_to_its_live_exchange(engine: AsyncEngine) -> None:
    writer = AuditWriter(engine, NODE)
    await writer.start()
    try:
        entry = _entry("in-flight")
        await writer.reserve(entry)
        # Another process of the node starts meanwhile: the exchange is still running.
        assert await writer.settle_stale(datetime.now(UTC)) == 0
        assert await _reservations(engine) == [entry.request_id]
    finally:
        await writer.stop()

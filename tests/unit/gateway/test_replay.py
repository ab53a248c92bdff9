"""The replay memory commits ids in groups and still refuses every replay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.db import Base, create_engine
from gateway.errors import DatabaseUnavailable, Replayed
from gateway.replay import ReplayGuard, SeenRequest

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _guard(tmp_path: Path) -> ReplayGuard:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return ReplayGuard(engine, retention=timedelta(minutes=5))


async def test_concurrent_ids_are_all_remembered(tmp_path: Path) -> None:
    guard = await _guard(tmp_path)
    ids = [f"id-{n}" for n in range(200)]
    await asyncio.gather(*(guard.check_and_remember(i, now=NOW) for i in ids))
    async with guard._engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(SeenRequest))).scalar()
    assert count == 200
    with pytest.raises(Replayed):
        await guard.check_and_remember("id-7", now=NOW)
    await guard._engine.dispose()


async def test_the_same_id_twice_in_one_batch_is_a_replay(tmp_path: Path) -> None:
    guard = await _guard(tmp_path)
    results = await asyncio.gather(
        guard.check_and_remember("twice", now=NOW),
        guard.check_and_remember("twice", now=NOW),
        return_exceptions=True,
    )
    assert results.count(None) == 1
    assert sum(isinstance(r, Replayed) for r in results) == 1
    await guard._engine.dispose()


async def test_a_replay_survives_a_new_guard(tmp_path: Path) -> None:
    guard = await _guard(tmp_path)
    await guard.check_and_remember("kept", now=NOW)
    await guard._engine.dispose()
    again = await _guard(tmp_path)
    with pytest.raises(Replayed):
        await again.check_and_remember("kept", now=NOW)
    await again._engine.dispose()


async def test_a_database_failure_fails_closed(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")  # no tables
    guard = ReplayGuard(engine, retention=timedelta(minutes=5))
    with pytest.raises(DatabaseUnavailable):
        await guard.check_and_remember("x", now=NOW)
    await engine.dispose()

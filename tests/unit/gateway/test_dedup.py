"""Message-id claims and replay memory hold across restarts and across processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from certs.identifiers import SubsystemId
from gateway.db import Base, create_engine
from gateway.dedup import claim_message_id
from gateway.errors import DuplicateMessageId, Replayed
from gateway.replay import ReplayGuard

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CLIENT = SubsystemId.parse("I/C/M/S")


async def _engine(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return engine


async def test_a_repeated_message_id_is_refused_across_engines(tmp_path: Path) -> None:
    first, second = await _engine(tmp_path / "n.db"), await _engine(tmp_path / "n.db")
    try:
        await claim_message_id(first, CLIENT, "m-1", now=NOW)
        with pytest.raises(DuplicateMessageId) as caught:
            await claim_message_id(second, CLIENT, "m-1", now=NOW + timedelta(minutes=5))
        assert caught.value.code == "client.duplicate_message_id"
        assert caught.value.status == 400  # X-Road's status for client.* on r1
        # Another client may use the same id; the window ends.
        await claim_message_id(second, SubsystemId.parse("I/C/M/T"), "m-1", now=NOW)
        await claim_message_id(second, CLIENT, "m-1", now=NOW + timedelta(days=2))
    finally:
        await first.dispose()
        await second.dispose()


async def test_replays_are_refused_after_a_restart_and_from_another_process(
    tmp_path: Path,
) -> None:
    engine = await _engine(tmp_path / "n.db")
    await ReplayGuard(engine, retention=timedelta(minutes=5)).check_and_remember("r-1", now=NOW)
    await engine.dispose()  # the node stops
    restarted = await _engine(tmp_path / "n.db")
    other = await _engine(tmp_path / "n.db")
    try:
        for replay_engine in (restarted, other):
            guard = ReplayGuard(replay_engine, retention=timedelta(minutes=5))
            with pytest.raises(Replayed):
                await guard.check_and_remember("r-1", now=NOW + timedelta(seconds=1))
    finally:
        await restarted.dispose()
        await other.dispose()

"""The operator trail is a hash chain: every edit, deletion, insertion or
reordering of its rows is found by ``verify``; concurrent writers keep it whole."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.operator_log import NODE_OPERATOR_LOG
from gateway.schema import upgrade_node_schema
from member_registry.operator_log import OperatorAction, OperatorLog, OperatorTrailBroken
from tests.unit.gateway.ops.test_ops_schema import engine  # noqa: F401 - the fixture

TABLE = NODE_OPERATOR_LOG


def _action(n: int, change: dict[str, object] | None = None) -> OperatorAction:
    return OperatorAction(
        at=datetime.now(UTC), actor=f"operator-{n}", role="admin", token_id=f"jti-{n}",
        method="POST", action="/api/access", target="/api/access", status=201,
        source="127.0.0.1", change=change or {"before": None, "after": {"id": str(n)}},
    )  # fmt: skip


async def _trail(engine: AsyncEngine, rows: int = 5) -> OperatorLog:  # noqa: F811
    await upgrade_node_schema(engine)
    trail = OperatorLog(engine, TABLE)
    for n in range(1, rows + 1):
        await trail.record(_action(n))
    return trail


async def _broken(trail: OperatorLog, seq: int, words: str) -> None:
    with pytest.raises(OperatorTrailBroken) as caught:
        await trail.verify()
    assert caught.value.code == "management.operator_log_broken"
    assert caught.value.seq == seq
    assert words in caught.value.message


async def test_an_untouched_trail_verifies_and_keeps_what_changed(
    engine: AsyncEngine,  # noqa: F811
) -> None:
    trail = await _trail(engine)
    assert await trail.verify() == 5
    (row,) = await trail.query(actor="operator-3")
    assert json.loads(row["change"]) == {"before": None, "after": {"id": "3"}}
    assert row["seq"] == 3
    assert len(row["entry_hash"]) == 64


async def test_an_edited_row_breaks_the_chain(engine: AsyncEngine) -> None:  # noqa: F811
    trail = await _trail(engine)
    async with engine.begin() as conn:
        await conn.execute(update(TABLE).where(TABLE.c.seq == 3).values(change='{"after":null}'))
    await _broken(trail, 3, "entry_hash")


async def test_a_deleted_row_breaks_the_chain(engine: AsyncEngine) -> None:  # noqa: F811
    trail = await _trail(engine)
    async with engine.begin() as conn:
        await conn.execute(delete(TABLE).where(TABLE.c.seq == 2))
    await _broken(trail, 3, "sequence jumps")


async def test_an_inserted_row_breaks_the_chain(engine: AsyncEngine) -> None:  # noqa: F811
    trail = await _trail(engine)
    async with engine.begin() as conn:
        row = dict((await conn.execute(select(TABLE).where(TABLE.c.seq == 5))).mappings().one())
        row.pop("id")
        await conn.execute(update(TABLE).where(TABLE.c.seq == 5).values(seq=6))
        await conn.execute(insert(TABLE).values(**{**row, "actor": "intruder"}))
    await _broken(trail, 5, "entry_hash")


async def test_swapped_rows_break_the_chain(engine: AsyncEngine) -> None:  # noqa: F811
    trail = await _trail(engine)
    async with engine.begin() as conn:
        await conn.execute(update(TABLE).where(TABLE.c.seq == 2).values(seq=-2))
        await conn.execute(update(TABLE).where(TABLE.c.seq == 3).values(seq=2))
        await conn.execute(update(TABLE).where(TABLE.c.seq == -2).values(seq=3))
    await _broken(trail, 2, "prev_hash")


async def test_writers_racing_keep_one_chain(engine: AsyncEngine) -> None:  # noqa: F811
    await upgrade_node_schema(engine)
    # Two trails (as two processes have), each write in its own connection and transaction.
    trails = [OperatorLog(engine, TABLE), OperatorLog(engine, TABLE)]
    await asyncio.gather(*(trails[n % 2].record(_action(n)) for n in range(20)))
    assert await trails[0].verify() == 20

"""SQLite: readers never wait for the write lock; one process's writers queue, never fail."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from gateway.db import create_engine, read_only


async def test_a_read_proceeds_while_a_write_transaction_is_open(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (v INTEGER)"))
        async with engine.begin() as writer:
            await writer.execute(text("INSERT INTO t VALUES (1)"))
            async with read_only(engine).connect() as reader:
                seen = await asyncio.wait_for(
                    reader.scalar(text("SELECT count(*) FROM t")), timeout=2
                )
            assert seen == 0  # the uncommitted row is not visible
    finally:
        await engine.dispose()


async def test_concurrent_writers_of_one_process_all_commit(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (v INTEGER)"))

        async def write(value: int) -> None:
            async with engine.begin() as conn:
                current = await conn.scalar(text("SELECT count(*) FROM t"))
                await conn.execute(text("INSERT INTO t VALUES (:v)"), {"v": current})

        await asyncio.gather(*(write(n) for n in range(40)))
        async with read_only(engine).connect() as conn:
            values = (await conn.execute(text("SELECT v FROM t ORDER BY v"))).scalars().all()
        # Read-then-write transactions ran one at a time: each saw all before it.
        assert values == list(range(40))
    finally:
        await engine.dispose()

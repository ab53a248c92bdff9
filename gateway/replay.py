"""Replay memory: every accepted request id, shared by all processes of a node.

It lives in the node's database, so it survives a restart; an id is
remembered until its request could no longer pass the age check anyway.
Ids that arrive while a batch is being committed are inserted together in
the next transaction (group commit): one commit, so one fsync, per batch
instead of per request. An id is accepted only once its row is committed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base
from gateway.errors import DatabaseUnavailable, Replayed

__all__ = ["ReplayGuard", "SeenRequest"]


class SeenRequest(Base):
    __tablename__ = "replay_seen"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


_Pending = tuple[str, int, "asyncio.Future[bool]"]


class ReplayGuard:
    def __init__(
        self, engine: AsyncEngine, *, retention: timedelta, max_batch: int = 512
    ) -> None:
        self._engine = engine
        self._retention = retention
        self._max_batch = max_batch
        self._inserts = 0
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def check_and_remember(self, request_id: str, *, now: datetime) -> None:
        """Remember ``request_id``; raise :class:`Replayed` if it was seen before."""
        expires = int((now + self._retention).timestamp())
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((request_id, expires, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="replay-writer")
        if not await asyncio.shield(future):
            raise Replayed(f"request {request_id} was already received")
        self._inserts += 1
        if self._inserts % 1000 == 0:
            await self.purge(now=now)

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                fresh = await self._insert(batch)
            except (SQLAlchemyError, OSError):
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(
                            DatabaseUnavailable("replay memory is unavailable")
                        )
                        future.exception()  # retrieved here if its waiter is gone
                continue
            for request_id, _, future in batch:
                if not future.done():
                    # Only the first of two equal ids in one batch is fresh.
                    future.set_result(request_id in fresh)
                    fresh.discard(request_id)

    async def _insert(self, batch: list[_Pending]) -> set[str]:
        """Insert the batch's ids; return those that were not stored before."""
        rows: dict[str, int] = {}
        for request_id, expires, _ in batch:
            rows.setdefault(request_id, expires)
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        statement: Any = (
            dialect.insert(SeenRequest)
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(SeenRequest.request_id)
        )
        values = [{"request_id": k, "expires_at": v} for k, v in rows.items()]
        async with self._engine.begin() as conn:
            inserted = await conn.execute(statement, values)
            return {str(row[0]) for row in inserted}

    async def purge(self, *, now: datetime) -> None:
        """Forget ids whose requests are too old to be accepted anyway."""
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(SeenRequest).where(SeenRequest.expires_at < int(now.timestamp()))
            )

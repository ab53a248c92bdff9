"""Replay memory: every accepted request id, shared by all processes of a node.

It lives in the node's database, so it survives a restart; an id is
remembered until its request could no longer pass the age check anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import BigInteger, String, delete, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base
from gateway.errors import DatabaseUnavailable, Replayed

__all__ = ["ReplayGuard", "SeenRequest"]


class SeenRequest(Base):
    __tablename__ = "replay_seen"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class ReplayGuard:
    def __init__(self, engine: AsyncEngine, *, retention: timedelta) -> None:
        self._engine = engine
        self._retention = retention
        self._inserts = 0

    async def check_and_remember(self, request_id: str, *, now: datetime) -> None:
        """Remember ``request_id``; raise :class:`Replayed` if it was seen before."""
        expires = int((now + self._retention).timestamp())
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(SeenRequest).values(request_id=request_id, expires_at=expires)
                )
        except IntegrityError as exc:
            raise Replayed(f"request {request_id} was already received") from exc
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable("replay memory is unavailable") from exc
        self._inserts += 1
        if self._inserts % 1000 == 0:
            await self.purge(now=now)

    async def purge(self, *, now: datetime) -> None:
        """Forget ids whose requests are too old to be accepted anyway."""
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(SeenRequest).where(SeenRequest.expires_at < int(now.timestamp()))
            )

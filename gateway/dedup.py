"""At most once per X-Road-Id: a client's retry never causes a second exchange.

When a client supplies ``X-Road-Id``, the consumer node claims
(client, message id) in its database right before relaying; a second request
with the same pair within the window is refused with
``client.duplicate_message_id`` (409), whatever became of the first. The
claim is in the node's database, so it holds across restarts and across the
processes of a node. A client that wants a new exchange uses a new id; one
that does not know the outcome of the first asks the audit log (by message id).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, String, delete, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from certs.identifiers import SubsystemId
from gateway.db import Base
from gateway.errors import DatabaseUnavailable, DuplicateMessageId

__all__ = ["DEDUP_WINDOW", "ClaimedMessage", "claim_message_id"]

DEDUP_WINDOW = timedelta(hours=24)


class ClaimedMessage(Base):
    __tablename__ = "client_message_claims"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


def _key(client: SubsystemId, message_id: str) -> str:
    return hashlib.sha256(f"{client}\n{message_id}".encode()).hexdigest()


async def claim_message_id(
    engine: AsyncEngine,
    client: SubsystemId,
    message_id: str,
    *,
    now: datetime,
    window: timedelta = DEDUP_WINDOW,
) -> None:
    """Claim the pair or raise :class:`DuplicateMessageId`; expired claims are dropped."""
    stamp = int(now.timestamp())
    key = _key(client, message_id)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                delete(ClaimedMessage).where(
                    ClaimedMessage.key == key, ClaimedMessage.expires_at < stamp
                )
            )
            await conn.execute(
                insert(ClaimedMessage).values(
                    key=key, expires_at=int((now + window).timestamp())
                )
            )
    except IntegrityError as exc:
        raise DuplicateMessageId(
            f"X-Road-Id {message_id!r} was already used by this client"
        ) from exc
    except (SQLAlchemyError, OSError) as exc:
        raise DatabaseUnavailable("the message id memory is unavailable") from exc

"""At most once per X-Road-Id, for a client that asks for it.

X-Road does not deduplicate: a retry with the same ``X-Road-Id`` is served
again, and so it is here by default. A client that sends
``Renkei-Deduplicate: true`` with its ``X-Road-Id`` gets the opposite: the
consumer node claims (client, message id) in its database right before
relaying, and a second such request with the same pair within the window is
refused with ``client.duplicate_message_id`` (400), whatever became of the
first. The claim is in the node's database, so it holds across restarts and
across the processes of a node. A client that wants a new exchange uses a new
id; one that does not know the outcome of the first asks the audit log (by
message id).

Replay protection between nodes does not rest on this: the provider refuses a
second use of the request id the consumer node generates and signs
(``gateway/replay.py``), which no client chooses.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, String, delete, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from certs.identifiers import ClientId
from gateway.db import Base
from gateway.errors import DatabaseUnavailable, DuplicateMessageId

__all__ = ["DEDUP_WINDOW", "ClaimedMessage", "claim_message_id"]

DEDUP_WINDOW = timedelta(hours=24)


class ClaimedMessage(Base):
    __tablename__ = "client_message_claims"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


def _key(client: ClientId, message_id: str) -> str:
    return hashlib.sha256(f"{client}\n{message_id}".encode()).hexdigest()


async def claim_message_id(
    engine: AsyncEngine,
    client: ClientId,
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

"""Erasing a data subject's logged bodies so that no copy can be read again.

Three layers, because a deleted row is not a deleted byte:

1. The subject's key (``audit_subject_key``) and its bodies are deleted in one
   transaction that holds the chain head, so no writer of any process seals a
   new body under the key being destroyed. Without the key, every copy of the
   ciphertexts (a PostgreSQL dead tuple, a replica, a backup of the body
   table) is undecryptable, even with the node's body key.
2. On SQLite every node connection runs with ``secure_delete`` on
   (:func:`gateway.db.create_engine`), so the deleted cells and pages are
   overwritten with zeros in the database file.
3. The storage is then told to let go of old versions: SQLite checkpoints the
   write-ahead file into the database and truncates it to zero bytes
   (``wal_checkpoint(TRUNCATE)``), which needs a moment without readers and so
   is retried for a bounded time; PostgreSQL vacuums the two tables.

The chain, checkpoints and proofs keep only digests and are not touched, so
they verify after an erasure exactly as before.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import delete, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.models import ChainHead, EncryptedBody, SubjectKey

__all__ = ["Erasure", "erase_subject_bodies", "release_erased_storage"]

log = structlog.get_logger(__name__)

# A write-ahead truncation waits for readers to move on; bounded, then reported.
_TRUNCATE_ATTEMPTS = 20
_TRUNCATE_PAUSE_S = 0.1


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure removed, and whether the storage let go of the old versions."""

    subject: str
    bodies: int
    keys: int
    storage_released: bool

    def to_json_dict(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "bodies_erased": self.bodies,
            "keys_destroyed": self.keys,
            "storage_released": self.storage_released,
        }


async def erase_subject_bodies(engine: AsyncEngine, node_id: str, subject: str) -> Erasure:
    """Destroy ``subject``'s key and delete its bodies; the chain is not touched."""
    async with engine.begin() as conn:
        # The writers hold this row while they seal a batch (gateway/audit/writer.py).
        await conn.execute(
            select(ChainHead.seq).where(ChainHead.node_id == node_id).with_for_update()
        )
        bodies = await conn.execute(
            delete(EncryptedBody).where(
                EncryptedBody.node_id == node_id, EncryptedBody.subject == subject
            )
        )
        keys = await conn.execute(
            delete(SubjectKey).where(SubjectKey.node_id == node_id, SubjectKey.subject == subject)
        )
    erasure = Erasure(
        subject=subject,
        bodies=int(bodies.rowcount or 0),
        keys=int(keys.rowcount or 0),
        storage_released=await release_erased_storage(engine),
    )
    log.info("audit_subject_erased", bodies=erasure.bodies, keys=erasure.keys,
             storage_released=erasure.storage_released)  # fmt: skip
    return erasure


async def release_erased_storage(engine: AsyncEngine) -> bool:
    """Make the storage drop old row versions; False if it could not (logged)."""
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                # The driver's own connection: the engine's BEGIN hook must not wrap it.
                raw = await conn.get_raw_connection()
                return await _truncate_write_ahead(raw.driver_connection)
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in (SubjectKey.__tablename__, EncryptedBody.__tablename__):
                await autocommit.execute(text(f"VACUUM {table}"))
            return True
    except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
        log.warning("audit_erasure_storage_not_released", error=str(exc))
        return False


async def _truncate_write_ahead(driver: Any) -> bool:
    """``driver`` is an aiosqlite connection outside any transaction."""
    for _ in range(_TRUNCATE_ATTEMPTS):
        cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy, _log_frames, _done = await cursor.fetchone()
        await cursor.close()
        if busy == 0:
            return True
        await asyncio.sleep(_TRUNCATE_PAUSE_S)
    log.warning("audit_erasure_wal_busy", attempts=_TRUNCATE_ATTEMPTS)
    return False

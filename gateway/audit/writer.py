"""The audit writer: one task commits queued rows in groups.

``append()`` returns only once the row is committed, so a stage that awaits
it never acknowledges an exchange whose row could still be lost. Rows that
arrive while a batch is being committed form the next batch (group commit),
which keeps the cost per exchange low under load. Several processes of one
node may append to the same chain: the chain head row is locked for the
duration of a batch (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit.bodies import BodyVault, sealed_body_rows
from gateway.audit.errors import BodyStoreError
from gateway.audit.hashing import GENESIS_HASH, entry_hash
from gateway.audit.models import (
    HASHED_FIELDS,
    AuditEntry,
    AuditRow,
    ChainHead,
    EncryptedBody,
    OperationalRecord,
)
from gateway.errors import DatabaseUnavailable

__all__ = ["AuditWriter", "row_fields"]

log = structlog.get_logger(__name__)

_Pending = tuple[AuditEntry, "asyncio.Future[dict[str, Any]]"]


def row_fields(entry: AuditEntry, *, node_id: str, seq: int, prev_hash: str) -> dict[str, Any]:
    """The stored, hashed form of an entry."""
    consent = (
        json.dumps(entry.consent, sort_keys=True, separators=(",", ":"))
        if entry.consent is not None
        else None
    )
    fields: dict[str, Any] = {
        "node_id": node_id,
        "seq": seq,
        "logged_at": entry.logged_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "role": entry.role,
        "message_id": entry.message_id,
        "request_id": entry.request_id,
        "client": entry.client,
        "service": entry.service,
        "method": entry.method,
        "path": entry.path,
        "peer_node": entry.peer_node,
        "user_id": entry.user_id,
        "purpose": entry.purpose,
        "subject": entry.subject,
        "request_hash": entry.request_hash,
        "request_body_sha256": entry.request_body_sha256,
        "request_signature": entry.request_signature,
        "response_body_sha256": entry.response_body_sha256,
        "response_signature": entry.response_signature,
        "status": entry.status,
        "error_code": entry.error_code,
        "consent": consent,
        "prev_hash": prev_hash,
    }
    assert tuple(fields) == HASHED_FIELDS
    fields["entry_hash"] = entry_hash(prev_hash, {k: fields[k] for k in HASHED_FIELDS})
    return fields


def _operational(entry: AuditEntry, row: dict[str, Any], committed: datetime) -> dict[str, Any]:
    """Timings and sizes of one exchange, stored beside (not in) the chain."""
    return {
        "node_id": row["node_id"],
        "seq": row["seq"],
        "message_id": entry.message_id,
        "role": entry.role,
        "client": entry.client,
        "service": entry.service,
        "started_at": row["logged_at"],
        "committed_at": committed.isoformat(timespec="microseconds"),
        "duration_ms": max(0.0, (committed - entry.logged_at).total_seconds() * 1000),
        "backend_ms": entry.backend_ms,
        "request_size": entry.request_size,
        "response_size": entry.response_size,
        "status": entry.status,
        "error_code": entry.error_code,
        "succeeded": entry.error_code is None and (entry.status or 0) < 500,
    }


class AuditWriter:
    """Appends rows to one node's chain; start() before use, stop() to drain."""

    def __init__(
        self,
        engine: AsyncEngine,
        node_id: str,
        *,
        max_batch: int = 512,
        bodies: BodyVault | None = None,
        commit_deadline_s: float = 10.0,
    ) -> None:
        self._engine = engine
        self._commit_deadline_s = commit_deadline_s
        self._node_id = node_id
        self._bodies = bodies
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        if self._task is None:
            await self._ensure_head()
            self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def _ensure_head(self) -> None:
        # Created once up front so concurrent writers only ever lock an existing row.
        async with self._engine.begin() as conn:
            exists = (
                await conn.execute(
                    select(ChainHead.node_id).where(ChainHead.node_id == self._node_id)
                )
            ).first()
            if exists is None:
                await conn.execute(
                    insert(ChainHead).values(
                        node_id=self._node_id, seq=0, entry_hash=GENESIS_HASH
                    )
                )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        await self._queue.join()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def keep_body(self, entry: AuditEntry, part: str, body: Any) -> None:
        """Log ``body`` (encrypted, beside the row) if ``entry``'s service logs bodies.

        ``part`` is "req" or "resp"; ``body`` a :class:`gateway.spool.SpooledBody`.
        Call it while the body is still open; nothing happens by default.
        """
        if self._bodies is not None:
            self._bodies.keep(entry, part, body)

    async def append(self, entry: AuditEntry) -> dict[str, Any]:
        """Queue ``entry`` and wait until its row is committed; return the row.

        Past ``commit_deadline_s`` (a slow or hung database) the caller gets
        :class:`DatabaseUnavailable` and acknowledges nothing; the row may still
        be committed later, which reconcile shows as a one-sided row.
        """
        if self._task is None:
            raise DatabaseUnavailable("the audit log is not running")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        await self._queue.put((entry, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._commit_deadline_s)
        except TimeoutError as exc:
            raise DatabaseUnavailable(
                f"the audit log was not written within {self._commit_deadline_s:g} s"
            ) from exc

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                rows = await self._commit([entry for entry, _ in batch])
            except (SQLAlchemyError, OSError, BodyStoreError) as exc:
                # A subject key that no longer unwraps fails the batch closed too.
                log.error("audit_commit_failed", error=str(exc), rows=len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            DatabaseUnavailable("the audit log could not be written")
                        )
            else:
                for (_, future), row in zip(batch, rows, strict=True):
                    if not future.done():
                        future.set_result(row)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, entries: list[AuditEntry]) -> list[dict[str, Any]]:
        async with self._engine.begin() as conn:
            seq, prev = await self._lock_head(conn)
            rows = []
            for entry in entries:
                seq += 1
                row = row_fields(entry, node_id=self._node_id, seq=seq, prev_hash=prev)
                prev = row["entry_hash"]
                rows.append(row)
            await conn.execute(insert(AuditRow), rows)
            committed = datetime.now(UTC)
            await conn.execute(
                insert(OperationalRecord),
                [_operational(e, r, committed) for e, r in zip(entries, rows, strict=True)],
            )
            if self._bodies is not None:
                sealed = await sealed_body_rows(
                    conn, self._bodies, entries, node_id=self._node_id,
                    stored_at=committed.isoformat(timespec="microseconds"),
                )  # fmt: skip
                if sealed:
                    await conn.execute(insert(EncryptedBody), sealed)
            await conn.execute(
                update(ChainHead)
                .where(ChainHead.node_id == self._node_id)
                .values(seq=seq, entry_hash=prev)
            )
        return rows

    async def _lock_head(self, conn: AsyncConnection) -> tuple[int, str]:
        query = (
            select(ChainHead.seq, ChainHead.entry_hash)
            .where(ChainHead.node_id == self._node_id)
            .with_for_update()
        )
        head = (await conn.execute(query)).one()
        return int(head.seq), str(head.entry_hash)

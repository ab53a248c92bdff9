"""The audit writer: one task commits queued rows in groups.

``append()`` returns only once the row is committed, so a stage that awaits
it never acknowledges an exchange whose row could still be lost. Rows that
arrive while a batch is being committed form the next batch (group commit),
which keeps the cost per exchange low under load. Several processes of one
node may append to the same chain: the chain head row is locked for the
duration of a batch (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite).

Nothing leaves a consumer node before it is recorded: ``reserve()`` commits a
reservation (in the same group commit as rows) before the request is relayed,
and the exchange's row deletes it in the transaction that writes the row. A
reservation left behind by a process that died mid-exchange is settled into a
row with ``audit.outcome_unknown`` (``settle_stale``), at start and then
periodically, so every relayed request ends up in the chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certs.jws import canonical_json
from gateway.audit.bodies import BodyVault, sealed_body_rows
from gateway.audit.errors import BodyStoreError
from gateway.audit.hashing import GENESIS_HASH, ROW_FORMAT, entry_hash
from gateway.audit.models import (
    HASHED_FIELDS,
    AuditEntry,
    AuditRow,
    ChainHead,
    EncryptedBody,
    OperationalRecord,
    Reservation,
)
from gateway.errors import DatabaseUnavailable

__all__ = ["OUTCOME_UNKNOWN", "AuditWriter", "row_fields"]

log = structlog.get_logger(__name__)

# The error code of a row settled from a reservation whose exchange never logged.
OUTCOME_UNKNOWN = "audit.outcome_unknown"

# The chained fields of an entry a reservation keeps (all but seq and hashes).
_RESERVED_FIELDS = tuple(
    name for name in HASHED_FIELDS if name not in ("node_id", "seq", "prev_hash", "format")
)


@dataclass(frozen=True, slots=True)
class _Reserve:
    """A reservation to commit: the entry as known before relaying."""

    entry: AuditEntry


_Pending = tuple["AuditEntry | _Reserve", "asyncio.Future[dict[str, Any]]"]


def row_fields(entry: AuditEntry, *, node_id: str, seq: int, prev_hash: str) -> dict[str, Any]:
    """The stored, hashed form of an entry."""
    # Hashed as this text; from format 2 on it is the decision's RFC 8785 form.
    consent = canonical_json(entry.consent).decode() if entry.consent is not None else None
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
        "format": ROW_FORMAT,
    }
    assert tuple(fields) == HASHED_FIELDS
    fields["entry_hash"] = entry_hash(prev_hash, {k: fields[k] for k in HASHED_FIELDS})
    return fields


_ENTRY_FIELDS = (*_RESERVED_FIELDS, "request_size")


def _forget(future: asyncio.Future[dict[str, Any]]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not report it as lost


def _entry_json(entry: AuditEntry) -> str:
    fields = {name: getattr(entry, name) for name in _RESERVED_FIELDS}
    fields["logged_at"] = entry.logged_at.astimezone(UTC).isoformat(timespec="microseconds")
    fields["request_size"] = entry.request_size
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _entry_from_json(text: str) -> AuditEntry:
    fields = json.loads(text)
    fields["logged_at"] = datetime.fromisoformat(fields["logged_at"])
    return AuditEntry(**fields)


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
        reserve_deadline_s: float = 2.0,
        stale_reservation_s: float = 600.0,
    ) -> None:
        self._engine = engine
        self._commit_deadline_s = commit_deadline_s
        self._reserve_deadline_s = reserve_deadline_s
        self._stale_reservation_s = stale_reservation_s
        self._settler: asyncio.Task[None] | None = None
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
            await self.settle_stale(datetime.now(UTC))
            self._task = asyncio.create_task(self._run(), name="audit-writer")
            self._settler = asyncio.create_task(self._settle_periodically(), name="audit-settle")

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
        settler, self._settler = self._settler, None
        if settler is not None:
            settler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settler
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
        return await self._wait(self._enqueue(entry), self._commit_deadline_s, "written")

    async def reserve(self, entry: AuditEntry) -> None:
        """Commit a reservation for ``entry``'s exchange before anything is relayed.

        Raises :class:`DatabaseUnavailable` past ``reserve_deadline_s``: the
        caller then relays nothing. ``entry.request_id`` keys the reservation;
        the row appended later for the same request id removes it.
        """
        if entry.request_id is None:
            raise ValueError("a reservation needs the exchange's request id")
        snapshot = AuditEntry(**{name: getattr(entry, name) for name in _ENTRY_FIELDS})
        await self._wait(self._enqueue(_Reserve(snapshot)), self._reserve_deadline_s, "reserved")

    def append_later(self, entry: AuditEntry) -> None:
        """Queue ``entry`` without waiting: a refusal whose reply must not wait on the
        database (it is committed when the database is back, or at ``stop()``)."""
        self._enqueue(entry).add_done_callback(_forget)

    def _enqueue(self, item: AuditEntry | _Reserve) -> asyncio.Future[dict[str, Any]]:
        if self._task is None:
            raise DatabaseUnavailable("the audit log is not running")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return future

    async def _wait(
        self, future: asyncio.Future[dict[str, Any]], deadline_s: float, what: str
    ) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(asyncio.shield(future), deadline_s)
        except TimeoutError as exc:
            future.add_done_callback(_forget)  # its late outcome is no one's to read
            raise DatabaseUnavailable(
                f"the audit log was not {what} within {deadline_s:g} s"
            ) from exc

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._commit([item for item, _ in batch])
            except (SQLAlchemyError, OSError, BodyStoreError) as exc:
                # A subject key that no longer unwraps fails the batch closed too.
                log.error("audit_commit_failed", error=str(exc), rows=len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            DatabaseUnavailable("the audit log could not be written")
                        )
            else:
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, items: list[AuditEntry | _Reserve]) -> list[dict[str, Any]]:
        """One transaction: reservations, rows, and the reservations the rows settle."""
        entries = [item for item in items if isinstance(item, AuditEntry)]
        reservations = [item.entry for item in items if isinstance(item, _Reserve)]
        async with self._engine.begin() as conn:
            seq, prev = await self._lock_head(conn)
            if reservations:
                reserved_at = datetime.now(UTC).isoformat(timespec="microseconds")
                await conn.execute(
                    insert(Reservation),
                    [
                        {
                            "node_id": self._node_id,
                            "request_id": entry.request_id,
                            "reserved_at": reserved_at,
                            "entry": _entry_json(entry),
                        }
                        for entry in reservations
                    ],
                )
            rows = await self._insert_rows(conn, entries, seq, prev)
        written = iter(rows)
        return [next(written) if isinstance(item, AuditEntry) else {} for item in items]

    async def _insert_rows(
        self, conn: AsyncConnection, entries: list[AuditEntry], seq: int, prev: str
    ) -> list[dict[str, Any]]:
        if not entries:
            return []
        rows = []
        for entry in entries:
            seq += 1
            row = row_fields(entry, node_id=self._node_id, seq=seq, prev_hash=prev)
            prev = row["entry_hash"]
            rows.append(row)
        await conn.execute(insert(AuditRow), rows)
        settled = [entry.request_id for entry in entries if entry.request_id is not None]
        if settled:
            await conn.execute(
                delete(Reservation).where(
                    Reservation.node_id == self._node_id, Reservation.request_id.in_(settled)
                )
            )
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

    async def settle_stale(self, now: datetime) -> int:
        """Turn reservations older than ``stale_reservation_s`` into rows; return how many.

        Such a reservation belongs to an exchange whose process stopped between
        relaying and logging (no live exchange runs that long): the row records
        what was relayed, with ``audit.outcome_unknown`` as its outcome.
        """
        cutoff = (now - timedelta(seconds=self._stale_reservation_s)).astimezone(UTC)
        async with self._engine.begin() as conn:
            seq, prev = await self._lock_head(conn)
            stale = (
                await conn.execute(
                    select(Reservation.entry)
                    .where(
                        Reservation.node_id == self._node_id,
                        Reservation.reserved_at < cutoff.isoformat(timespec="microseconds"),
                    )
                    .order_by(Reservation.reserved_at, Reservation.request_id)
                )
            ).scalars().all()
            entries = [_entry_from_json(text) for text in stale]
            for entry in entries:
                entry.error_code = OUTCOME_UNKNOWN
            await self._insert_rows(conn, entries, seq, prev)
        if entries:
            log.warning("audit_reservations_settled", rows=len(entries))
        return len(entries)

    async def _settle_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._stale_reservation_s / 2)
            try:
                await self.settle_stale(datetime.now(UTC))
            except (SQLAlchemyError, OSError) as exc:
                log.error("audit_settle_failed", error=str(exc))

    async def _lock_head(self, conn: AsyncConnection) -> tuple[int, str]:
        query = (
            select(ChainHead.seq, ChainHead.entry_hash)
            .where(ChainHead.node_id == self._node_id)
            .with_for_update()
        )
        head = (await conn.execute(query)).one()
        return int(head.seq), str(head.entry_hash)

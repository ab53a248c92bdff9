"""Read-side queries of the node's audit tables (auditor API and commands)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.models import HASHED_FIELDS, AuditRow, OperationalRecord, RowVisibility

__all__ = ["hide_from_subject", "operational_records", "query_rows", "subject_rows"]

_COLUMNS = [getattr(AuditRow, name) for name in (*HASHED_FIELDS, "entry_hash")]


async def query_rows(
    engine: AsyncEngine,
    node_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    client: str | None = None,
    service: str | None = None,
    subject: str | None = None,
    message_id: str | None = None,
    status: int | None = None,
    error_code: str | None = None,
    after_seq: int = 0,
    limit: int = 1000,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Rows of the chain, in seq order (or newest first), filtered by any of the given fields."""
    query = select(*_COLUMNS).where(AuditRow.node_id == node_id, AuditRow.seq > after_seq)
    if since is not None:
        query = query.where(AuditRow.logged_at >= since.astimezone(UTC).isoformat())
    if until is not None:
        query = query.where(AuditRow.logged_at < until.astimezone(UTC).isoformat())
    for column, value in ((AuditRow.client, client), (AuditRow.service, service),
                          (AuditRow.subject, subject), (AuditRow.message_id, message_id),
                          (AuditRow.status, status), (AuditRow.error_code, error_code)):
        if value is not None:
            query = query.where(column == value)
    order = AuditRow.seq.desc() if newest_first else AuditRow.seq
    async with engine.connect() as conn:
        result = await conn.execute(query.order_by(order).limit(limit))
        return [dict(row._mapping) for row in result]


async def subject_rows(
    engine: AsyncEngine, node_id: str, subject: str
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows that may concern the subject, and the visibility restrictions on this node.

    A row concerns a subject if the request named them (``subject``) or if the consent
    decision lists them among the subjects whose data was released or withheld (a
    Bundle about several people). The second is a text prefilter on the chained
    ``consent`` JSON; :func:`gateway.auditor.subject.subject_report` decides exactly.
    """
    named = json.dumps(subject)  # as it appears inside the consent JSON
    pattern = "%" + named.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = (
        select(*_COLUMNS)
        .where(
            AuditRow.node_id == node_id,
            AuditRow.role == "provider",
            or_(AuditRow.subject == subject, AuditRow.consent.like(pattern, escape="\\")),
        )
        .order_by(AuditRow.seq)
    )
    async with engine.connect() as conn:
        rows = [dict(row._mapping) for row in await conn.execute(query)]
        hidden = await conn.execute(
            select(RowVisibility.message_id, RowVisibility.hidden_from_subject_until).where(
                RowVisibility.node_id == node_id
            )
        )
        return rows, {str(m): str(u) for m, u in hidden}


async def hide_from_subject(
    engine: AsyncEngine, node_id: str, message_id: str, *, until: datetime, reason: str | None
) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(RowVisibility).where(
            RowVisibility.node_id == node_id, RowVisibility.message_id == message_id))
        await conn.execute(insert(RowVisibility).values(
            node_id=node_id, message_id=message_id,
            hidden_from_subject_until=until.astimezone(UTC).isoformat(), reason=reason))


async def operational_records(
    engine: AsyncEngine,
    node_id: str,
    *,
    service: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest operational records first."""
    query = select(OperationalRecord.__table__).where(OperationalRecord.node_id == node_id)
    if service is not None:
        query = query.where(OperationalRecord.service == service)
    if since is not None:
        query = query.where(OperationalRecord.started_at >= since.astimezone(UTC).isoformat())
    async with engine.connect() as conn:
        result = await conn.execute(query.order_by(OperationalRecord.id.desc()).limit(limit))
        return [{k: v for k, v in row._mapping.items() if k != "id"} for row in result]

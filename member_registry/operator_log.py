"""The operator audit trail: who changed what, when, with which result.

Every state-changing management request (on a node or the registry) is one
row. The trail is separate from the exchange audit chain: it records the
operators' actions, not the data exchanges. The table is built per schema by
:func:`operator_log_table`, so the node and the registry each own theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from member_registry.errors import RegistryError

__all__ = ["OperatorAction", "OperatorLog", "OperatorLogUnavailable", "operator_log_table"]


class OperatorLogUnavailable(RegistryError):
    """The operator trail cannot be written; the change is refused rather than unrecorded."""

    code = "management.operator_log_unavailable"


def operator_log_table(metadata: MetaData, name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("at", String(40), nullable=False, index=True),
        Column("actor", String(255), nullable=False, index=True),
        Column("role", String(32), nullable=False),
        Column("token_id", String(64), nullable=True),
        Column("method", String(16), nullable=False),
        Column("action", String(255), nullable=False),
        Column("target", Text, nullable=False),
        Column("status", Integer, nullable=False),
        Column("result", String(16), nullable=False),
        Column("source", String(64), nullable=True),
    )


@dataclass(frozen=True, slots=True)
class OperatorAction:
    at: datetime
    actor: str
    role: str
    token_id: str | None
    method: str
    action: str
    target: str
    status: int
    source: str | None

    @property
    def result(self) -> str:
        if self.status < 400:
            return "ok"
        return "refused" if self.status < 500 else "failed"


class OperatorLog:
    def __init__(self, engine: AsyncEngine, table: Table) -> None:
        self._engine = engine
        self._table = table

    async def record(self, action: OperatorAction) -> None:
        values = {
            "at": action.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": action.actor[:255],
            "role": action.role[:32],
            "token_id": action.token_id,
            "method": action.method[:16],
            "action": action.action[:255],
            "target": action.target[:4096],
            "status": action.status,
            "result": action.result,
            "source": (action.source or "")[:64] or None,
        }
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(self._table).values(**values))
        except (SQLAlchemyError, OSError) as exc:
            raise OperatorLogUnavailable("the operator trail cannot be written") from exc

    async def query(
        self,
        *,
        actor: str | None = None,
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        table = self._table
        statement = select(table).where(table.c.id > after_id).order_by(table.c.id).limit(limit)
        if actor is not None:
            statement = statement.where(table.c.actor == actor)
        if since is not None:
            iso = since.astimezone(UTC).isoformat(timespec="microseconds")
            statement = statement.where(table.c.at >= iso)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [dict(row) for row in rows]

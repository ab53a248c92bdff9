"""The operator audit trail: who changed what, when, with which result.

Every state-changing management request (on a node or the registry) is one
row. The trail is separate from the exchange audit chain: it records the
operators' actions, not the data exchanges. The table is built per schema by
:func:`operator_log_table`, so the node and the registry each own theirs.

The trail is a hash chain of its own, with the audit log's rules: a row's
``entry_hash`` is ``SHA-256(prev_hash || 0x00 || canonical JSON of the
hashed fields)`` and ``prev_hash`` is the row before's (64 zeros for the
first), in ``seq`` order. ``change`` is what the request changed, as JSON
(``{"before": ..., "after": ...}`` where the handler says so, otherwise
``{"request": ...}``, what was asked). :meth:`OperatorLog.verify` checks the
chain; a deleted, edited, inserted or reordered row breaks it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
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
    UniqueConstraint,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from certs.jws import canonical_json
from member_registry.errors import RegistryError

__all__ = [
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "OperatorAction",
    "OperatorLog",
    "OperatorLogUnavailable",
    "OperatorTrailBroken",
    "chain_rows_written_before",
    "operator_log_table",
    "trail_hash",
]

GENESIS_HASH = "0" * 64

# Every column the entry hash covers (all but the database id and the hash itself).
HASHED_FIELDS = (
    "seq", "at", "actor", "role", "token_id", "method", "action", "target", "status",
    "result", "source", "change", "prev_hash",
)  # fmt: skip

# A change larger than this is kept as its digest (the trail is not a data store).
_MAX_CHANGE = 64 * 1024
_ATTEMPTS = 5


def trail_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    # RFC 8785: for these strings, integers and nulls, the bytes the trail was first hashed in.
    body = canonical_json(dict(fields))
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\x00")
    digest.update(body)
    return digest.hexdigest()


class OperatorLogUnavailable(RegistryError):
    """The operator trail cannot be written; the change is refused rather than unrecorded."""

    code = "management.operator_log_unavailable"


class OperatorTrailBroken(RegistryError):
    """The operator trail's chain is not intact at ``seq``."""

    code = "management.operator_log_broken"

    def __init__(self, seq: int | None, reason: str) -> None:
        super().__init__(f"row {seq}: {reason}" if seq is not None else reason)
        self.seq = seq


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
        # The chain (nullable only for rows written before it; the migration chains them).
        Column("seq", BigInteger, nullable=True),
        Column("change", Text, nullable=True),
        Column("prev_hash", String(64), nullable=True),
        Column("entry_hash", String(64), nullable=True),
        UniqueConstraint("seq", name=f"uq_{name}_seq"),
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
    change: Mapping[str, Any] | None = None  # {"before": ..., "after": ...} or {"request": ...}

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
            "change": _change_text(action.change),
        }
        try:
            for _ in range(_ATTEMPTS):
                try:
                    await self._append(values)
                    return
                except IntegrityError:
                    continue  # another process took the same seq: link to its row instead
        except (SQLAlchemyError, OSError) as exc:
            raise OperatorLogUnavailable("the operator trail cannot be written") from exc
        raise OperatorLogUnavailable("the operator trail is contended; the row was not written")

    async def _append(self, values: dict[str, Any]) -> None:
        table = self._table
        async with self._engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Writers of one trail take turns (SQLite's BEGIN IMMEDIATE does the same);
                # a row lock cannot, while the trail is still empty.
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(table.name)}
                )
            last = (
                await connection.execute(
                    select(table.c.seq, table.c.entry_hash)
                    .where(table.c.seq.is_not(None))
                    .order_by(table.c.seq.desc())
                    .limit(1)
                    .with_for_update()
                )
            ).first()
            seq = int(last[0]) + 1 if last is not None else 1
            prev = str(last[1]) if last is not None else GENESIS_HASH
            row = {**values, "seq": seq, "prev_hash": prev}
            row["entry_hash"] = trail_hash(prev, {name: row[name] for name in HASHED_FIELDS})
            await connection.execute(insert(table).values(**row))

    async def verify(self) -> int:
        """Check the whole chain; return the number of rows or raise OperatorTrailBroken."""
        table = self._table
        columns = [table.c[name] for name in (*HASHED_FIELDS, "entry_hash")]
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(select(*columns).order_by(table.c.seq, table.c.id))
            ).mappings().all()
        prev, count = GENESIS_HASH, 0
        for row in rows:
            seq = row["seq"]
            if seq != count + 1:
                raise OperatorTrailBroken(seq, f"sequence jumps from {count} to {seq}")
            if row["prev_hash"] != prev:
                raise OperatorTrailBroken(seq, "prev_hash does not match the row before")
            if trail_hash(prev, {name: row[name] for name in HASHED_FIELDS}) != row["entry_hash"]:
                raise OperatorTrailBroken(seq, "entry_hash does not match the row's contents")
            prev, count = row["entry_hash"], count + 1
        return count

    async def query(
        self,
        *,
        actor: str | None = None,
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        table = self._table
        order = table.c.id.desc() if newest_first else table.c.id
        statement = select(table).where(table.c.id > after_id).order_by(order).limit(limit)
        if actor is not None:
            statement = statement.where(table.c.actor == actor)
        if since is not None:
            iso = since.astimezone(UTC).isoformat(timespec="microseconds")
            statement = statement.where(table.c.at >= iso)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [dict(row) for row in rows]


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"operator-trail:{name}".encode()).digest()[:8],
                          "big", signed=True)


def _change_text(change: Mapping[str, Any] | None) -> str | None:
    if change is None:
        return None
    text = json.dumps(change, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    if len(text) <= _MAX_CHANGE:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return json.dumps({"omitted_bytes": len(text), "sha256": digest}, sort_keys=True)


def chain_rows_written_before(connection: Connection, table: str) -> None:
    """Chain the rows of ``table`` written before the trail was chained, in their order.

    For the migrations that add the chain (synchronous, inside Alembic's transaction).
    """
    columns = [name for name in HASHED_FIELDS if name not in ("seq", "change", "prev_hash")]
    rows = connection.execute(
        text(f"SELECT id, {', '.join(columns)} FROM {table} ORDER BY id")  # noqa: S608 - fixed names
    ).mappings().all()
    prev = GENESIS_HASH
    for seq, row in enumerate(rows, start=1):
        fields = {name: row[name] for name in columns}
        fields.update(seq=seq, change=None, prev_hash=prev)
        entry = trail_hash(prev, {name: fields[name] for name in HASHED_FIELDS})
        connection.execute(
            text(
                f"UPDATE {table} SET seq = :seq, prev_hash = :prev, entry_hash = :entry"  # noqa: S608
                " WHERE id = :id"
            ),
            {"seq": seq, "prev": prev, "entry": entry, "id": row["id"]},
        )
        prev = entry

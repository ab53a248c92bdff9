"""Reading a node's chain back and checking that it is intact."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.hashing import GENESIS_HASH, entry_hash
from gateway.audit.models import HASHED_FIELDS, ArchivedLeaf, AuditRow

__all__ = ["ChainBroken", "chain_start", "fetch_rows", "verify_chain"]

_COLUMNS = [*HASHED_FIELDS, "entry_hash"]


class ChainBroken(Exception):
    """The chain is not intact at ``seq``; the message says how."""

    code = "audit.chain_broken"

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"row {seq}: {reason}")
        self.seq = seq


def verify_chain(
    rows: Iterable[Mapping[str, Any]],
    *,
    start_hash: str = GENESIS_HASH,
    first_seq: int | None = None,
) -> int:
    """Check sequence, links and hashes of ``rows`` (in order); return the count.

    ``start_hash``/``first_seq``: where the rows start (after archived rows).
    """
    prev = start_hash
    expected_seq: int | None = first_seq
    count = 0
    for row in rows:
        seq = int(row["seq"])
        if expected_seq is not None and seq != expected_seq:
            raise ChainBroken(seq, f"sequence jumps from {expected_seq - 1} to {seq}")
        if row["prev_hash"] != prev:
            raise ChainBroken(seq, "prev_hash does not match the row before")
        try:
            computed = entry_hash(prev, {k: row[k] for k in HASHED_FIELDS})
        except ValueError as exc:  # a format no rule is known for, or a field of no type
            raise ChainBroken(seq, str(exc)) from exc
        if computed != row["entry_hash"]:
            raise ChainBroken(seq, "entry_hash does not match the row's contents")
        prev = row["entry_hash"]
        expected_seq = seq + 1
        count += 1
    return count


async def fetch_rows(
    engine: AsyncEngine,
    node_id: str,
    *,
    message_id: str | None = None,
    after_seq: int = 0,
    limit: int | None = None,
) -> Sequence[dict[str, Any]]:
    """Rows of ``node_id``'s chain in sequence order, optionally for one message."""
    columns = [getattr(AuditRow, name) for name in _COLUMNS]
    query = (
        select(*columns)
        .where(AuditRow.node_id == node_id, AuditRow.seq > after_seq)
        .order_by(AuditRow.seq)
    )
    if message_id is not None:
        query = query.where(AuditRow.message_id == message_id)
    if limit is not None:
        query = query.limit(limit)
    async with engine.connect() as conn:
        result = await conn.execute(query)
        return [dict(row._mapping) for row in result]


async def chain_start(engine: AsyncEngine, node_id: str) -> tuple[int, str]:
    """The first live seq and the hash it links to (after any archived rows)."""
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                select(ArchivedLeaf.seq, ArchivedLeaf.entry_hash)
                .where(ArchivedLeaf.node_id == node_id)
                .order_by(ArchivedLeaf.seq.desc())
                .limit(1)
            )
        ).first()
    if found is None:
        return 1, GENESIS_HASH
    return int(found[0]) + 1, str(found[1])

"""The auditor's pages (read-only): exchange search, one exchange, chain and checkpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from gateway.audit.chain import ChainBroken, chain_start, fetch_rows, verify_chain
from gateway.audit.models import CheckpointRow
from gateway.audit.queries import query_rows
from gateway.console.render import page
from gateway.console.security import Refused, require
from gateway.console.state import CONSOLE

__all__ = ["add_audit_routes", "search_filters"]

READERS = ("auditor", "admin")
PAGE_ROWS = 200
TEXT_FILTERS = ("client", "service", "subject", "message_id", "error_code")


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    # A browser's datetime-local has no zone: the console shows and reads UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def search_filters(query: Any) -> dict[str, Any]:
    """The search form's fields as query_rows arguments; blank fields are no filter."""
    filters: dict[str, Any] = {}
    for name in TEXT_FILTERS:
        value = str(query.get(name, "")).strip()
        if value:
            filters[name] = value[:1100]
    try:
        if query.get("status", "").strip():
            filters["status"] = int(query["status"])
            if not 100 <= filters["status"] <= 599:
                raise ValueError("status")
        for field, name in (("from", "since"), ("to", "until")):
            if query.get(field, "").strip():
                filters[name] = _moment(query[field].strip())
    except ValueError as exc:
        raise Refused(400, "console.bad_filter") from exc
    return filters


def _decision(row: dict[str, Any]) -> dict[str, Any] | None:
    try:
        value = json.loads(row["consent"]) if row.get("consent") else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def add_audit_routes(app: web.Application) -> None:
    async def search(request: web.Request) -> web.Response:
        require(request, *READERS)
        ctx = request.app[CONSOLE].ctx
        filters = search_filters(request.query)
        rows = await query_rows(
            ctx.engine, ctx.node_id, limit=PAGE_ROWS, newest_first=True, **filters
        )
        names = (*TEXT_FILTERS, "status", "from", "to")
        form = {name: request.query.get(name, "") for name in names}
        return page(request, "audit_search.html", {"rows": rows, "form": form})

    async def detail(request: web.Request) -> web.Response:
        require(request, *READERS)
        ctx = request.app[CONSOLE].ctx
        try:
            seq = int(request.match_info["seq"])
            if not 1 <= seq < 2**63:
                raise ValueError(seq)
        except ValueError as exc:
            raise Refused(404, "console.not_found") from exc
        rows = await query_rows(ctx.engine, ctx.node_id, after_seq=seq - 1, limit=1)
        if not rows or rows[0]["seq"] != seq:
            raise Refused(404, "console.not_found")
        row = rows[0]
        return page(request, "audit_detail.html", {"row": row, "decision": _decision(row)})

    async def chain(request: web.Request) -> web.Response:
        require(request, *READERS)
        ctx = request.app[CONSOLE].ctx
        first_seq, start_hash = await chain_start(ctx.engine, ctx.node_id)
        rows = await fetch_rows(ctx.engine, ctx.node_id)
        try:
            count = verify_chain(rows, start_hash=start_hash, first_seq=first_seq)
            verdict: dict[str, Any] = {"ok": True, "rows": count}
        except ChainBroken as exc:
            verdict = {"ok": False, "seq": exc.seq, "error": str(exc)}
        async with ctx.engine.connect() as conn:
            result = await conn.execute(
                select(
                    CheckpointRow.tree_size, CheckpointRow.root_hash, CheckpointRow.created_at,
                    CheckpointRow.timestamp_token, CheckpointRow.cosignature,
                )
                .where(CheckpointRow.node_id == ctx.node_id)
                .order_by(CheckpointRow.tree_size.desc())
                .limit(50)
            )
            checkpoints = [
                {
                    "tree_size": r.tree_size, "root": r.root_hash, "created_at": r.created_at,
                    "timestamped": r.timestamp_token is not None,
                    "cosigned": bool(r.cosignature),
                }
                for r in result
            ]  # fmt: skip
        return page(request, "audit_chain.html", {"verdict": verdict, "checkpoints": checkpoints})

    app.router.add_get("/audit", search)
    app.router.add_get("/audit/rows/{seq}", detail)
    app.router.add_get("/audit/chain", chain)

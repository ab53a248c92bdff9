"""The auditor's read-only API on the management port (role ``auditor``)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from gateway.audit.chain import ChainBroken, fetch_rows, verify_chain
from gateway.context import NodeContext

__all__ = ["add_audit_routes"]

RoleCheck = Callable[..., None]


def add_audit_routes(app: web.Application, ctx: NodeContext, require_role: RoleCheck) -> None:
    async def audit_rows(request: web.Request) -> web.Response:
        require_role(request, "auditor", "admin")
        message_id = request.query.get("message_id")
        try:
            after = int(request.query.get("after_seq", "0"))
            limit = min(int(request.query.get("limit", "1000")), 10000)
        except ValueError as exc:
            raise web.HTTPBadRequest(text="after_seq and limit must be integers") from exc
        rows = await fetch_rows(
            ctx.engine, ctx.node_id, message_id=message_id, after_seq=after, limit=limit
        )
        return web.json_response({"node": ctx.node_id, "rows": list(rows)})

    async def audit_verify(request: web.Request) -> web.Response:
        require_role(request, "auditor", "admin")
        rows = await fetch_rows(ctx.engine, ctx.node_id)
        try:
            count = verify_chain(rows)
        except ChainBroken as exc:
            return web.json_response({"ok": False, "seq": exc.seq, "error": str(exc)}, status=409)
        return web.json_response({"ok": True, "rows": count})

    app.router.add_get("/api/audit/rows", audit_rows)
    app.router.add_get("/api/audit/verify", audit_verify)

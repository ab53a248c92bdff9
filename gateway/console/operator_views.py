"""The operator's pages (role ``admin``): the node at a glance, maintenance, the trail."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.app import readiness
from gateway.console.render import page, redirect
from gateway.console.security import require
from gateway.console.state import CONSOLE

__all__ = ["add_operator_routes"]


def add_operator_routes(app: web.Application) -> None:
    async def overview(request: web.Request) -> web.Response:
        require(request, "admin")
        console = request.app[CONSOLE]
        ctx = console.ctx
        now = ctx.clock()
        conf = ctx.conf.latest()
        certificates: list[dict[str, Any]] = [
            {"name": "auth", "subject": ctx.auth_certificate.subject.rfc4514_string(),
             "not_after": ctx.auth_certificate.not_valid_after_utc}
        ]  # fmt: skip
        for member, signer in ctx.signers.items():
            leaf = signer.chain[0]
            certificates.append({"name": f"sign:{member}", "subject": leaf.subject.rfc4514_string(),
                                 "not_after": leaf.not_valid_after_utc})  # fmt: skip
        checks = readiness(ctx, now)
        try:
            async with ctx.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
            checks["database"] = {"ok": True}
        except Exception as exc:  # any driver failure is "database down" here
            checks["database"] = {"ok": False, "error": exc.__class__.__name__}
        # Readiness names OCSP states "ocsp:auth" and "ocsp:<member>" (the sign certificate).
        ocsp = {name[5:]: state for name, state in checks.items() if name.startswith("ocsp:")}
        for certificate in certificates:
            certificate["ocsp"] = ocsp.get(certificate["name"].removeprefix("sign:"))
        return page(request, "overview.html", {
            "node": ctx.node_id, "conf": conf, "certificates": certificates,
            "checks": checks, "timestamping": checks["timestamping"],
            "ready": all(isinstance(c, dict) and c.get("ok") for c in checks.values()),
            "maintenance": console.maintenance.to_json(), "now": now,
        })  # fmt: skip

    async def maintenance(request: web.Request) -> web.Response:
        session = require(request, "admin")
        console = request.app[CONSOLE]
        form = await request.post()
        enabled = form.get("enabled") == "true"
        reason = str(form.get("reason", ""))[:255]
        before = console.maintenance.to_json()
        console.maintenance.set(enabled, now=console.ctx.clock(), reason=reason)
        await console.record(
            request, actor=session.subject, role="admin", action="console maintenance",
            status=303, change={"before": before, "after": console.maintenance.to_json()},
        )  # fmt: skip
        return redirect("/console/overview")

    async def trail(request: web.Request) -> web.Response:
        require(request, "admin")
        console = request.app[CONSOLE]
        entries = await console.trail.query(limit=200, newest_first=True)
        return page(request, "trail.html", {"entries": entries})

    app.router.add_get("/overview", overview)
    app.router.add_post("/maintenance", maintenance)
    app.router.add_get("/trail", trail)

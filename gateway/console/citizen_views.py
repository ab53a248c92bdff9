"""The citizen page: one data subject's accesses and consents, and revoking a consent.

The subject is the session's, set from a signed link at entry; no route takes a
subject from the request, and a consent of anyone else is "not found".
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.audit.queries import subject_rows
from gateway.auditor.subject import subject_report
from gateway.console.links import CITIZEN_ROLE
from gateway.console.render import page, redirect
from gateway.console.security import Refused, require
from gateway.console.state import CONSOLE
from gateway.context import NodeContext
from gateway.policy_api import consent_json
from policies.errors import ConsentNotFound, PolicyError

__all__ = ["add_citizen_routes", "organisation_name"]


def organisation_name(ctx: NodeContext, client: str | None) -> str:
    """The words a resident reads for a client id: its member's and subsystem's names."""
    if not client:
        return ""
    conf = ctx.conf.latest()
    if conf is not None:  # without a configuration the id is all there is
        for member in conf.members:
            for subsystem in member.subsystems:
                if str(subsystem) == client:
                    part = member.subsystem_names.get(subsystem)
                    return f"{member.name} ({part})" if part else member.name
            if str(member.id) == client:
                return member.name
    return client


def add_citizen_routes(app: web.Application) -> None:
    async def overview(request: web.Request) -> web.Response:
        session = require(request, CITIZEN_ROLE)
        ctx = request.app[CONSOLE].ctx
        now = ctx.clock()
        rows, hidden = await subject_rows(ctx.engine, ctx.node_id, session.subject)
        entries = subject_report(rows, session.subject, now=now, hidden_until=hidden)
        purposes = {(str(p.consumer), p.code): p.text for p in await ctx.policy.list_purposes()}
        accesses: list[dict[str, Any]] = [
            {
                "when": e.when, "organisation": organisation_name(ctx, e.consumer),
                "purpose": purposes.get((e.consumer or "", e.purpose or ""), e.purpose or ""),
                "released": e.released, "withheld": e.withheld, "outcome": e.outcome,
                "break_glass": bool(e.break_glass),
            }
            for e in reversed(entries)
        ]  # fmt: skip
        consents = [
            {**consent_json(c), "organisation": organisation_name(ctx, str(c.consumer)),
             "purpose_text": purposes.get((str(c.consumer), c.purpose), c.purpose),
             "active": c.revoked_at is None and (c.valid_until is None or c.valid_until > now)}
            for c in await ctx.policy.list_consents(
                subject=session.subject, include_inactive=True, now=now)
        ]  # fmt: skip
        return page(request, "citizen.html", {"accesses": accesses, "consents": consents})

    async def revoke(request: web.Request) -> web.Response:
        session = require(request, CITIZEN_ROLE)
        console = request.app[CONSOLE]
        ctx = console.ctx
        try:
            consent = await ctx.policy.consent(request.match_info["consent_id"])
        except (ConsentNotFound, PolicyError, ValueError) as exc:
            raise Refused(404, "console.not_found") from exc
        if consent.subject != session.subject:  # someone else's: as if it did not exist
            raise Refused(404, "console.not_found")
        before = consent_json(consent)
        revoked = await ctx.policy.revoke_consent(consent.id, ctx.clock())
        await console.record(
            request, actor="citizen", role=CITIZEN_ROLE, action="console revoke consent",
            status=303, change={"before": before, "after": consent_json(revoked)},
        )  # fmt: skip
        return redirect("/console/citizen")

    app.router.add_get("/citizen", overview)
    app.router.add_post("/citizen/consents/{consent_id}/revoke", revoke)

"""The consent desk (role ``consent``; ``admin`` too): find, grant and revoke consents,
and hand a resident the link to their page.

Grants go through the same validation as the API (``grant_checked_consent``):
existing consumers, declared purposes, declared fields only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web

from certs.identifiers import IdentifierError
from gateway.console.links import CitizenLinkInvalid
from gateway.console.render import page, redirect
from gateway.console.security import Refused, require
from gateway.console.state import CONSOLE
from gateway.errors import GlobalConfOutdated
from gateway.policy_api import consent_json, grant_checked_consent
from policies.errors import ConsentNotFound, PolicyError

__all__ = ["LINK_TTL", "add_desk_routes"]

DESK = ("consent", "admin")
LINK_TTL = timedelta(days=7)


async def _desk_page(
    request: web.Request, subject: str, *, error: str = "", link: str = "", status: int = 200
) -> web.Response:
    ctx = request.app[CONSOLE].ctx
    consents: list[dict[str, Any]] = []
    if subject:
        found = await ctx.policy.list_consents(subject=subject, include_inactive=True,
                                               now=ctx.clock())  # fmt: skip
        consents = [{**consent_json(c), "active": c.is_active(ctx.clock())} for c in found]
    services = [str(d.service) for d in await ctx.policy.list_services()]
    purposes = [(str(p.consumer), p.code, p.text) for p in await ctx.policy.list_purposes()]
    return page(request, "desk.html", {
        "subject": subject, "consents": consents, "services": services, "purposes": purposes,
        "error": error, "link": link,
    }, status=status)  # fmt: skip


def add_desk_routes(app: web.Application) -> None:
    async def desk(request: web.Request) -> web.Response:
        require(request, *DESK)
        return await _desk_page(request, request.query.get("subject", "").strip()[:255])

    async def grant(request: web.Request) -> web.Response:
        session = require(request, *DESK)
        console = request.app[CONSOLE]
        form = await request.post()
        subject = str(form.get("subject", "")).strip()
        body = {
            "subject": subject, "consumer": str(form.get("consumer", "")).strip(),
            "service": str(form.get("service", "")).strip(),
            "purpose": str(form.get("purpose", "")).strip(),
            "fields": [f.strip() for f in str(form.get("fields", "")).split(",") if f.strip()],
        }  # fmt: skip
        if not subject:
            return await _desk_page(request, subject, error="subject: required", status=400)
        try:
            consent, _ = await grant_checked_consent(console.ctx, body)
        except (PolicyError, IdentifierError, GlobalConfOutdated) as exc:
            return await _desk_page(request, subject, error=str(exc), status=400)
        await console.record(
            request, actor=session.subject, role=session.role or "", action="console grant consent",
            status=303, change={"before": None, "after": consent_json(consent)},
        )  # fmt: skip
        return redirect(f"/console/consents?subject={_quote(subject)}")

    async def revoke(request: web.Request) -> web.Response:
        session = require(request, *DESK)
        console = request.app[CONSOLE]
        ctx = console.ctx
        try:
            consent = await ctx.policy.consent(request.match_info["consent_id"])
        except ConsentNotFound as exc:
            raise Refused(404, "console.not_found") from exc
        revoked = await ctx.policy.revoke_consent(consent.id, ctx.clock())
        await console.record(
            request, actor=session.subject, role=session.role or "",
            action="console revoke consent", status=303,
            change={"before": consent_json(consent), "after": consent_json(revoked)},
        )  # fmt: skip
        return redirect(f"/console/consents?subject={_quote(consent.subject)}")

    async def issue_link(request: web.Request) -> web.Response:
        session = require(request, *DESK)
        console = request.app[CONSOLE]
        form = await request.post()
        subject = str(form.get("subject", "")).strip()
        try:
            token, claims = console.links.issue(subject, now=console.ctx.clock(), ttl=LINK_TTL)
        except CitizenLinkInvalid as exc:
            return await _desk_page(request, subject, error=str(exc), status=400)
        await console.record(
            request, actor=session.subject, role=session.role or "",
            action="console citizen link", status=200,
            change={"before": None, "after": {"subject": subject, "link_id": claims.token_id,
                                              "expires_at": claims.expires_at.isoformat()}},
        )  # fmt: skip
        link = f"{request.scheme}://{request.host}/console/citizen/enter?t={token}"
        return await _desk_page(request, subject, link=link)

    app.router.add_get("/consents", desk)
    app.router.add_post("/consents", grant)
    app.router.add_post("/consents/{consent_id}/revoke", revoke)
    app.router.add_post("/consents/link", issue_link)


def _quote(text: str) -> str:
    return quote(text, safe="")

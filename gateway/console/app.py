"""The console application, mounted on a node's management port under ``/console/``.

Also adds ``POST /api/citizen-links`` (roles ``consent`` and ``admin``) to the
management API: the consent desk's way to hand a resident their page.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web

from gateway.app import CONTEXT, TOKENS, require_role
from gateway.console.audit_views import add_audit_routes
from gateway.console.auth_views import add_auth_routes
from gateway.console.citizen_views import add_citizen_routes
from gateway.console.desk_views import add_desk_routes
from gateway.console.links import MAX_LINK_TTL, CitizenLinkInvalid, CitizenLinks
from gateway.console.operator_views import add_operator_routes
from gateway.console.render import page, setup_templates
from gateway.console.security import (
    STORE,
    Handler,
    Refused,
    security_headers,
    sessions_and_csrf,
)
from gateway.console.sessions import SessionStore
from gateway.console.state import CONSOLE, Console
from gateway.maintenance import Maintenance
from gateway.operator_log import NODE_OPERATOR_LOG, note_change
from member_registry.operator_log import OperatorLog

__all__ = ["DEFAULT_LINK_TTL", "console_app", "install_console"]

DEFAULT_LINK_TTL = timedelta(days=7)
_STATIC = Path(__file__).parent / "static"


@web.middleware
async def _error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as exc:
        return page(request, "error.html", {"code": exc.code}, status=exc.status)


def console_app(console: Console, sessions: SessionStore | None = None) -> web.Application:
    # Order: headers on everything, error pages for every refusal, then sessions and CSRF.
    app = web.Application(middlewares=[
        security_headers, _error_pages, sessions_and_csrf(console.ctx.clock),
    ])  # fmt: skip
    app[CONSOLE] = console
    app[STORE] = sessions or SessionStore()
    setup_templates(app)
    add_auth_routes(app)
    add_audit_routes(app)
    add_operator_routes(app)
    add_citizen_routes(app)
    add_desk_routes(app)
    app.router.add_static("/static/", _STATIC)

    async def not_found(request: web.Request) -> web.Response:
        raise Refused(404, "console.not_found")

    # Last: any other path under /console/ gets the console's own page, not JSON.
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def install_console(
    management: web.Application, *, maintenance: Maintenance, links: CitizenLinks,
    sessions: SessionStore | None = None,
) -> None:  # fmt: skip
    """Mount the console and the citizen-link API on a node's management application."""
    ctx = management[CONTEXT]
    console = Console(
        ctx=ctx, tokens=management[TOKENS], links=links, maintenance=maintenance,
        trail=OperatorLog(ctx.engine, NODE_OPERATOR_LOG),
    )  # fmt: skip

    async def issue_link(request: web.Request) -> web.Response:
        require_role(request, "consent", "admin")
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("not an object")
            subject = body["subject"]
            ttl_s = body.get("ttl_s", int(DEFAULT_LINK_TTL.total_seconds()))
            if not isinstance(subject, str) or isinstance(ttl_s, bool) or not isinstance(
                ttl_s, int
            ):
                raise ValueError("types")
            token, claims = links.issue(subject, now=ctx.clock(), ttl=timedelta(seconds=ttl_s))
        except (ValueError, KeyError, CitizenLinkInvalid):
            return web.json_response(
                {"type": "client.bad_request",
                 "message": 'the body must be {"subject": "...", "ttl_s": 1..'
                            f'{int(MAX_LINK_TTL.total_seconds())}}}'},
                status=400,
            )  # fmt: skip
        # The trail keeps who was handed a link and until when, never the link itself.
        note_change(request, before=None, after={
            "subject": subject, "expires_at": claims.expires_at.isoformat(),
            "link_id": claims.token_id,
        })  # fmt: skip
        return web.json_response(
            {"path": f"/console/citizen/enter?t={token}", "token": token,
             "subject": subject, "expires_at": claims.expires_at.isoformat()},
            status=201,
        )  # fmt: skip

    management.router.add_post("/api/citizen-links", issue_link)
    management.add_subapp("/console/", console_app(console, sessions))

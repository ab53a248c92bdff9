"""Application factories for a node's three ports: client, peer and management."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.audit.api import add_audit_routes
from gateway.broker.api import add_ngsi_ld_routes
from gateway.broker.legs import DEADLINE_S, relay_remote
from gateway.client_api import add_client_routes
from gateway.client_port import client_auth_middleware
from gateway.consumer import handle_client_request
from gateway.context import NodeContext
from gateway.errors import AuditChainMismatch, GatewayError, GlobalConfOutdated
from gateway.policy_api import add_policy_routes
from gateway.provider import handle_peer_request
from gateway.refusals import audit_sink
from gateway.rejections import MANAGEMENT_BEARER
from gateway.responses import error_response
from gateway.services_api import add_service_routes
from gateway.tokens import TokenError, TokenIssuer

__all__ = ["CONTEXT", "TOKENS", "client_app", "management_app", "peer_app"]

log = structlog.get_logger(__name__)

CONTEXT = web.AppKey("context", NodeContext)
TOKENS = web.AppKey("tokens", TokenIssuer)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Last line of defence: no stack trace ever reaches a client."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except GatewayError as exc:
        accept = request.headers.get("Accept")
        return error_response(exc.code, exc.message, exc.status, accept=accept)
    except Exception:
        detail = str(uuid.uuid4())
        log.exception("internal_error", detail=detail)
        return error_response(
            "server.clientproxy.internal_error",
            "internal error; quote the detail id to the node's operator",
            500,
            detail=detail,
        )


def _chain_intact(ctx: NodeContext) -> Middleware:
    """No exchange on a chain that disagrees with its witness (gateway/audit/integrity.py)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not ctx.chain_check.ok:
            error = AuditChainMismatch(ctx.chain_check.reason)
            return error_response(
                error.code, error.message, error.status, accept=request.headers.get("Accept")
            )
        return await handler(request)

    return check


def client_app(ctx: NodeContext) -> web.Application:
    # Who is calling is proven before any handler runs (gateway/client_port.py).
    app = web.Application(
        middlewares=[
            _errors, _chain_intact(ctx), client_auth_middleware(ctx, audit_sink(ctx, "client"))
        ],
        client_max_size=ctx.settings.max_body_bytes,
    )
    app[CONTEXT] = ctx

    async def exchange(request: web.Request) -> web.StreamResponse:
        return await handle_client_request(ctx, request)

    app.router.add_route("*", "/r1/{tail:.*}", exchange)
    if ctx.ngsi_ld is not None:
        # Reads by this node's clients also reach the providers' NGSI-LD services.
        remote = relay_remote(ctx, deadline_s=min(DEADLINE_S, ctx.settings.peer_timeout_s))
        add_ngsi_ld_routes(app, ctx, ctx.ngsi_ld.with_remote(remote))
    return app


def peer_app(ctx: NodeContext) -> web.Application:
    app = web.Application(
        middlewares=[_errors, _chain_intact(ctx)], client_max_size=ctx.settings.max_body_bytes
    )
    app[CONTEXT] = ctx

    async def exchange(request: web.Request) -> web.StreamResponse:
        return await handle_peer_request(ctx, request)

    app.router.add_route("*", "/r1/{tail:.*}", exchange)
    return app


def require_role(request: web.Request, *roles: str) -> None:
    tokens = request.app[TOKENS]
    ctx = request.app[CONTEXT]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise web.HTTPUnauthorized(
            text='{"type": "management.unauthorized", "message": "bearer token required"}',
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        claims = tokens.verify(token.strip(), now=ctx.clock())
    except TokenError as exc:
        ctx.rejections.record(
            MANAGEMENT_BEARER, exc.reason, remote=request.remote, path=request.path[:256]
        )
        raise web.HTTPUnauthorized(
            text=f'{{"type": "{exc.code}", "message": "invalid bearer token"}}',
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc
    if claims.role not in roles:
        raise web.HTTPForbidden(
            text='{"type": "management.forbidden", "message": "role not allowed"}',
            content_type="application/json",
        )


def readiness(ctx: NodeContext, now: datetime) -> dict[str, object]:
    checks: dict[str, object] = {}
    try:
        conf = ctx.conf.current(now)
        checks["global_conf"] = {"ok": True, "version": conf.version}
    except GlobalConfOutdated as exc:
        checks["global_conf"] = {"ok": False, "error": exc.message}
    cert_ok = ctx.auth_certificate.not_valid_after_utc > now
    checks["auth_certificate"] = {"ok": cert_ok}
    checks["timestamping"] = ctx.timestamping(now)
    checks["audit_chain"] = ctx.chain_check.to_json()
    for name, state in ctx.certificate_status().readiness(now=now).items():
        checks[f"ocsp:{name}"] = state
    return checks


def management_app(ctx: NodeContext, tokens: TokenIssuer) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[CONTEXT] = ctx
    app[TOKENS] = tokens

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "node": ctx.node_id})

    async def readyz(_: web.Request) -> web.Response:
        checks = readiness(ctx, ctx.clock())
        try:
            async with ctx.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
            checks["database"] = {"ok": True}
        except Exception as exc:
            checks["database"] = {"ok": False, "error": exc.__class__.__name__}
        ready = all(isinstance(c, dict) and c.get("ok") for c in checks.values())
        return web.json_response(
            {"ready": ready, "checks": checks}, status=200 if ready else 503
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    add_audit_routes(app, ctx, require_role)
    add_policy_routes(app, ctx, require_role)
    add_service_routes(app, ctx, require_role)
    add_client_routes(app, ctx, require_role)
    return app

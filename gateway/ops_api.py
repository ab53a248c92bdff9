"""Operations on a node's ports: metrics, maintenance, operator trail, rate limits, OpenAPI.

:func:`install_ops` adds these to the applications the node already built,
before they start: a metrics middleware on the client and peer ports, and on
the management port ``/metrics``, ``/openapi.json``, ``/api/maintenance`` and
``/api/operator-log``, a per-token rate limit and the operator trail of every
state-changing request. ``/readyz`` answers 503 while in maintenance. The
client port gets the ``/listClients`` metaservice (gateway/list_clients.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from gateway.app import CONTEXT, TOKENS, require_role
from gateway.context import NodeContext
from gateway.list_clients import list_clients, list_clients_xml, wants_json
from gateway.maintenance import Maintenance
from gateway.metrics import (
    CONTENT_TYPE,
    NodeMetrics,
    StageTimer,
    client_label,
    service_label,
    timing_stages,
)
from gateway.openapi import node_openapi
from gateway.operator_log import (
    CHANGE,
    NODE_OPERATOR_LOG,
    OperatorAction,
    OperatorLog,
    note_change,
)
from gateway.settings import NodeSettings
from gateway.tokens import TokenClaims, TokenError
from member_registry.operator_log import OperatorLogUnavailable, OperatorTrailBroken
from member_registry.ops_api import json_errors_middleware
from member_registry.ratelimit import RateLimiter

__all__ = ["NodeOps", "install_ops"]

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class NodeOps:
    """The operations state of one node process."""

    metrics: NodeMetrics = field(default_factory=NodeMetrics)
    maintenance: Maintenance = field(default_factory=Maintenance)
    limiter: RateLimiter = field(default_factory=RateLimiter)

    @classmethod
    def from_settings(cls, settings: NodeSettings) -> NodeOps:
        return cls(limiter=RateLimiter(rate=settings.management_rate_limit_per_s,
                                       burst=settings.management_rate_limit_burst))


_OPS = web.AppKey("node_ops", NodeOps)


def _problem(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"type": code, "message": message}, status=status, headers=headers)


# aiohttp's own refusals (unknown route, wrong method, ...) are text/plain; the
# management API answers every error as a Problem document instead.
_HTTP_CODES = {
    400: "client.bad_request",
    404: "management.not_found",
    405: "management.method_not_allowed",
    413: "client.body_too_large",
    415: "management.unsupported_media_type",
}


_json_errors = json_errors_middleware(_HTTP_CODES, "management.error")


def _exchange_metrics(ops: NodeOps, role: str) -> Any:
    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        ops.maintenance.enter(role)
        ops.metrics.in_flight.labels(role).inc()
        status, error = 500, "server.internal"
        try:
            with timing_stages(StageTimer(ops.metrics, role)):
                response = await handler(request)
            status, error = response.status, response.headers.get("X-Road-Error", "")
            return response
        except web.HTTPException as exc:
            status, error = exc.status, ""
            raise
        finally:
            ops.maintenance.leave(role)
            ops.metrics.in_flight.labels(role).dec()
            ops.metrics.observe_exchange(
                role=role,
                client=client_label(request.headers.get("X-Road-Client")),
                service=service_label(request.raw_path),
                status=status,
                error=error[:128],
                seconds=time.perf_counter() - started,
            )

    return measure


def _claims(request: web.Request) -> TokenClaims | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return request.app[TOKENS].verify(token.strip(), now=request.app[CONTEXT].clock())
    except TokenError:
        return None


async def _asked(request: web.Request) -> dict[str, Any] | None:
    """What a request asked for, when its handler did not say what changed."""
    try:
        raw = await request.read()
    except (web.HTTPException, OSError, RuntimeError):
        return None
    if not raw:
        return {"request": None}
    try:
        return {"request": json.loads(raw)}
    except ValueError:
        return {"request": raw[:4096].decode("utf-8", "replace")}


def _limit_key(request: web.Request, claims: TokenClaims | None) -> str:
    if claims is not None:
        return f"jti:{claims.token_id}"
    presented = request.headers.get("Authorization", "")
    if presented:
        return "raw:" + hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()[:32]
    return f"addr:{request.remote}"


def install_ops(
    ctx: NodeContext,
    ops: NodeOps,
    *,
    client: web.Application,
    peer: web.Application,
    management: web.Application,
) -> None:
    client.middlewares.insert(0, _exchange_metrics(ops, "client"))
    peer.middlewares.insert(0, _exchange_metrics(ops, "peer"))
    management[_OPS] = ops
    ops.metrics.watch_rejections(ctx.rejections.counts)
    trail = OperatorLog(ctx.engine, NODE_OPERATOR_LOG)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/readyz" and ops.maintenance.enabled:
            return web.json_response(
                {
                    "ready": False,
                    "checks": {"maintenance": {"ok": False, **ops.maintenance.to_json()}},
                },
                status=503,
            )
        if not request.path.startswith("/api/"):
            return await handler(request)
        claims = _claims(request)
        wait = ops.limiter.acquire(_limit_key(request, claims), time.monotonic())
        if wait > 0:
            return _problem(
                429,
                "management.rate_limited",
                "too many requests for this token",
                **{"Retry-After": RateLimiter.retry_after(wait)},
            )
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return await handler(request)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            resource = request.match_info.route.resource
            try:
                await trail.record(
                    OperatorAction(
                        at=ctx.clock(),
                        actor=claims.subject if claims is not None else "anonymous",
                        role=claims.role if claims is not None else "none",
                        token_id=claims.token_id if claims is not None else None,
                        method=request.method,
                        action=resource.canonical if resource is not None else "unrouted",
                        target=request.path,
                        status=status,
                        source=request.remote,
                        change=request.get(CHANGE) or await _asked(request),
                    )
                )
            except OperatorLogUnavailable:
                # The change is done; losing its trail row is an operator-visible fault.
                log.error("operator_log_unavailable", action=request.method, path=request.path)

    management.middlewares.insert(0, guard)
    management.middlewares.insert(0, _json_errors)

    async def metrics(_: web.Request) -> web.Response:
        now = ctx.clock()
        conf = ctx.conf.latest()
        certificates = {"auth": ctx.auth_certificate.not_valid_after_utc}
        for member, signer in ctx.signers.items():
            certificates[f"sign:{member}"] = signer.chain[0].not_valid_after_utc
        status_service = getattr(ctx, "status", None)
        ages = status_service.ocsp_ages(now=now) if status_service is not None else {}
        ops.metrics.refresh(
            now=now,
            audit_queue=ctx.audit.queue_depth,
            conf_generated_at=conf.generated_at if conf is not None else None,
            conf_version=conf.version if conf is not None else None,
            certificates=certificates,
            ocsp_ages=ages,
            maintenance=ops.maintenance.enabled,
        )
        return web.Response(body=ops.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(node_openapi())

    async def get_maintenance(request: web.Request) -> web.Response:
        require_role(request, "admin", "auditor")
        return web.json_response(ops.maintenance.to_json())

    async def put_maintenance(request: web.Request) -> web.Response:
        require_role(request, "admin")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            return _problem(400, "client.bad_request", 'the body must be {"enabled": true|false}')
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            return _problem(400, "client.bad_request", "reason must be a string")
        before = ops.maintenance.to_json()
        ops.maintenance.set(body["enabled"], now=ctx.clock(), reason=reason[:255])
        note_change(request, before=before, after=ops.maintenance.to_json())
        return web.json_response(ops.maintenance.to_json())

    async def operator_log(request: web.Request) -> web.Response:
        require_role(request, "admin")
        try:
            after = int(request.query.get("after_id", "0"))
            if not 0 <= after < 2**63:  # a database integer; beyond it the driver fails
                raise ValueError("after_id out of range")
            limit = max(1, min(int(request.query.get("limit", "100")), 1000))
            since_text = request.query.get("since")
            since = (
                datetime.fromisoformat(since_text.replace("Z", "+00:00")) if since_text else None
            )
        except ValueError:
            return _problem(400, "client.bad_request", "after_id/limit: integers; since: RFC 3339")
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        rows = await trail.query(
            actor=request.query.get("actor"), since=since, after_id=after, limit=limit
        )
        return web.json_response({"entries": rows})

    async def verify_operator_log(request: web.Request) -> web.Response:
        require_role(request, "admin", "auditor")
        try:
            count = await trail.verify()
        except OperatorTrailBroken as exc:
            return web.json_response(
                {"ok": False, "seq": exc.seq, "error": exc.message}, status=409
            )
        return web.json_response({"ok": True, "entries": count})

    async def list_clients_route(request: web.Request) -> web.Response:
        # Answered by this node from the global configuration (PR-META §2, PR-MREST §2).
        conf = ctx.conf.current(ctx.clock())
        instance = request.query.get("xRoadInstance", "").strip() or None
        if wants_json(request.headers.getall("Accept", [])):
            return web.json_response(list_clients(conf, instance))
        return web.Response(
            body=list_clients_xml(conf, instance), content_type="text/xml", charset="utf-8"
        )

    client.router.add_get("/listClients", list_clients_route)
    management.router.add_get("/metrics", metrics)
    management.router.add_get("/openapi.json", openapi)
    management.router.add_get("/api/maintenance", get_maintenance)
    management.router.add_put("/api/maintenance", put_maintenance)
    management.router.add_get("/api/operator-log", operator_log)
    management.router.add_get("/api/operator-log/verify", verify_operator_log)

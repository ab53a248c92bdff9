"""Operations routes of the registry: OpenAPI, API catalogue, operator trail, rate limits.

Added to the application built by ``member_registry.api.create_app``. The
catalogue is public to read; publishing is authenticated by the publishing
node's auth-certificate signature (see ``member_registry.catalogue``). ``/api/``
takes the static admin token (bootstrap) or a bearer JWT signed by the registry's
token key (:func:`authenticate`; role ``admin`` for everything, ``auditor`` for
reading). Every state-changing ``/api/`` request, refused ones included, is written
to the operator trail with the token's subject; an admin reads it at
``GET /api/operator-log``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Middleware

from certs.errors import CertsError
from certs.identifiers import IdentifierError, ServiceId
from member_registry.catalogue import (
    Catalogue,
    CatalogueEntry,
    CatalogueRefused,
    catalogue_table,
    verify_publication,
)
from member_registry.dcat import catalogue_graph, jsonld_context
from member_registry.errors import (
    AlreadyExists,
    ConfigurationError,
    NotFound,
    RoleRefused,
    TokenInvalid,
    ValidationError,
)
from member_registry.metrics import CONTENT_TYPE, RegistryMetrics
from member_registry.models import metadata
from member_registry.openapi import registry_openapi
from member_registry.operator_log import OperatorAction, OperatorLog, operator_log_table
from member_registry.ratelimit import RateLimiter
from member_registry.service import RegistryService
from member_registry.settings import RegistrySettings
from member_registry.tokens import BearerTokens, registry_tokens

__all__ = [
    "CATALOGUE",
    "OPERATOR",
    "REGISTRY_CATALOGUE",
    "REGISTRY_OPERATOR_LOG",
    "REGISTRY_TOKENS",
    "Operator",
    "add_ops_routes",
    "authenticate",
    "check_role",
    "json_errors",
    "load_registry_tokens",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Clock = Callable[[], datetime]

REGISTRY_OPERATOR_LOG = operator_log_table(metadata, "registry_operator_log")
REGISTRY_CATALOGUE = catalogue_table(metadata)
CATALOGUE = web.AppKey("registry_catalogue", Catalogue)
_OPERATOR_LOG = web.AppKey("registry_operator_log", OperatorLog)
_LIMITER = web.AppKey("registry_rate_limiter", RateLimiter)
REGISTRY_TOKENS = web.AppKey("registry_tokens", BearerTokens)

# The static admin token's identity in the operator trail (it names no person).
_STATIC_ADMIN = "registry-admin"
_READ_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True, slots=True)
class Operator:
    """Who an authenticated ``/api/`` request comes from."""

    subject: str
    role: str
    token_id: str | None


OPERATOR = web.RequestKey("registry_operator", Operator)


def load_registry_tokens(settings: RegistrySettings) -> BearerTokens | None:
    """The registry's JWT verifier, or None when no token key is configured."""
    if settings.token_key_path is None:
        return None
    try:
        return registry_tokens(settings.token_key_path, settings.instance)
    except (CertsError, ValueError, OSError) as exc:
        raise ConfigurationError(
            f"cannot use the token key {settings.token_key_path}: {exc}") from exc


def authenticate(
    authorization: str, *, admin_token: str, tokens: BearerTokens | None, now: datetime
) -> Operator:
    """The operator behind an ``Authorization`` header; raises :class:`TokenInvalid`."""
    scheme, _, presented = authorization.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise TokenInvalid("a bearer token is required")
    # compare_digest: the comparison time does not reveal how much of a guess matched.
    if hmac.compare_digest(presented.encode("utf-8"), admin_token.encode("utf-8")):
        return Operator(subject=_STATIC_ADMIN, role="admin", token_id=None)
    if tokens is None:
        raise TokenInvalid("a valid admin token is required")
    claims = tokens.verify(presented, now=now)
    return Operator(subject=claims.subject, role=claims.role, token_id=claims.token_id)


def check_role(operator: Operator, method: str) -> None:
    """Admins may do everything; auditors may only read."""
    if operator.role == "admin":
        return
    if operator.role == "auditor" and method in _READ_METHODS:
        return
    raise RoleRefused(f"role {operator.role} may not {method} here")

_MAX_PUBLICATION = 4 * 1024 * 1024


def _problem(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"type": code, "message": message}, status=status, headers=headers)


# aiohttp's own refusals (unknown route, wrong method, body over client_max_size, ...)
# are text/plain; the API answers every error as a Problem document instead.
_HTTP_CODES = {
    400: "registry.bad_request",
    404: "registry.not_found",
    405: "registry.method_not_allowed",
    413: "registry.too_large",
    415: "registry.unsupported_media_type",
}


def json_errors_middleware(codes: Mapping[int, str], fallback: str) -> Middleware:
    """A middleware turning aiohttp's plain-text refusals into Problem documents."""

    @web.middleware
    async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400 or exc.content_type == "application/json":
                raise
            code = codes.get(exc.status, fallback)
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            # A plain-text refusal's own words are kept; aiohttp's defaults are just the reason.
            text = exc.text
            message = text if text and not text.startswith(f"{exc.status}:") else exc.reason
            return _problem(exc.status, code, message, **headers)

    return json_errors


json_errors = json_errors_middleware(_HTTP_CODES, "registry.error")


def _token_key(request: web.Request) -> str:
    presented = request.headers.get("Authorization", "")
    if presented:
        return "t:" + hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()[:32]
    return f"a:{request.remote}"


def add_ops_routes(
    app: web.Application,
    service: RegistryService,
    clock: Clock,
    *,
    limiter: RateLimiter | None = None,
    tokens: BearerTokens | None = None,
) -> None:
    app[CATALOGUE] = Catalogue(service.engine, REGISTRY_CATALOGUE)
    app[_OPERATOR_LOG] = OperatorLog(service.engine, REGISTRY_OPERATOR_LOG)
    app[_LIMITER] = limiter or RateLimiter()
    if tokens is not None:
        app[REGISTRY_TOKENS] = tokens

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(("/api/", "/catalogue/publish")):
            wait = request.app[_LIMITER].acquire(_token_key(request), time.monotonic())
            if wait > 0:
                return _problem(
                    429,
                    "management.rate_limited",
                    "too many requests for this token",
                    **{"Retry-After": RateLimiter.retry_after(wait)},
                )
        return await handler(request)

    @web.middleware
    async def operator_trail(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in _READ_METHODS or not request.path.startswith("/api/"):
            return await handler(request)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except (ValidationError, NotFound, AlreadyExists) as exc:
            status = (
                400
                if isinstance(exc, ValidationError)
                else (404 if isinstance(exc, NotFound) else 409)
            )
            raise
        finally:
            resource = request.match_info.route.resource
            operator = request.get(OPERATOR)
            await request.app[_OPERATOR_LOG].record(
                OperatorAction(
                    at=clock(),
                    actor=operator.subject if operator is not None else "anonymous",
                    role=operator.role if operator is not None else "none",
                    token_id=(operator.token_id if operator is not None and operator.token_id
                              else _token_key(request)[2:18]),
                    method=request.method,
                    action=resource.canonical if resource is not None else request.path,
                    target=request.path,
                    status=status,
                    source=request.remote,
                )
            )

    # The rate limit runs first; the trail runs inside the error middleware but around
    # the admin check, so refused requests are recorded too.
    app.middlewares.insert(0, rate_limit)
    app.middlewares.insert(2, operator_trail)
    app.middlewares.insert(0, json_errors)
    metrics = RegistryMetrics()
    # Outermost, so it counts the status the client finally gets.
    app.middlewares.insert(0, metrics.middleware())

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(registry_openapi())

    async def metrics_route(request: web.Request) -> web.Response:
        now = clock()
        versions = await service.list_published()
        newest = versions[-1] if versions else None
        metrics.refresh(
            now=now,
            published=(
                (newest.version, newest.generated_at, newest.expires_at) if newest else None
            ),
            certificates={"registry_signing": service.signing_certificate.not_valid_after_utc},
            objects={
                "members": len(await service.list_members()),
                "subsystems": len(await service.list_subsystems()),
                "nodes": len(await service.list_nodes()),
                "catalogue_services": len(await request.app[CATALOGUE].entries()),
            },
        )
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def catalogue(request: web.Request) -> web.Response:
        query = request.query.get("q", "")
        entries = await request.app[CATALOGUE].search(query)
        return web.json_response({"query": query, "services": [e.to_json_dict() for e in entries]})

    async def dcat(request: web.Request) -> web.Response:
        entries = await request.app[CATALOGUE].entries()
        names = {str(m.id): m.name for m in await service.list_members()}
        graph = catalogue_graph(
            entries, instance=service.instance, member_names=names, base_url=_base(request)
        )
        if "text/turtle" in request.headers.get("Accept", ""):
            return web.Response(text=graph.serialize(format="turtle"), content_type="text/turtle")
        document = graph.serialize(format="json-ld", context=jsonld_context(), auto_compact=True)
        return web.Response(text=document, content_type="application/ld+json")

    async def _entry(request: web.Request) -> CatalogueEntry:
        try:
            wanted = ServiceId.parse(request.match_info["service"])
        except IdentifierError as exc:
            raise ValidationError(f"service: {exc}") from exc
        for entry in await request.app[CATALOGUE].entries():
            if entry.service == wanted:
                return entry
        raise NotFound(f"{wanted} is not in the catalogue")

    async def service_entry(request: web.Request) -> web.Response:
        # The page a DataService's IRI and endpointURL resolve to.
        entry = await _entry(request)
        return web.json_response(
            {**entry.to_json_dict(), "r1_path": f"/r1/{entry.service}",
             "access": "call r1_path on your own Renkei node's client port"}
        )

    async def service_openapi(request: web.Request) -> web.Response:
        entry = await _entry(request)
        if entry.openapi is None:
            raise NotFound(f"{entry.service} has no OpenAPI description")
        return web.json_response(entry.openapi)

    async def publish(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > _MAX_PUBLICATION:
            return _problem(413, "registry.catalogue_refused", "the publication is too large")
        raw = await request.content.read(_MAX_PUBLICATION + 1)
        if len(raw) > _MAX_PUBLICATION:
            return _problem(413, "registry.catalogue_refused", "the publication is too large")
        try:
            node, entries = verify_publication(
                raw.decode("ascii").strip(), await service.list_nodes(), clock()
            )
        except (CatalogueRefused, UnicodeDecodeError) as exc:
            message = exc.message if isinstance(exc, CatalogueRefused) else "not a compact JWS"
            return _problem(403, CatalogueRefused.code, message)
        await request.app[CATALOGUE].replace(node, entries)
        return web.json_response({"node": str(node), "services": len(entries)})

    async def operator_log(request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after_id", "0"))
            if not 0 <= after < 2**63:  # a database integer; beyond it the driver fails
                raise ValueError("after_id out of range")
            limit = max(1, min(int(request.query.get("limit", "100")), 1000))
            since_text = request.query.get("since")
            since = (
                datetime.fromisoformat(since_text.replace("Z", "+00:00")) if since_text else None
            )
        except ValueError as exc:
            raise ValidationError(
                "after_id and limit must be integers, since an RFC 3339 time"
            ) from exc
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        rows = await request.app[_OPERATOR_LOG].query(
            actor=request.query.get("actor"), since=since, after_id=after, limit=limit
        )
        return web.json_response({"entries": rows})

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/metrics", metrics_route)
    app.router.add_get("/catalogue", catalogue)
    app.router.add_get("/catalogue/dcat", dcat)
    app.router.add_get("/catalogue/services/{service}", service_entry)
    app.router.add_get("/catalogue/services/{service}/openapi.json", service_openapi)
    app.router.add_post("/catalogue/publish", publish)
    app.router.add_get("/api/operator-log", operator_log)


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"

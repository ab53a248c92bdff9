"""HTTP API of the registry (aiohttp).

Public: ``GET /globalconf`` (the signed configuration, ``application/jose``) and
``GET /healthz``. Everything under ``/api/`` is administration and needs
``Authorization: Bearer <token>``: the static admin token, or a JWT from
``renkei token issue --registry-config`` (``admin``; ``auditor`` may only read).
Identifiers in paths are percent-encoded (they contain ``/``). Errors are
``{"type": code, "message": ...}`` with 400, 401, 403, 404 or 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from aiohttp import web
from cryptography import x509

from certs.identifiers import GlobalGroupId, IdentifierError, MemberId, NodeId, SubsystemId
from member_registry._certificates import certificate_from_pem, fingerprint
from member_registry._strict_json import (
    FormatError,
    format_time,
    loads_strict,
    read_int,
    read_object,
)
from member_registry.errors import (
    AlreadyExists,
    NotFound,
    RegistryBaseError,
    RoleRefused,
    TokenInvalid,
    ValidationError,
)
from member_registry.globalconf import Settings
from member_registry.ops_api import (
    OPERATOR,
    REGISTRY_TOKENS,
    add_ops_routes,
    authenticate,
    check_role,
    load_registry_tokens,
)
from member_registry.ratelimit import RateLimiter
from member_registry.registration_api import add_registration_routes
from member_registry.service import RegistryService
from member_registry.settings import RegistrySettings, read_admin_token
from member_registry.witness import add_witness_routes

__all__ = ["ADMIN_TOKEN", "CLOCK", "SERVICE", "Clock", "create_app"]

_T = TypeVar("_T")
Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SERVICE = web.AppKey("registry_service", RegistryService)
ADMIN_TOKEN = web.AppKey("registry_admin_token", str)
CLOCK: web.AppKey[Clock] = web.AppKey("registry_clock")

_STATUS = {ValidationError: 400, NotFound: 404, AlreadyExists: 409}
_log = structlog.get_logger("member_registry.api")


def create_app(
    service: RegistryService, settings: RegistrySettings, *, clock: Clock | None = None
) -> web.Application:
    """The registry's application; ``clock`` (default: the system's UTC time) dates
    every published configuration."""
    app = web.Application(middlewares=[_errors, _admin_only])
    app[SERVICE] = service
    app[ADMIN_TOKEN] = read_admin_token(settings)
    app[CLOCK] = clock or _utc_now
    app.router.add_get("/globalconf", _global_conf)
    app.router.add_get("/healthz", _health)
    routes: Sequence[tuple[str, str, Handler]] = (
        ("GET", "/api/members", _list_members),
        ("POST", "/api/members", _add_member),
        ("GET", "/api/subsystems", _list_subsystems),
        ("POST", "/api/subsystems", _add_subsystem),
        ("GET", "/api/nodes", _list_nodes),
        ("POST", "/api/nodes", _add_node),
        ("POST", "/api/nodes/{id}/auth-certificates", _add_auth_certificate),
        ("DELETE", "/api/nodes/{id}/auth-certificates/{fingerprint}", _remove_auth_certificate),
        ("POST", "/api/nodes/{id}/subsystems", _add_hosted_subsystem),
        ("GET", "/api/groups", _list_groups),
        ("POST", "/api/groups", _add_group),
        ("POST", "/api/groups/{id}/members", _add_group_member),
        ("GET", "/api/trusted-cas", _list_trusted_cas),
        ("POST", "/api/trusted-cas", _add_trusted_ca),
        ("GET", "/api/tsas", _list_tsas),
        ("POST", "/api/tsas", _add_tsa),
        ("GET", "/api/settings", _get_settings),
        ("PUT", "/api/settings", _put_settings),
        ("GET", "/api/versions", _list_versions),
        ("POST", "/api/versions", _publish),
    )
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    add_ops_routes(
        app, service, app[CLOCK], tokens=load_registry_tokens(settings),
        limiter=RateLimiter(rate=settings.rate_limit_per_s, burst=settings.rate_limit_burst),
    )
    add_registration_routes(app, service, settings.auto_approve_members, app[CLOCK])
    add_witness_routes(app, settings, app[CLOCK])
    return app


def _utc_now() -> datetime:
    return datetime.now(UTC)


# -- middlewares ----------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"type": code, "message": message}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RegistryBaseError as exc:
        status = next((s for kind, s in _STATUS.items() if isinstance(exc, kind)), 500)
        _log.warning("registry.request_failed", method=request.method, path=request.path,
                     code=exc.code, status=status)
        return _error(status, exc.code, exc.message)


@web.middleware
async def _admin_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        try:
            operator = authenticate(
                request.headers.get("Authorization", ""),
                admin_token=request.app[ADMIN_TOKEN],
                tokens=request.app.get(REGISTRY_TOKENS),
                now=request.app[CLOCK](),
            )
        except TokenInvalid as exc:
            _log.warning("registry.unauthorized", method=request.method, path=request.path)
            return web.json_response(
                {"type": exc.code, "message": exc.message},
                status=401, headers={"WWW-Authenticate": "Bearer"},
            )
        request[OPERATOR] = operator
        try:
            check_role(operator, request.method)
        except RoleRefused as exc:
            _log.warning("registry.forbidden", method=request.method, path=request.path,
                         subject=operator.subject, role=operator.role)
            return _error(403, exc.code, exc.message)
        response = await handler(request)
        if request.method != "GET":
            _log.info("registry.admin_change", method=request.method, path=request.path,
                      status=response.status, subject=operator.subject)
        return response
    return await handler(request)


# -- public ---------------------------------------------------------------------------------


async def _global_conf(request: web.Request) -> web.Response:
    token = await request.app[SERVICE].current(request.app[CLOCK]())
    # Sent as bytes: a compact JWS is ASCII and the media type takes no charset.
    return web.Response(body=token.encode("ascii"), content_type="application/jose",
                        headers={"Cache-Control": "no-store"})


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


# -- admin: requests ------------------------------------------------------------------------


async def _body(
    request: web.Request, required: Sequence[str], optional: Sequence[str] = ()
) -> Mapping[str, Any]:
    try:
        return read_object(loads_strict(await request.read()), "request body", required,
                           optional)
    except FormatError as exc:
        raise ValidationError(str(exc)) from exc


def _parse(kind: Callable[[str], _T], value: object, what: str) -> _T:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string")
    try:
        return kind(value)
    except IdentifierError as exc:
        raise ValidationError(f"{what}: {exc}") from exc


def _certificate(value: object) -> x509.Certificate:
    if not isinstance(value, str):
        raise ValidationError("certificate must be a PEM string")
    try:
        return certificate_from_pem(value)
    except ValueError as exc:
        raise ValidationError("certificate is not a valid PEM certificate") from exc


def _str_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{what} must be a list of strings")
    return value


def _created(document: Mapping[str, Any]) -> web.Response:
    return web.json_response(dict(document), status=201)


def _service(request: web.Request) -> RegistryService:
    return request.app[SERVICE]


# -- admin: handlers ------------------------------------------------------------------------


async def _list_members(request: web.Request) -> web.Response:
    members = await _service(request).list_members()
    return web.json_response([m.to_json_dict() for m in members])


async def _add_member(request: web.Request) -> web.Response:
    body = await _body(request, ("id", "name"))
    member_id = _parse(MemberId.parse, body["id"], "id")
    if not isinstance(body["name"], str):
        raise ValidationError("name must be a string")
    await _service(request).add_member(member_id, body["name"])
    return _created({"id": str(member_id)})


async def _list_subsystems(request: web.Request) -> web.Response:
    return web.json_response([str(s) for s in await _service(request).list_subsystems()])


async def _add_subsystem(request: web.Request) -> web.Response:
    body = await _body(request, ("id",), ("name",))
    subsystem_id = _parse(SubsystemId.parse, body["id"], "id")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise ValidationError("name must be a string")
    await _service(request).add_subsystem(subsystem_id, name)
    return _created({"id": str(subsystem_id)})


async def _list_nodes(request: web.Request) -> web.Response:
    return web.json_response([n.to_json_dict() for n in await _service(request).list_nodes()])


async def _add_node(request: web.Request) -> web.Response:
    body = await _body(request, ("id", "address", "peer_port"))
    node_id = _parse(NodeId.parse, body["id"], "id")
    try:
        port = read_int(body["peer_port"], "peer_port", minimum=1, maximum=65535)
    except FormatError as exc:
        raise ValidationError(str(exc)) from exc
    if not isinstance(body["address"], str):
        raise ValidationError("address must be a string")
    await _service(request).add_node(node_id, body["address"], port)
    return _created({"id": str(node_id)})


async def _add_auth_certificate(request: web.Request) -> web.Response:
    node_id = _parse(NodeId.parse, request.match_info["id"], "node id")
    body = await _body(request, ("certificate",))
    sha256 = await _service(request).add_node_auth_certificate(
        node_id, _certificate(body["certificate"]), now=request.app[CLOCK]())
    return _created({"node": str(node_id), "fingerprint": sha256})


async def _remove_auth_certificate(request: web.Request) -> web.Response:
    node_id = _parse(NodeId.parse, request.match_info["id"], "node id")
    await _service(request).remove_node_auth_certificate(node_id,
                                                         request.match_info["fingerprint"])
    return web.Response(status=204)


async def _add_hosted_subsystem(request: web.Request) -> web.Response:
    node_id = _parse(NodeId.parse, request.match_info["id"], "node id")
    body = await _body(request, ("subsystem",))
    subsystem_id = _parse(SubsystemId.parse, body["subsystem"], "subsystem")
    await _service(request).add_hosted_subsystem(node_id, subsystem_id)
    return _created({"node": str(node_id), "subsystem": str(subsystem_id)})


async def _list_groups(request: web.Request) -> web.Response:
    groups = await _service(request).list_global_groups()
    return web.json_response([g.to_json_dict() for g in groups])


async def _add_group(request: web.Request) -> web.Response:
    body = await _body(request, ("id",), ("description",))
    group_id = _parse(GlobalGroupId.parse, body["id"], "id")
    description = body.get("description", "")
    if not isinstance(description, str):
        raise ValidationError("description must be a string")
    await _service(request).add_global_group(group_id, description)
    return _created({"id": str(group_id)})


async def _add_group_member(request: web.Request) -> web.Response:
    group_id = _parse(GlobalGroupId.parse, request.match_info["id"], "group id")
    body = await _body(request, ("subsystem",))
    subsystem_id = _parse(SubsystemId.parse, body["subsystem"], "subsystem")
    await _service(request).add_group_member(group_id, subsystem_id)
    return _created({"group": str(group_id), "subsystem": str(subsystem_id)})


async def _list_trusted_cas(request: web.Request) -> web.Response:
    cas = await _service(request).list_trusted_cas()
    return web.json_response([{"fingerprint": fingerprint(ca.certificate), **ca.to_json_dict()}
                              for ca in cas])


async def _add_trusted_ca(request: web.Request) -> web.Response:
    body = await _body(request, ("certificate",), ("ocsp_urls",))
    urls = _str_list(body.get("ocsp_urls", []), "ocsp_urls")
    sha256 = await _service(request).add_trusted_ca(_certificate(body["certificate"]), urls)
    return _created({"fingerprint": sha256})


async def _list_tsas(request: web.Request) -> web.Response:
    return web.json_response([t.to_json_dict() for t in await _service(request).list_tsas()])


async def _add_tsa(request: web.Request) -> web.Response:
    body = await _body(request, ("name", "url", "certificate"))
    if not isinstance(body["name"], str) or not isinstance(body["url"], str):
        raise ValidationError("name and url must be strings")
    await _service(request).add_tsa(body["name"], body["url"], _certificate(body["certificate"]))
    return _created({"name": body["name"]})


async def _get_settings(request: web.Request) -> web.Response:
    return web.json_response((await _service(request).get_settings()).to_json_dict())


async def _put_settings(request: web.Request) -> web.Response:
    try:
        settings = Settings.from_json_dict(loads_strict(await request.read()), "request body")
    except (FormatError, RegistryBaseError) as exc:
        raise ValidationError(str(exc)) from exc
    await _service(request).update_settings(settings)
    return web.json_response(settings.to_json_dict())


async def _list_versions(request: web.Request) -> web.Response:
    versions = await _service(request).list_published()
    return web.json_response([
        {"version": v.version, "generated_at": format_time(v.generated_at),
         "expires_at": format_time(v.expires_at)} for v in versions
    ])


async def _publish(request: web.Request) -> web.Response:
    _, conf = await _service(request).publish_conf(request.app[CLOCK]())
    return _created({"version": conf.version, "expires_at": format_time(conf.expires_at)})

"""Management API for the node's services: add, change, disable, remove, without a restart.

``POST /api/services`` adds a service X-Road style: a plain REST service (a
backend URL, its timeout and TLS settings) or one with an OpenAPI description,
given in the body (``openapi``) or fetched once by the node from a URL
(``openapi_url``); its operations become the service's endpoints.
``PATCH /api/services/{id}`` changes some settings (``enabled: false``
disables it: its calls answer ``server.serverproxy.service_disabled`` and the
metaservices and the catalogue leave it out), ``DELETE`` removes it with its
access rights. The change applies at once in this process and within a second
in the node's other processes; the registry's catalogue is pushed at once.
Role ``admin`` changes; ``auditor`` and ``consent`` may read. Every change is in
the operator trail with the service before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from certs.identifiers import IdentifierError, ServiceId
from gateway.context import NodeContext
from gateway.errors import GlobalConfOutdated
from gateway.metaservices import is_metaservice
from gateway.operator_log import note_change
from gateway.policy_api import strict_body
from gateway.services import (
    MAX_OPENAPI_BYTES,
    Service,
    ServiceError,
    ServiceState,
    parse_openapi,
)

__all__ = ["add_service_routes", "fetch_openapi"]

RoleCheck = Callable[..., None]
OPENAPI_FETCH_TIMEOUT_S = 15.0
# The keys a body may set, with the JSON types each takes (a bool is no number here).
_SETTINGS: dict[str, tuple[type, ...]] = {
    "backend": (str,),
    "timeout_s": (int, float),
    "path_parameters": (bool,),
    "title": (str,),
    "description": (str,),
    "enabled": (bool,),
    "openapi": (dict, type(None)),
    "openapi_url": (str,),
    "tls": (dict,),
}
_TLS: dict[str, tuple[type, ...]] = {"verify": (bool,), "ca_pem": (str, type(None))}


def _typed(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds)


async def fetch_openapi(url: str) -> dict[str, Any]:
    """An OpenAPI description (JSON) from ``url``, read once, size-capped."""
    if not url.startswith(("http://", "https://")):
        raise ServiceError("openapi_url must be an http:// or https:// URL")
    try:
        async with aiohttp.ClientSession() as session, session.get(
            url, timeout=aiohttp.ClientTimeout(total=OPENAPI_FETCH_TIMEOUT_S),
            allow_redirects=False,
        ) as response:  # fmt: skip
            if response.status != 200:
                raise ServiceError(f"{url} answered {response.status}, not an OpenAPI description")
            data = await response.content.read(MAX_OPENAPI_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ServiceError(f"cannot fetch {url}: {exc.__class__.__name__}") from exc
    return parse_openapi(data, url)


def _checked(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    allowed = {"id", *_SETTINGS} if creating else set(_SETTINGS)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ServiceError(f"unknown key(s) {', '.join(unknown)}")
    for key, kinds in _SETTINGS.items():
        if key in body and not _typed(body[key], kinds):
            raise ServiceError(f"{key} has the wrong type")
    if "openapi" in body and "openapi_url" in body:
        raise ServiceError("give openapi or openapi_url, not both")
    tls = body.get("tls", {})
    for key in tls:
        if key not in _TLS or not _typed(tls[key], _TLS[key]):
            raise ServiceError(f"tls.{key} is unknown or has the wrong type")
    return body


async def _settings(body: dict[str, Any]) -> dict[str, Any]:
    """The Service fields a request body sets."""
    fields: dict[str, Any] = {}
    for key, name in (("backend", "url"), ("timeout_s", "timeout_s"),
                      ("path_parameters", "path_parameters"), ("title", "title"),
                      ("description", "description"), ("enabled", "enabled")):  # fmt: skip
        if key in body:
            fields[name] = float(body[key]) if key == "timeout_s" else body[key]
    if "openapi" in body:
        fields["openapi"] = body["openapi"]
        fields["openapi_source"] = "" if body["openapi"] is None else "request"
    if "openapi_url" in body:
        fields["openapi"] = await fetch_openapi(body["openapi_url"])
        fields["openapi_source"] = body["openapi_url"]
    tls = body.get("tls", {})
    if "verify" in tls:
        fields["tls_verify"] = tls["verify"]
    if "ca_pem" in tls:
        fields["tls_ca_pem"] = tls["ca_pem"]
    return fields


def _problem(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"type": code, "message": message}, status=status)


def add_service_routes(app: web.Application, ctx: NodeContext, require_role: RoleCheck) -> None:
    def state() -> ServiceState:
        if ctx.services is None:
            raise ServiceError("services are not available on this node")
        return ctx.services

    @web.middleware
    async def translate(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/api/services"):
            passed: web.StreamResponse = await handler(request)
            return passed
        try:
            response: web.StreamResponse = await handler(request)
        except ServiceError as exc:
            return _problem(exc.status, exc.code, exc.message)
        except IdentifierError as exc:
            return _problem(400, "client.bad_request", str(exc))
        return response

    app.middlewares.append(translate)

    def _id(request: web.Request) -> ServiceId:
        return ServiceId.parse(request.match_info["service_id"])

    def _hosted(service: ServiceId) -> None:
        """A node provides services only for the subsystems it hosts."""
        if is_metaservice(service):
            raise ServiceError(f"{service.service_code} is a metaservice code, reserved")
        try:
            conf = ctx.conf.current(ctx.clock())
        except GlobalConfOutdated as exc:
            raise ServiceError("the global configuration is not valid; try again later") from exc
        if not conf.is_hosted_on(service.subsystem, ctx.settings.node_id):
            raise ServiceError(f"{service.subsystem} is not hosted on this node")

    async def list_services(request: web.Request) -> web.Response:
        require_role(request, "admin", "auditor", "consent")
        snapshot = await state().reload()
        return web.json_response({"services": [s.to_json() for s in snapshot.all()]})

    async def get_service(request: web.Request) -> web.Response:
        require_role(request, "admin", "auditor", "consent")
        return web.json_response((await state().store.get(_id(request))).to_json())

    async def add_service(request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = _checked(await strict_body(request), creating=True)
        if not isinstance(body.get("id"), str) or not isinstance(body.get("backend"), str):
            raise ServiceError("id and backend are required strings")
        service_id = ServiceId.parse(body["id"])
        _hosted(service_id)
        service = Service(service=service_id, **await _settings(body))
        await state().store.add(service, now=ctx.clock())
        await state().reload()
        note_change(request, before=None, after=service.to_json())
        return web.json_response(service.to_json(), status=201)

    async def change_service(request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = _checked(await strict_body(request), creating=False)
        before, after = await state().store.update(
            _id(request), await _settings(body), now=ctx.clock()
        )
        await state().reload()
        note_change(request, before=before.to_json(), after=after.to_json())
        return web.json_response(after.to_json())

    async def remove_service(request: web.Request) -> web.Response:
        require_role(request, "admin")
        service_id = _id(request)
        removed = await state().store.remove(service_id)
        rights = await ctx.policy.list_access(service_id)
        for right in rights:
            if right.id is not None:
                await ctx.policy.revoke_access(right.id)
        await state().reload()
        document = {"removed": str(service_id), "access_rights_revoked": len(rights)}
        note_change(request, before=removed.to_json(), after=None)
        return web.json_response(document)

    app.router.add_get("/api/services", list_services)
    app.router.add_post("/api/services", add_service)
    app.router.add_get("/api/services/{service_id:.+}", get_service)
    app.router.add_patch("/api/services/{service_id:.+}", change_service)
    app.router.add_delete("/api/services/{service_id:.+}", remove_service)


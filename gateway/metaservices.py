"""X-Road REST metaservices of a provider (PR-MREST §4, §5), answered by the node itself.

``listMethods``, ``allowedMethods`` and ``getOpenAPI`` arrive at the provider node as
ordinary signed exchanges whose service code is the metaservice's name; the provider
answers them from its services (gateway/services.py), its access rights and the
services' OpenAPI descriptions instead of calling a backend. The codes are reserved: a
service with such a code is never reached. (``listClients`` is the consumer node's:
``list_clients``.)

Endpoints are written in X-Road's notation: an upper-case method or ``*``, and a path in
which ``*`` is one segment and ``**`` any number of them. A service's endpoints are the
operations of its OpenAPI description (``{param}`` becomes ``*``, as X-Road imports
them) and the endpoints its access rights name; the base endpoint ``* **`` (the whole
service) is never listed, as X-Road leaves it out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from certs.identifiers import ClientId, GlobalGroupId, IdentifierError, ServiceId, SubsystemId
from gateway.context import NodeContext
from gateway.errors import ClientError, NoOpenApiDescription, ProviderError, UnknownService
from gateway.protocol import ExchangeRequest
from gateway.services import Service
from gateway.services import openapi_endpoints as _openapi_endpoints
from gateway.spool import SpooledBody
from member_registry.globalconf import GlobalConf
from policies.access import AccessPolicy, AccessRight

__all__ = [
    "METASERVICES",
    "Endpoint",
    "allowed_methods",
    "anonymise_servers",
    "answer_metaservice",
    "is_metaservice",
    "list_methods",
    "load_openapi",
    "metaservice_body",
    "openapi_endpoints",
]

METASERVICES = frozenset({"listMethods", "allowedMethods", "getOpenAPI"})
# An OpenAPI file bigger than this is a configuration mistake, not a description.
MAX_OPENAPI_BYTES = 4 * 1024 * 1024
_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_WHOLE_SERVICE = ("*", "**")

Endpoint = tuple[str, str]  # (method, path) in X-Road's notation


def is_metaservice(service: ServiceId) -> bool:
    return service.service_code in METASERVICES


def load_openapi(path: Path) -> dict[str, Any]:
    """A service's OpenAPI document from its file; unreadable or not an object: refused."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_OPENAPI_BYTES + 1)
        if len(data) > MAX_OPENAPI_BYTES:
            raise ProviderError(f"the OpenAPI file of {path.name} is too large")
        document = json.loads(data)
    except (OSError, ValueError) as exc:
        raise ProviderError("the service's OpenAPI description cannot be read") from exc
    if not isinstance(document, dict):
        raise ProviderError("the service's OpenAPI description is not a JSON object")
    return document


def anonymise_servers(document: dict[str, Any]) -> dict[str, Any]:
    """``servers`` as X-Road's getOpenAPI rewrites them: a URL keeps only its path.

    The backend's scheme, host and port are the provider's internal address; a URL
    with ``{variables}`` is left as it is. A document that says it is not OpenAPI 3 is
    refused, as X-Road refuses it.
    """
    version = document.get("openapi")
    if version is not None and not (isinstance(version, str) and version.startswith("3.")):
        raise ProviderError(f"incompatible OpenAPI version {version!r}; 3.x expected")
    servers = document.get("servers")
    if not isinstance(servers, list):
        return document
    rewritten: list[Any] = []
    for server in servers:
        url = server.get("url") if isinstance(server, dict) else None
        if isinstance(url, str) and not ("{" in url and "}" in url):
            try:
                server = {**server, "url": urlsplit(url).path}
            except ValueError as exc:
                raise ProviderError(f"a server URL of the description is malformed: {exc}") from exc
        rewritten.append(server)
    return {**document, "servers": rewritten}


def openapi_endpoints(document: dict[str, Any]) -> list[Endpoint]:
    """The operations of an OpenAPI document as X-Road endpoints (``/pet/{id}`` -> ``/pet/*``)."""
    return _openapi_endpoints(document)


def _is_base(method: str, path: str) -> bool:
    return method == "*" and path in _WHOLE_SERVICE


def _right_endpoint(right: AccessRight) -> Endpoint:
    # Renkei stores the whole service as "*" or "**"; X-Road writes it "**".
    return right.method, "**" if right.path in _WHOLE_SERVICE else right.path


def _endpoints(backend: Service, policy: AccessPolicy) -> list[Endpoint]:
    found: list[Endpoint] = list(backend.endpoints())
    found.extend(_right_endpoint(right) for right in policy.service_rights(backend.service))
    unique: list[Endpoint] = []
    for endpoint in found:
        if not _is_base(*endpoint) and endpoint not in unique:
            unique.append(endpoint)
    return unique


def _segments(path: str) -> tuple[str, ...]:
    return () if path == "/" else tuple(path[1:].split("/"))


def _service_json(backend: Service, endpoints: list[Endpoint]) -> dict[str, Any]:
    service = backend.service
    return {
        "member_class": service.member_class,
        "member_code": service.member_code,
        "object_type": "SERVICE",
        "service_code": service.service_code,
        "service_type": backend.service_type,
        "subsystem_code": service.subsystem_code,
        "xroad_instance": service.instance,
        "endpoint_list": [{"method": method, "path": path} for method, path in endpoints],
    }


def _served(provider: SubsystemId, services: tuple[Service, ...]) -> list[Service]:
    """The provider's enabled services (a disabled one is not offered, as in X-Road)."""
    return sorted(
        (
            backend
            for backend in services
            if backend.service.subsystem == provider
            and backend.enabled
            and not is_metaservice(backend.service)
        ),
        key=lambda backend: backend.service,
    )


def list_methods(
    provider: SubsystemId, services: tuple[Service, ...], policy: AccessPolicy
) -> dict[str, Any]:
    """The provider subsystem's services and their endpoints (``listMethods``)."""
    return {
        "service": [
            _service_json(backend, _endpoints(backend, policy))
            for backend in _served(provider, services)
        ]
    }


def allowed_methods(
    provider: SubsystemId,
    services: tuple[Service, ...],
    policy: AccessPolicy,
    client: ClientId,
    client_groups: frozenset[GlobalGroupId],
) -> dict[str, Any]:
    """The services ``client`` holds a right on, with the endpoints a right covers.

    As X-Road does: a service is listed when any right applies to the client, and an
    endpoint of it when one of those rights matches the endpoint's method and path.
    """
    rights = policy.allowed_rights(client, client_groups, provider)
    listed = []
    for backend in _served(provider, services):
        mine = [right for right in rights if right.service == backend.service]
        if not mine:
            continue
        endpoints = [
            (method, path)
            for method, path in _endpoints(backend, policy)
            if any(right.covers(method, _segments(path)) for right in mine)
        ]
        listed.append(_service_json(backend, endpoints))
    return {"service": listed}


def _openapi_of(
    provider: SubsystemId, services: tuple[Service, ...], query: str
) -> dict[str, Any]:
    codes = parse_qs(query, keep_blank_values=True).get("serviceCode", [])
    if len(codes) != 1 or not codes[0]:
        raise ClientError("getOpenAPI needs exactly one serviceCode parameter")
    try:
        wanted = ServiceId.parse(f"{provider}/{codes[0]}")
    except IdentifierError as exc:
        raise ClientError(f"bad serviceCode: {exc}") from exc
    for backend in services:
        if backend.service == wanted and backend.enabled and not is_metaservice(wanted):
            if backend.openapi is None:
                raise NoOpenApiDescription(
                    f"{wanted} has no OpenAPI description (its service_type is REST)"
                )
            return anonymise_servers(dict(backend.openapi))
    raise UnknownService(f"{wanted} is not a service of this node")


def metaservice_body(
    *,
    service: ServiceId,
    query: str,
    client: ClientId,
    conf: GlobalConf,
    services: tuple[Service, ...],
    policy: AccessPolicy,
) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """The provider's answer to a metaservice call: status, headers, JSON body."""
    provider = service.subsystem
    code = service.service_code
    document: dict[str, Any]
    if code == "listMethods":
        document = list_methods(provider, services, policy)
    elif code == "allowedMethods":
        document = allowed_methods(provider, services, policy, client, conf.groups_of(client))
    elif code == "getOpenAPI":
        document = _openapi_of(provider, services, query)
    else:
        raise UnknownService(f"{code} is not a metaservice")
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return 200, (("content-type", "application/json"),), body


async def answer_metaservice(
    ctx: NodeContext, conf: GlobalConf, request: ExchangeRequest
) -> tuple[int, tuple[tuple[str, str], ...], SpooledBody]:
    """The provider node's answer, in the shape of a backend's (signed like one)."""
    status, headers, content = metaservice_body(
        service=request.service,
        query=request.query or "",
        client=request.client,
        conf=conf,
        services=ctx.service_snapshot().all(),
        policy=await ctx.policy.access_policy(),
    )
    body = SpooledBody(memory_limit=len(content))
    body.feed(content)
    return status, headers, body

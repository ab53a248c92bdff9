"""X-Road REST metaservices (PR-MREST), answered by the nodes themselves.

``GET /listClients`` is answered by the consumer node from the global
configuration. ``listMethods``, ``allowedMethods`` and ``getOpenAPI`` arrive at
the provider node as ordinary signed exchanges whose service code is the
metaservice's name; the provider answers them from its configured services,
its access rights and the services' OpenAPI files instead of calling a
backend. The codes are reserved: a configured service with such a code is
never reached.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from certs.identifiers import GlobalGroupId, IdentifierError, ServiceId, SubsystemId
from gateway.context import NodeContext
from gateway.errors import UnknownService
from gateway.protocol import ExchangeRequest
from gateway.settings import ServiceBackend
from gateway.spool import SpooledBody
from member_registry.globalconf import GlobalConf
from policies.access import AccessPolicy

__all__ = [
    "METASERVICES",
    "allowed_methods",
    "answer_metaservice",
    "is_metaservice",
    "list_clients",
    "list_methods",
    "load_openapi",
    "metaservice_body",
]

METASERVICES = frozenset({"listMethods", "allowedMethods", "getOpenAPI"})
# An OpenAPI file bigger than this is a configuration mistake, not a description.
MAX_OPENAPI_BYTES = 4 * 1024 * 1024


def is_metaservice(service: ServiceId) -> bool:
    return service.service_code in METASERVICES


def list_clients(conf: GlobalConf) -> dict[str, Any]:
    """Every member and subsystem of the federation, in PR-MREST's shape."""
    entries: list[dict[str, Any]] = []
    for member in sorted(conf.members, key=lambda m: str(m.id)):
        base = {
            "member_class": member.id.member_class,
            "member_code": member.id.member_code,
            "xroad_instance": member.id.instance,
        }
        entries.append({"id": {**base, "object_type": "MEMBER"}, "name": member.name})
        for subsystem in sorted(member.subsystems, key=str):
            entries.append(
                {
                    "id": {
                        **base,
                        "subsystem_code": subsystem.subsystem_code,
                        "object_type": "SUBSYSTEM",
                    },
                    "name": member.name,
                }
            )
    return {"member": entries}


def _service_json(
    service: ServiceId, endpoints: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "member_class": service.member_class,
        "member_code": service.member_code,
        "subsystem_code": service.subsystem_code,
        "service_code": service.service_code,
        "object_type": "SERVICE",
        "xroad_instance": service.instance,
        "service_type": "REST",
        "endpoint_list": endpoints,
    }


def _served(
    provider: SubsystemId, services: tuple[ServiceBackend, ...]
) -> list[ServiceId]:
    return sorted(
        backend.service
        for backend in services
        if backend.service.subsystem == provider and not is_metaservice(backend.service)
    )


def list_methods(
    provider: SubsystemId, services: tuple[ServiceBackend, ...]
) -> dict[str, Any]:
    """The provider subsystem's services (``listMethods``); every endpoint is ``* /*``."""
    return {
        "service": [
            _service_json(service, [{"method": "*", "path": "/*"}])
            for service in _served(provider, services)
        ]
    }


def allowed_methods(
    provider: SubsystemId,
    services: tuple[ServiceBackend, ...],
    policy: AccessPolicy,
    client: SubsystemId,
    client_groups: frozenset[GlobalGroupId],
) -> dict[str, Any]:
    """The services and endpoints ``client`` may call (``allowedMethods``)."""
    served = set(_served(provider, services))
    endpoints: dict[ServiceId, list[dict[str, str]]] = {}
    for right in policy.allowed_rights(client, client_groups, provider):
        if right.service in served:
            endpoint = {"method": right.method, "path": right.path}
            listed = endpoints.setdefault(right.service, [])
            if endpoint not in listed:
                listed.append(endpoint)
    return {
        "service": [_service_json(service, endpoints[service]) for service in sorted(endpoints)]
    }


def load_openapi(path: Path) -> dict[str, Any]:
    """A service's OpenAPI document from its file; unreadable or not an object: refused."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_OPENAPI_BYTES + 1)
        if len(data) > MAX_OPENAPI_BYTES:
            raise UnknownService(f"the OpenAPI file of {path.name} is too large")
        document = json.loads(data)
    except (OSError, ValueError) as exc:
        raise UnknownService("the service's OpenAPI description cannot be read") from exc
    if not isinstance(document, dict):
        raise UnknownService("the service's OpenAPI description is not a JSON object")
    return document


def _openapi_of(
    provider: SubsystemId, services: tuple[ServiceBackend, ...], query: str
) -> dict[str, Any]:
    codes = parse_qs(query, keep_blank_values=True).get("serviceCode", [])
    if len(codes) != 1:
        raise UnknownService("getOpenAPI needs exactly one serviceCode parameter")
    try:
        wanted = ServiceId.parse(f"{provider}/{codes[0]}")
    except IdentifierError as exc:
        raise UnknownService(f"bad serviceCode: {exc}") from exc
    for backend in services:
        if backend.service == wanted and not is_metaservice(wanted):
            if backend.openapi is None:
                raise UnknownService(f"{wanted} has no OpenAPI description")
            return load_openapi(backend.openapi)
    raise UnknownService(f"{wanted} is not a service of this node")


def metaservice_body(
    *,
    service: ServiceId,
    query: str,
    client: SubsystemId,
    conf: GlobalConf,
    services: tuple[ServiceBackend, ...],
    policy: AccessPolicy,
) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """The provider's answer to a metaservice call: status, headers, JSON body."""
    provider = service.subsystem
    code = service.service_code
    document: dict[str, Any]
    if code == "listMethods":
        document = list_methods(provider, services)
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
        services=ctx.settings.services,
        policy=await ctx.policy.access_policy(),
    )
    body = SpooledBody(memory_limit=len(content))
    body.feed(content)
    return status, headers, body

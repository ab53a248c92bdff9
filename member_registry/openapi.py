"""The registry's HTTP API as OpenAPI 3.1 (served at ``/openapi.json``).

A test checks that every route is described and every described path is
routed, so this document and the code cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from member_registry.openapi_schemas import (
    COUNT,
    INT,
    NULLABLE_INT,
    NULLABLE_STR,
    SHARED_SCHEMAS,
    STR,
    STRINGS,
    array,
    obj,
    ref,
)

__all__ = ["build_openapi", "error_responses", "json_ok", "query", "registry_openapi"]

_ID = {"type": "string", "minLength": 1, "maxLength": 1400}


def error_responses(*statuses: int) -> dict[str, Any]:
    names = {
        400: "malformed request",
        401: "no or invalid bearer token",
        403: "not allowed",
        404: "not found",
        409: "conflict",
        405: "method not allowed",
        408: "request timeout",
        413: "too large",
        414: "request target too long",
        415: "unsupported media type",
        429: "rate limited; see Retry-After",
        431: "request headers too large",
        503: "not ready",
    }
    return {
        str(s): {
            "description": names[s],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }


def json_ok(schema: dict[str, Any], status: str = "200", what: str = "ok") -> dict[str, Any]:
    """A JSON answer ``status`` with its body's schema."""
    return {status: {"description": what, "content": {"application/json": {"schema": schema}}}}


def query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    """An optional query parameter."""
    parameter = {"name": name, "in": "query", "required": False, "schema": schema}
    return {**parameter, "description": description} if description else parameter


def build_openapi(
    title: str,
    description: str,
    operations: list[tuple[str, str, str, dict[str, Any]]],
    *,
    secured: tuple[str, ...],
    every: dict[str, Any] | None = None,
    schemas: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An OpenAPI 3.1 document from (method, path, summary, operation) entries.

    Operations under one of the ``secured`` prefixes need a bearer token and
    may answer 401, 403 and 429. ``every`` holds the responses any operation
    may give before it is routed (the HTTP layer refusing a request's framing);
    an operation's own description of the same status wins. ``schemas`` are the
    document's named body schemas, beside the shared ones (Problem, OperatorLog).
    """
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, operation in operations:
        op = {"summary": summary, "operationId": _operation_id(method, path), **operation}
        given = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
        params = [
            {"name": name, "in": "path", "required": True, "schema": _ID}
            for name in _path_params(path)
            if name not in given
        ]
        if params:
            op["parameters"] = params + op.get("parameters", [])
        op["responses"] = _merged(every or {}, op["responses"])
        if path.startswith(secured):
            op["security"] = [{"bearer": []}]
            op["responses"] = {**error_responses(401, 403, 429), **op["responses"]}
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "paths": paths,
        "components": {
            "schemas": {**SHARED_SCHEMAS, **(schemas or {})},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _merged(every: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``own`` responses plus ``every``; for a status in both, the media types of both."""
    responses = {**every, **own}
    for status in every.keys() & own.keys():
        content = {**every[status].get("content", {}), **own[status].get("content", {})}
        responses[status] = {**own[status], "content": content}
    return responses


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _operation_id(method: str, path: str) -> str:
    words = [p.strip("{}").replace("-", "_").replace(".", "_") for p in path.split("/") if p]
    return method.lower() + "_" + "_".join(words or ["root"])


def _body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# The OpenAPI document itself and a service's description: their top-level keys.
_OPENAPI_DOCUMENT = {
    "type": "object",
    "properties": {"openapi": STR, "info": {"type": "object"}, "paths": {"type": "object"}},
}
_NULLABLE_OBJECT: dict[str, Any] = {"type": ["object", "null"]}
_SETTINGS = obj(
    {
        "refresh_interval_s": INT,
        "validity_s": INT,
        "ocsp_freshness_s": INT,
        "timestamping_interval_s": INT,
    }
)
_CATALOGUE_ENTRY = obj(
    {
        "service": STR,
        "node": STR,
        "title": STR,
        "description": STR,
        "declaration": {**_NULLABLE_OBJECT, "description": "the service's declaration"},
        "openapi": {**_NULLABLE_OBJECT, "description": "the service's OpenAPI description"},
        "published_at": STR,
    }
)
_REGISTRATION = obj(
    {
        "id": INT,
        "status": {"enum": ["pending", "approved", "rejected"]},
        "node": STR,
        "address": STR,
        "peer_port": INT,
        "subsystems": STRINGS,
        "auth_fingerprint": STR,
        "issued_at": STR,
        "received_at": STR,
        "decided_at": NULLABLE_STR,
        "decided_by": NULLABLE_STR,
    }
)
_SCHEMAS: dict[str, dict[str, Any]] = {
    "Health": obj({"status": STR}),
    "OpenApiDocument": _OPENAPI_DOCUMENT,
    "Settings": _SETTINGS,
    "CatalogueEntry": _CATALOGUE_ENTRY,
    "Member": obj(
        {
            "id": STR,
            "name": STR,
            "subsystems": STRINGS,
            "subsystem_names": {"type": "object", "additionalProperties": STR},
        },
        optional=("subsystem_names",),
    ),
    "Node": obj(
        {
            "id": STR,
            "address": STR,
            "peer_port": INT,
            "auth_cert_sha256": STRINGS,
            "subsystems": STRINGS,
        }
    ),
    "GlobalGroup": obj({"id": STR, "description": STR, "members": STRINGS}),
    "TrustedCa": obj({"fingerprint": STR, "certificate": STR, "ocsp_urls": STRINGS}),
    "Tsa": obj({"name": STR, "url": STR, "certificate": STR}),
    "Registration": _REGISTRATION,
}


def _created(schema: dict[str, Any]) -> dict[str, Any]:
    return {**json_ok(schema, "201", "created"), **error_responses(400, 404, 409)}


def _list(name: str) -> dict[str, Any]:
    return json_ok(array(ref(name)))


def registry_openapi() -> dict[str, Any]:
    """The registry's API description."""
    get, post = "GET", "POST"
    ops: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            get,
            "/globalconf",
            "the signed global configuration (compact JWS)",
            {
                "responses": {
                    "200": {"description": "ok", "content": {"application/jose": {"schema": STR}}}
                }
            },
        ),
        (get, "/healthz", "alive", {"responses": json_ok(ref("Health"))}),
        (
            get,
            "/metrics",
            "Prometheus metrics (text exposition format)",
            {"responses": {"200": {"description": "ok",
                                   "content": {"text/plain": {"schema": STR}}}}},
        ),
        (get, "/openapi.json", "this document", {"responses": json_ok(ref("OpenApiDocument"))}),
        (
            get,
            "/catalogue",
            "search the API catalogue",
            {
                "parameters": [
                    query("q", STR, "words that must all appear in a service's id, title or"
                                    " description; empty: every service"),
                ],
                "responses": json_ok(
                    obj({"query": STR, "services": array(ref("CatalogueEntry"))})
                ),
            },
        ),
        (
            get,
            "/catalogue/dcat",
            "the catalogue as DCAT-AP JSON-LD (Turtle when Accept asks for text/turtle)",
            {
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/ld+json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"@context": {}, "@graph": {"type": "array"}},
                                }
                            },
                            "text/turtle": {"schema": STR},
                        },
                    }
                }
            },
        ),
        (
            get,
            "/catalogue/services/{service}",
            "a service's catalogue entry and the r1 path to call it by",
            {
                "responses": {
                    **json_ok(
                        {
                            "allOf": [
                                ref("CatalogueEntry"),
                                obj({"r1_path": STR, "access": STR}),
                            ]
                        }
                    ),
                    **error_responses(400, 404),
                }
            },
        ),
        (
            get,
            "/catalogue/services/{service}/openapi.json",
            "a service's OpenAPI description",
            {"responses": {**json_ok(ref("OpenApiDocument")), **error_responses(400, 404)}},
        ),
        (
            post,
            "/catalogue/publish",
            "a node publishes its services (JWS by its auth key)",
            {
                "requestBody": {
                    "required": True,
                    "content": {"application/jose": {"schema": STR}},
                },
                "responses": {
                    **json_ok(obj({"node": STR, "services": INT})),
                    **error_responses(403, 413, 429),
                },
            },
        ),
        (get, "/api/members", "list members", {"responses": _list("Member")}),
        (
            post,
            "/api/members",
            "add a member",
            {
                "requestBody": _body(["id", "name"], {"id": STR, "name": STR}),
                "responses": _created(obj({"id": STR})),
            },
        ),
        (get, "/api/subsystems", "list subsystems", {"responses": json_ok(STRINGS)}),
        (
            post,
            "/api/subsystems",
            "add a subsystem (name: its display name, listClients' subsystem_name)",
            {
                "requestBody": _body(["id"], {"id": STR, "name": STR}),
                "responses": _created(obj({"id": STR})),
            },
        ),
        (get, "/api/nodes", "list nodes", {"responses": _list("Node")}),
        (
            post,
            "/api/nodes",
            "add a node",
            {
                "requestBody": _body(
                    ["id", "address", "peer_port"],
                    {
                        "id": STR,
                        "address": STR,
                        "peer_port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    },
                ),
                "responses": _created(obj({"id": STR})),
            },
        ),
        (
            post,
            "/api/nodes/{id}/auth-certificates",
            "register a node's auth certificate",
            {
                "requestBody": _body(["certificate"], {"certificate": STR}),
                "responses": _created(obj({"node": STR, "fingerprint": STR})),
            },
        ),
        (
            "DELETE",
            "/api/nodes/{id}/auth-certificates/{fingerprint}",
            "remove a node's auth certificate",
            {"responses": {"204": {"description": "removed"}, **error_responses(400, 404)}},
        ),
        (
            post,
            "/api/nodes/{id}/subsystems",
            "host a subsystem on a node",
            {
                "requestBody": _body(["subsystem"], {"subsystem": STR}),
                "responses": _created(obj({"node": STR, "subsystem": STR})),
            },
        ),
        (get, "/api/groups", "list global groups", {"responses": _list("GlobalGroup")}),
        (
            post,
            "/api/groups",
            "add a global group",
            {
                "requestBody": _body(["id"], {"id": STR, "description": STR}),
                "responses": _created(obj({"id": STR})),
            },
        ),
        (
            post,
            "/api/groups/{id}/members",
            "add a subsystem to a global group",
            {
                "requestBody": _body(["subsystem"], {"subsystem": STR}),
                "responses": _created(obj({"group": STR, "subsystem": STR})),
            },
        ),
        (get, "/api/trusted-cas", "list trusted CAs", {"responses": _list("TrustedCa")}),
        (
            post,
            "/api/trusted-cas",
            "trust a CA",
            {
                "requestBody": _body(
                    ["certificate"],
                    {"certificate": STR, "ocsp_urls": STRINGS},
                ),
                "responses": _created(obj({"fingerprint": STR})),
            },
        ),
        (get, "/api/tsas", "list time-stamping authorities", {"responses": _list("Tsa")}),
        (
            post,
            "/api/tsas",
            "add a time-stamping authority",
            {
                "requestBody": _body(
                    ["name", "url", "certificate"], {"name": STR, "url": STR, "certificate": STR}
                ),
                "responses": _created(obj({"name": STR})),
            },
        ),
        (get, "/api/settings", "the published settings", {"responses": json_ok(ref("Settings"))}),
        (
            "PUT",
            "/api/settings",
            "change the published settings",
            {
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("Settings")}},
                },
                "responses": {**json_ok(ref("Settings")), **error_responses(400)},
            },
        ),
        (
            get,
            "/api/versions",
            "published configuration versions",
            {"responses": json_ok(array(obj({"version": INT, "generated_at": STR,
                                              "expires_at": STR})))},
        ),
        (
            post,
            "/api/versions",
            "publish a new configuration version",
            {
                "responses": {
                    **json_ok(obj({"version": INT, "expires_at": STR}), "201", "published"),
                    **error_responses(400),
                }
            },
        ),
        (
            post,
            "/registrations",
            "a node asks to list its auth certificate (JWS pair: new auth key + member sign key)",
            {
                "requestBody": _body(
                    ["proof_of_possession", "member_consent"],
                    {"proof_of_possession": STR, "member_consent": STR},
                ),
                "responses": {
                    **json_ok(ref("Registration"), "202", "received (pending or auto-approved)"),
                    **error_responses(400, 409),
                },
            },
        ),
        (
            get,
            "/api/registrations",
            "list registration requests",
            {
                "parameters": [
                    query("status", {"enum": ["pending", "approved", "rejected", "all"]},
                          "which requests (default all)"),
                ],
                "responses": {**_list("Registration"), **error_responses(400)},
            },
        ),
        (
            get,
            "/api/registrations/{id}",
            "one registration request",
            {"responses": {**json_ok(ref("Registration")), **error_responses(400, 404)}},
        ),
        (
            post,
            "/api/registrations/{id}/approve",
            "approve a pending registration (verified again now)",
            {"responses": {**json_ok(ref("Registration")), **error_responses(400, 404, 409)}},
        ),
        (
            post,
            "/api/registrations/{id}/reject",
            "reject a pending registration",
            {"responses": {**json_ok(ref("Registration")), **error_responses(400, 404, 409)}},
        ),
        (
            get,
            "/api/operator-log",
            "the operator trail (who changed what, when, result)",
            {
                "parameters": [
                    query("actor", STR, "only this actor's entries"),
                    query("since", STR, "only entries from this RFC 3339 time on"),
                    query("after_id", COUNT, "only entries after this id (paging)"),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": 1000},
                          "at most this many entries (default 100)"),
                ],
                "responses": {**json_ok(ref("OperatorLog")), **error_responses(400)},
            },
        ),
        (
            post,
            "/witness/checkpoints",
            "a node's signed audit checkpoint, cosigned by the registry as witness",
            {
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": obj({"checkpoint": STR, "previous_size": NULLABLE_INT,
                                   "consistency_proof": STRINGS},
                                  optional=("previous_size", "consistency_proof"))}}},
                "responses": {
                    **json_ok(obj({"cosignature": STR})),
                    **error_responses(400, 409),
                },
            },
        ),
        (
            get,
            "/witness/checkpoints/{node}",
            "the last checkpoint the registry cosigned for a node",
            {
                "responses": {
                    **json_ok(
                        obj({"node_id": STR, "tree_size": INT, "root": STR, "cosignature": STR})
                    ),
                    **error_responses(404),
                }
            },
        ),
    ]
    return build_openapi(
        "Renkei member registry",
        "Global configuration, administration (bearer token: the static admin token or a "
        "JWT from `renkei token issue --registry-config`, roles admin and auditor) and the "
        "API catalogue.",
        ops,
        secured=("/api/",),
        every=_FRAMING,
        schemas=_SCHEMAS,
    )


# aiohttp's HTTP parser refuses an over-long request line or header block itself,
# before any route runs, with a text/plain 400.
_FRAMING = {
    "400": {
        "description": "malformed request (the HTTP parser's refusals are text/plain)",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Problem"}},
            "text/plain": {"schema": STR},
        },
    },
    **error_responses(413),
}

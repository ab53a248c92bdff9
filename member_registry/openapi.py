"""The registry's HTTP API as OpenAPI 3.1 (served at ``/openapi.json``).

A test checks that every route is described and every described path is
routed, so this document and the code cannot drift apart.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_openapi", "error_responses", "registry_openapi"]

_PROBLEM = {
    "type": "object",
    "required": ["type", "message"],
    "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
}
_ANY_OBJECT: dict[str, Any] = {"type": "object"}
_ANY_ARRAY: dict[str, Any] = {"type": "array"}
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


def _json(status: str, schema: dict[str, Any], what: str = "ok") -> dict[str, Any]:
    return {status: {"description": what, "content": {"application/json": {"schema": schema}}}}


def build_openapi(
    title: str,
    description: str,
    operations: list[tuple[str, str, str, dict[str, Any]]],
    *,
    secured: tuple[str, ...],
    every: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An OpenAPI 3.1 document from (method, path, summary, operation) entries.

    Operations under one of the ``secured`` prefixes need a bearer token and
    may answer 401, 403 and 429. ``every`` holds the responses any operation
    may give before it is routed (the HTTP layer refusing a request's framing);
    an operation's own description of the same status wins.
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
            "schemas": {"Problem": _PROBLEM},
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


_STR = {"type": "string"}
_CREATED = {**_json("201", _ANY_OBJECT, "created"), **error_responses(400, 404, 409)}
_LIST = _json("200", _ANY_ARRAY)


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
                    "200": {"description": "ok", "content": {"application/jose": {"schema": _STR}}}
                }
            },
        ),
        (get, "/healthz", "alive", {"responses": _json("200", _ANY_OBJECT)}),
        (
            get,
            "/metrics",
            "Prometheus metrics (text exposition format)",
            {"responses": {"200": {"description": "ok",
                                   "content": {"text/plain": {"schema": _STR}}}}},
        ),
        (get, "/openapi.json", "this document", {"responses": _json("200", _ANY_OBJECT)}),
        (
            get,
            "/catalogue",
            "search the API catalogue",
            {
                "parameters": [{"name": "q", "in": "query", "required": False, "schema": _STR}],
                "responses": _json("200", _ANY_OBJECT),
            },
        ),
        (
            get,
            "/catalogue/dcat",
            "the catalogue as DCAT-AP JSON-LD",
            {
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/ld+json": {"schema": _ANY_OBJECT}},
                    }
                }
            },
        ),
        (
            get,
            "/catalogue/services/{service}",
            "a service's catalogue entry and the r1 path to call it by",
            {"responses": {**_json("200", _ANY_OBJECT), **error_responses(400, 404)}},
        ),
        (
            get,
            "/catalogue/services/{service}/openapi.json",
            "a service's OpenAPI description",
            {"responses": {**_json("200", _ANY_OBJECT), **error_responses(400, 404)}},
        ),
        (
            post,
            "/catalogue/publish",
            "a node publishes its services (JWS by its auth key)",
            {
                "requestBody": {
                    "required": True,
                    "content": {"application/jose": {"schema": _STR}},
                },
                "responses": {**_json("200", _ANY_OBJECT), **error_responses(403, 413, 429)},
            },
        ),
        (get, "/api/members", "list members", {"responses": _LIST}),
        (
            post,
            "/api/members",
            "add a member",
            {
                "requestBody": _body(["id", "name"], {"id": _STR, "name": _STR}),
                "responses": _CREATED,
            },
        ),
        (get, "/api/subsystems", "list subsystems", {"responses": _LIST}),
        (
            post,
            "/api/subsystems",
            "add a subsystem",
            {"requestBody": _body(["id"], {"id": _STR}), "responses": _CREATED},
        ),
        (get, "/api/nodes", "list nodes", {"responses": _LIST}),
        (
            post,
            "/api/nodes",
            "add a node",
            {
                "requestBody": _body(
                    ["id", "address", "peer_port"],
                    {
                        "id": _STR,
                        "address": _STR,
                        "peer_port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    },
                ),
                "responses": _CREATED,
            },
        ),
        (
            post,
            "/api/nodes/{id}/auth-certificates",
            "register a node's auth certificate",
            {"requestBody": _body(["certificate"], {"certificate": _STR}), "responses": _CREATED},
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
            {"requestBody": _body(["subsystem"], {"subsystem": _STR}), "responses": _CREATED},
        ),
        (get, "/api/groups", "list global groups", {"responses": _LIST}),
        (
            post,
            "/api/groups",
            "add a global group",
            {
                "requestBody": _body(["id"], {"id": _STR, "description": _STR}),
                "responses": _CREATED,
            },
        ),
        (
            post,
            "/api/groups/{id}/members",
            "add a subsystem to a global group",
            {"requestBody": _body(["subsystem"], {"subsystem": _STR}), "responses": _CREATED},
        ),
        (get, "/api/trusted-cas", "list trusted CAs", {"responses": _LIST}),
        (
            post,
            "/api/trusted-cas",
            "trust a CA",
            {
                "requestBody": _body(
                    ["certificate"],
                    {"certificate": _STR, "ocsp_urls": {"type": "array", "items": _STR}},
                ),
                "responses": _CREATED,
            },
        ),
        (get, "/api/tsas", "list time-stamping authorities", {"responses": _LIST}),
        (
            post,
            "/api/tsas",
            "add a time-stamping authority",
            {
                "requestBody": _body(
                    ["name", "url", "certificate"], {"name": _STR, "url": _STR, "certificate": _STR}
                ),
                "responses": _CREATED,
            },
        ),
        (get, "/api/settings", "the published settings", {"responses": _json("200", _ANY_OBJECT)}),
        (
            "PUT",
            "/api/settings",
            "change the published settings",
            {
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ANY_OBJECT}},
                },
                "responses": {**_json("200", _ANY_OBJECT), **error_responses(400)},
            },
        ),
        (get, "/api/versions", "published configuration versions", {"responses": _LIST}),
        (
            post,
            "/api/versions",
            "publish a new configuration version",
            {"responses": {**_json("201", _ANY_OBJECT, "published"), **error_responses(400)}},
        ),
        (
            post,
            "/registrations",
            "a node asks to list its auth certificate (JWS pair: new auth key + member sign key)",
            {
                "requestBody": _body(
                    ["proof_of_possession", "member_consent"],
                    {"proof_of_possession": _STR, "member_consent": _STR},
                ),
                "responses": {
                    **_json("202", _ANY_OBJECT, "received (pending or auto-approved)"),
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
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": ["pending", "approved", "rejected", "all"]},
                    }
                ],
                "responses": {**_LIST, **error_responses(400)},
            },
        ),
        (
            get,
            "/api/registrations/{id}",
            "one registration request",
            {"responses": {**_json("200", _ANY_OBJECT), **error_responses(400, 404)}},
        ),
        (
            post,
            "/api/registrations/{id}/approve",
            "approve a pending registration (verified again now)",
            {"responses": {**_json("200", _ANY_OBJECT), **error_responses(400, 404, 409)}},
        ),
        (
            post,
            "/api/registrations/{id}/reject",
            "reject a pending registration",
            {"responses": {**_json("200", _ANY_OBJECT), **error_responses(400, 404, 409)}},
        ),
        (
            get,
            "/api/operator-log",
            "the operator trail (who changed what, when, result)",
            {
                "parameters": [
                    {"name": "actor", "in": "query", "required": False, "schema": _STR},
                    {"name": "since", "in": "query", "required": False, "schema": _STR},
                    {
                        "name": "after_id",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
                "responses": {**_json("200", _ANY_OBJECT), **error_responses(400)},
            },
        ),
        (
            post,
            "/witness/checkpoints",
            "a node's signed audit checkpoint, cosigned by the registry as witness",
            {
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ANY_OBJECT}}},
                "responses": {**_json("200", _ANY_OBJECT), **error_responses(400, 409)},
            },
        ),
        (
            get,
            "/witness/checkpoints/{node}",
            "the last checkpoint the registry cosigned for a node",
            {"responses": {**_json("200", _ANY_OBJECT), **error_responses(404)}},
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
    )


# aiohttp's HTTP parser refuses an over-long request line or header block itself,
# before any route runs, with a text/plain 400.
_FRAMING = {
    "400": {
        "description": "malformed request (the HTTP parser's refusals are text/plain)",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Problem"}},
            "text/plain": {"schema": _STR},
        },
    },
    **error_responses(413),
}

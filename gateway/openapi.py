"""The node's management API as OpenAPI 3.1 (served at ``/openapi.json``).

A test builds the management application and checks that every route is
described here and every described path is routed.
"""

from __future__ import annotations

from typing import Any

from member_registry.openapi import build_openapi, error_responses

__all__ = ["node_openapi"]

_STR = {"type": "string"}
# Query integers are sequence numbers and sizes: a signed 64-bit database integer.
_COUNT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_OBJ: dict[str, Any] = {"type": "object"}


def _ok(schema: dict[str, Any] | None = None, status: str = "200") -> dict[str, Any]:
    return {
        status: {"description": "ok", "content": {"application/json": {"schema": schema or _OBJ}}}
    }


def _query(*names: str, integers: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    params = [{"name": n, "in": "query", "required": False, "schema": _STR} for n in names]
    params += [
        {"name": n, "in": "query", "required": False, "schema": _COUNT}
        for n in integers
    ]
    return params


def _body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": required, "properties": properties}
            }
        },
    }


_LIST = {"type": "array", "items": _STR}
_CHANGE = {**error_responses(400, 404)}
_TEXT_400 = error_responses(400)


_CLIENT = "/api/clients/{instance}/{member_class}/{member_code}/{subsystem}"
_CONNECTION_TYPES = ["HTTP", "HTTPS_NO_AUTH", "HTTPS", "TOKEN"]


_SERVICE_SETTINGS: dict[str, Any] = {
    "backend": {**_STR, "description": "the backend's http:// or https:// URL"},
    "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
    "path_parameters": {"type": "boolean"},
    "title": _STR,
    "description": _STR,
    "enabled": {"type": "boolean"},
    "openapi": {"type": ["object", "null"], "description": "an OpenAPI 3 description (JSON)"},
    "openapi_url": {**_STR, "description": "where the node fetches the description, once"},
    "tls": {
        "type": "object",
        "properties": {"verify": {"type": "boolean"}, "ca_pem": {"type": ["string", "null"]}},
    },
}
_SERVICE_ID = [
    {
        "name": "service_id",
        "in": "path",
        "required": True,
        "description": "INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE, its slashes as they are",
        "schema": _STR,
    }
]


def _service_operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    """The node's services at runtime (docs/operations.md, "Services")."""
    one = "/api/services/{service_id}"
    return [
        ("GET", "/api/services", "the node's services (role admin, auditor or consent)",
         {"responses": _ok()}),
        (
            "POST",
            "/api/services",
            "add a service: a plain REST service, or one whose OpenAPI description (openapi,"
            " or openapi_url fetched once) gives its endpoints; served at once, its"
            " provider subsystem must be hosted on this node (409: it exists)",
            {
                "requestBody": _body(["id", "backend"], {"id": _STR, **_SERVICE_SETTINGS}),
                "responses": {**_ok(status="201"), **error_responses(400, 409)},
            },
        ),
        ("GET", one, "one service with its endpoints",
         {"parameters": _SERVICE_ID, "responses": {**_ok(), **_CHANGE}}),
        (
            "PATCH",
            one,
            "change some of a service's settings (enabled false disables it)",
            {
                "parameters": _SERVICE_ID,
                "requestBody": _body([], _SERVICE_SETTINGS),
                "responses": {**_ok(), **_CHANGE},
            },
        ),
        ("DELETE", one, "remove a service and its access rights",
         {"parameters": _SERVICE_ID, "responses": {**_ok(), **_CHANGE}}),
    ]  # fmt: skip


def _client_auth_operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    """Client-port authentication (docs/protocol.md, "Who is calling")."""
    changed = {**_ok(), **error_responses(400, 404)}
    return [
        (
            "GET",
            "/api/clients",
            "client subsystems' connection types, registered TLS certificates and issued"
            " client tokens (role admin or auditor)",
            {"responses": _ok()},
        ),
        (
            "PUT",
            f"{_CLIENT}/connection-type",
            "set how the client subsystem proves itself on the client port: HTTP (nothing),"
            " HTTPS_NO_AUTH (TLS only), HTTPS (TLS and a registered client certificate or a"
            " client token), TOKEN (a client token; plain HTTP only from the node's host)."
            " A node hosting several members answers 409 for HTTP and HTTPS_NO_AUTH unless"
            " its settings set [client] allow_unauthenticated",
            {
                "requestBody": _body(
                    ["connection_type"], {"connection_type": {"enum": _CONNECTION_TYPES}}
                ),
                "responses": {**changed, **error_responses(409)},
            },
        ),
        (
            "POST",
            f"{_CLIENT}/certificates",
            "register an information system's TLS client certificate (PEM) for the"
            " subsystem; answers its SHA-256 fingerprint",
            {
                "requestBody": _body(["certificate"], {"certificate": _STR}),
                "responses": {**_ok(status="201"), **error_responses(400, 404)},
            },
        ),
        (
            "DELETE",
            f"{_CLIENT}/certificates/{{sha256}}",
            "unregister a TLS client certificate by its SHA-256 fingerprint",
            {"responses": changed},
        ),
        (
            "POST",
            f"{_CLIENT}/tokens",
            "issue a client token (ES256 JWT) for the subsystem, sent by the information"
            " system in Renkei-Client-Token; the token is shown only in this answer",
            {
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "ttl_s": {
                                        "type": "integer", "minimum": 1, "maximum": 31622400
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {**_ok(status="201"), **error_responses(400, 404)},
            },
        ),
        (
            "DELETE",
            f"{_CLIENT}/tokens/{{token_id}}",
            "revoke a client token; applies to the next request",
            {"responses": changed},
        ),
    ]


def node_openapi() -> dict[str, Any]:
    get, post, delete = "GET", "POST", "DELETE"
    ops: list[tuple[str, str, str, dict[str, Any]]] = [
        (get, "/healthz", "the process is alive", {"responses": _ok()}),
        (
            get,
            "/readyz",
            "ready to serve (DESIGN §7); 503 with the failing checks",
            {
                "responses": {
                    **_ok(),
                    "503": {
                        "description": "not ready",
                        "content": {"application/json": {"schema": _OBJ}},
                    },
                }
            },
        ),
        (
            get,
            "/metrics",
            "Prometheus metrics",
            {
                "responses": {
                    "200": {"description": "ok", "content": {"text/plain": {"schema": _STR}}}
                }
            },
        ),
        (get, "/openapi.json", "this document", {"responses": _ok()}),
        (
            get,
            "/api/maintenance",
            "maintenance state and exchanges in flight",
            {"responses": _ok()},
        ),
        (
            "PUT",
            "/api/maintenance",
            "enter or leave maintenance mode",
            {
                "requestBody": _body(["enabled"], {"enabled": {"type": "boolean"}, "reason": _STR}),
                "responses": {**_ok(), **error_responses(400)},
            },
        ),
        (
            get,
            "/api/operator-log",
            "the operator trail: who changed what (`change`: before and after, or the request"
            " when the route does not say), when, result; hash-chained (`seq`, `prev_hash`,"
            " `entry_hash`)",
            {
                "parameters": _query("actor", "since", integers=("after_id", "limit")),
                "responses": {**_ok(), **error_responses(400)},
            },
        ),
        (
            get,
            "/api/operator-log/verify",
            "verify the operator trail's hash chain (role admin or auditor)",
            {
                "responses": {
                    **_ok(),
                    "409": {
                        "description": "chain broken: the first row that does not verify",
                        "content": {"application/json": {"schema": _OBJ}},
                    },
                }
            },
        ),
        (
            post,
            "/api/consents",
            "grant a consent (role consent or admin)",
            {
                "description": (
                    "Refused with policies.consent_invalid (400) unless it can apply: the "
                    "consumer is a subsystem or global group of the current global "
                    "configuration, the purpose is one that consumer (or a member of the "
                    "group) declared to this node, the period is not entirely in the past, "
                    "and every field is declared by the service (the error lists them). "
                    'fields ["*"] stands for every declared field, recorded expanded. The '
                    "receipt gives the purpose's text as well as its code."
                ),
                "requestBody": _body(
                    ["subject", "consumer", "service", "purpose", "fields"],
                    {
                        "subject": _STR,
                        "consumer": _STR,
                        "service": _STR,
                        "purpose": _STR,
                        "fields": _LIST,
                        "valid_from": _STR,
                        "valid_until": _STR,
                    },
                ),
                "responses": {**_ok(status="201"), **_CHANGE},
            },
        ),
        (
            get,
            "/api/consents",
            "list consents",
            {
                "parameters": _query("subject", "service", "include_inactive"),
                "responses": {**_ok(), **error_responses(400)},
            },
        ),
        (get, "/api/consents/{consent_id}", "one consent", {"responses": {**_ok(), **_CHANGE}}),
        (
            delete,
            "/api/consents/{consent_id}",
            "revoke a consent",
            {"responses": {**_ok(), **_CHANGE}},
        ),
        (
            get,
            "/api/access",
            "list access rights",
            {"parameters": _query("service"), "responses": {**_ok(), **error_responses(400)}},
        ),
        (
            post,
            "/api/access",
            "grant an access right",
            {
                "requestBody": _body(
                    ["service", "grantee"],
                    {"service": _STR, "grantee": _STR, "method": _STR, "path": _STR},
                ),
                "responses": {**_ok(status="201"), **_CHANGE},
            },
        ),
        (
            delete,
            "/api/access/{right_id}",
            "revoke an access right",
            {"responses": {**_ok(), **_CHANGE}},
        ),
        *_client_auth_operations(),
        (get, "/api/declarations", "service declarations", {"responses": _ok()}),
        *_service_operations(),
        (
            post,
            "/api/policy/apply",
            "apply a declarative policy file (its TOML text); with dry_run only list the "
            "changes, each with kind, key, action and before/after; applied in one "
            "transaction, recorded in the operator trail",
            {
                "requestBody": _body(
                    ["policy"], {"policy": _STR, "dry_run": {"type": "boolean"}, "source": _STR}
                ),
                "responses": {**_ok(), **_CHANGE},
            },
        ),
        (get, "/api/purposes", "purpose declarations", {"responses": _ok()}),
        (
            post,
            "/api/purposes",
            "declare a purpose",
            {
                "requestBody": _body(
                    ["consumer", "code", "text"], {"consumer": _STR, "code": _STR, "text": _STR}
                ),
                "responses": {**_ok(status="201"), **_CHANGE},
            },
        ),
        (
            get,
            "/api/audit/rows",
            "audit rows (role auditor or admin)",
            {
                "parameters": _query("message_id", integers=("after_seq", "limit")),
                "responses": {**_ok(), **error_responses(400)},
            },
        ),
        (
            get,
            "/api/audit/verify",
            "verify the audit chain",
            {
                "responses": {
                    **_ok(),
                    "409": {
                        "description": "chain broken",
                        "content": {"application/json": {"schema": _OBJ}},
                    },
                }
            },
        ),
        (get, "/api/audit/checkpoints", "signed, time-stamped checkpoints", {"responses": _ok()}),
        (
            get,
            "/api/audit/proof/{kind}",
            "Merkle inclusion or consistency proof",
            {
                "parameters": [
                    {
                        "name": "kind",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["inclusion", "consistency"]},
                    },
                    *_query(integers=("tree_size", "seq", "old")),
                ],
                "responses": {**_ok(), **_TEXT_400, **error_responses(404)},
            },
        ),
        (
            get,
            "/api/audit/export",
            "export bundle for offline verification",
            {
                "responses": {
                    "200": {
                        "description": "bundle",
                        "content": {"application/gzip": {"schema": _STR}},
                    }
                }
            },
        ),
        (
            get,
            "/api/audit/subject/{subject}",
            "data-subject report: who saw this person's data",
            # A subject with a line break matches no route: 404.
            {
                "description": (
                    "Every provider-side exchange that touched the subject, with its "
                    "relation: named (the request named them), released (a released "
                    "resource was about them) or withheld (their data was withheld "
                    "because the request named someone else)."
                ),
                "responses": {**_ok(), **_TEXT_400, **error_responses(404)},
            },
        ),
        (
            delete,
            "/api/audit/subject/{subject}/bodies",
            "erase the subject's logged bodies (role admin; the chain stays verifiable): "
            "destroys the subject's body key, deletes its bodies and makes the storage "
            "drop old row versions; answers bodies_erased, keys_destroyed and "
            "storage_released (false: SQLite's write-ahead file could not be truncated or "
            "PostgreSQL could not vacuum; the key is destroyed either way)",
            {"responses": {**_ok(), **error_responses(404)}},
        ),
        (
            get,
            "/api/audit/operational",
            "operational records (timings, sizes) per exchange",
            {
                "parameters": _query("service", "from", integers=("limit",)),
                "responses": {**_ok(), **_TEXT_400},
            },
        ),
    ]
    return build_openapi(
        "Renkei node management API",
        "Bearer JWTs issued by `renkei token issue` (roles admin, auditor, consent); "
        "rate limited per token (429 with Retry-After).",
        ops,
        secured=("/api/",),
        # The HTTP guard (gateway/guard.py) refuses framing, sizes and slow heads
        # before any route runs, with the node's JSON error body.
        every=error_responses(400, 408, 413, 414, 431),
    )

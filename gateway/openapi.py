"""The node's management API as OpenAPI 3.1 (served at ``/openapi.json``).

A test builds the management application and checks that every route is
described here and every described path is routed; another validates real
answers against the body schemas below.
"""

from __future__ import annotations

from typing import Any

from member_registry.openapi import build_openapi, error_responses, json_ok, query
from member_registry.openapi_schemas import (
    BOOL,
    COUNT,
    INT,
    NULLABLE_INT,
    NULLABLE_NUMBER,
    NULLABLE_STR,
    NUMBER,
    STR,
    STRINGS,
    array,
    obj,
    ref,
)

__all__ = ["node_openapi"]

_TIME_FILTER = "RFC 3339 time with its zone"


def _ok(schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return json_ok(schema, status)


def _query(*names: str, integers: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [query(n, STR) for n in names] + [query(n, COUNT) for n in integers]


def _time_range() -> list[dict[str, Any]]:
    """``from`` and ``to``: the audit queries' time window."""
    return [
        query("from", STR, f"from this time on ({_TIME_FILTER})"),
        query("to", STR, f"before this time ({_TIME_FILTER})"),
    ]


# A Merkle proof (RFC 6962): inclusion (seq, leaf_index) or consistency (old).
_PROOF = obj(
    {"tree_size": INT, "seq": INT, "leaf_index": INT, "old": INT, "proof": STRINGS},
    optional=("seq", "leaf_index", "old"),
)


def _body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": required, "properties": properties}
            }
        },
    }


_LIST = STRINGS
_CHANGE = {**error_responses(400, 404)}
_TEXT_400 = error_responses(400)


_CLIENT = "/api/clients/{instance}/{member_class}/{member_code}/{subsystem}"
_CONNECTION_TYPES = ["HTTP", "HTTPS_NO_AUTH", "HTTPS", "TOKEN"]

_CHECK = {
    "type": "object",
    "required": ["ok"],
    "properties": {"ok": BOOL, "error": STR},
    "description": "one readiness check; more keys say why",
}
_CONSENT = obj(
    {
        "id": STR,
        "subject": STR,
        "consumer": STR,
        "service": STR,
        "purpose": STR,
        "fields": STRINGS,
        "valid_from": NULLABLE_STR,
        "valid_until": NULLABLE_STR,
        "granted_at": NULLABLE_STR,
        "revoked_at": NULLABLE_STR,
        "decision": {"enum": ["permit", "deny"]},
        "depth": {**INT, "description": "nesting depth: the deepest matching rule decides"},
        "resource_types": STRINGS,
        "resources": {**STRINGS, "description": "specific resources, Type/id"},
        "labels": {**STRINGS, "description": "security labels on the data, system|code"},
        "data_from": NULLABLE_STR,
        "data_until": NULLABLE_STR,
        "actor": {**NULLABLE_STR, "description": "the person the consumer states (X-Road-UserId)"},
        "origin": {**NULLABLE_STR, "description": "the id of the FHIR Consent it came from"},
    },
    optional=(
        "decision",
        "depth",
        "resource_types",
        "resources",
        "labels",
        "data_from",
        "data_until",
        "actor",
        "origin",
    ),
)
_SIGNED_DOCUMENT: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "null when the node does not say who the controller is",
}
_CONSENT_GRANTED = obj(
    {
        "consent": ref("Consent"),
        "receipt": {**_SIGNED_DOCUMENT, "description": "the Kantara CR 1.1 consent receipt"},
        "receipt_jws": {**NULLABLE_STR, "description": "the receipt signed (compact JWS)"},
        "record": {**_SIGNED_DOCUMENT, "description": "the ISO/IEC TS 27560 consent record"},
        "record_jws": {**NULLABLE_STR, "description": "the record signed (compact JWS)"},
    }
)
_ACCESS_RIGHT = obj(
    {
        "id": NULLABLE_STR,
        "service": STR,
        "grantee": STR,
        "method": STR,
        "path": STR,
        "granted_at": NULLABLE_STR,
    }
)
_DECLARATION = obj(
    {
        "service": STR,
        "media_types": STRINGS,
        "fields": STRINGS,
        "public_fields": STRINGS,
        "consent_governed": BOOL,
        "subject": STR,
        "subject_fields": STRINGS,
        "impersonal": STRINGS,
        "response_headers": STRINGS,
        "description": STR,
    }
)
_SERVICE = obj(
    {
        "id": STR,
        "service_type": {"enum": ["REST", "OPENAPI"]},
        "backend": STR,
        "timeout_s": NUMBER,
        "enabled": BOOL,
        "path_parameters": BOOL,
        "title": STR,
        "description": STR,
        "openapi_source": NULLABLE_STR,
        "endpoints": array(obj({"method": STR, "path": STR})),
        "tls": obj({"verify": BOOL, "ca_pem": NULLABLE_STR}),
    }
)
_CLIENT_SUMMARY = obj(
    {
        "client": STR,
        "connection_type": {"enum": _CONNECTION_TYPES},
        "connection_type_set": BOOL,
        "certificates": array(
            obj({"sha256": STR, "subject": STR, "not_after": NULLABLE_STR,
                 "added_at": NULLABLE_STR})
        ),
        "tokens": array(
            obj({"token_id": STR, "issued_at": NULLABLE_STR, "expires_at": NULLABLE_STR,
                 "revoked_at": NULLABLE_STR})
        ),
    }
)  # fmt: skip
_AUDIT_ROW = obj(
    {
        "node_id": STR,
        "seq": INT,
        "logged_at": STR,
        "role": STR,
        "message_id": STR,
        "request_id": NULLABLE_STR,
        "client": NULLABLE_STR,
        "service": NULLABLE_STR,
        "method": NULLABLE_STR,
        "path": NULLABLE_STR,
        "peer_node": NULLABLE_STR,
        "user_id": NULLABLE_STR,
        "purpose": NULLABLE_STR,
        "subject": NULLABLE_STR,
        "request_hash": NULLABLE_STR,
        "request_body_sha256": NULLABLE_STR,
        "request_signature": NULLABLE_STR,
        "response_body_sha256": NULLABLE_STR,
        "response_signature": NULLABLE_STR,
        "status": NULLABLE_INT,
        "error_code": NULLABLE_STR,
        "consent": {**NULLABLE_STR, "description": "JSON text: what the consent stage decided"},
        "prev_hash": STR,
        "entry_hash": STR,
    },
    optional=("node_id",),
)
_CHECKPOINT = obj(
    {
        "tree_size": INT,
        "root": STR,
        "created_at": STR,
        "signed": {**STR, "description": "the checkpoint signed by the node (compact JWS)"},
        "cosignature": {**NULLABLE_STR, "description": "the witness's cosignature (JWS)"},
        "timestamp_token": {**NULLABLE_STR, "description": "RFC 3161 token, base64"},
    }
)
_SUBJECT_EXCHANGE = obj(
    {
        "when": STR,
        "node": STR,
        "consumer": NULLABLE_STR,
        "service": NULLABLE_STR,
        "purpose": NULLABLE_STR,
        "released": STRINGS,
        "withheld": STRINGS,
        "consent_ids": STRINGS,
        "outcome": STR,
        "message_id": STR,
        "relation": {"enum": ["named", "released", "withheld"]},
        "break_glass": {
            **STRINGS,
            "description": "deny rules an emergency purpose overrode (released under break-glass)",
        },
    },
    optional=("break_glass",),
)
_OPERATIONAL_RECORD = obj(
    {
        "node_id": STR,
        "seq": INT,
        "message_id": STR,
        "role": STR,
        "client": NULLABLE_STR,
        "service": NULLABLE_STR,
        "started_at": STR,
        "committed_at": STR,
        "duration_ms": NUMBER,
        "backend_ms": NULLABLE_NUMBER,
        "request_size": NULLABLE_INT,
        "response_size": NULLABLE_INT,
        "status": NULLABLE_INT,
        "error_code": NULLABLE_STR,
        "succeeded": BOOL,
    }
)
_BROKEN = obj({"ok": {"const": False}, "seq": INT, "error": STR})
_SCHEMAS: dict[str, dict[str, Any]] = {
    "Health": obj({"status": STR, "node": STR}),
    "Readiness": obj({"ready": BOOL, "checks": {"type": "object", "additionalProperties": _CHECK}}),
    "Maintenance": obj(
        {"enabled": BOOL, "since": NULLABLE_STR, "reason": NULLABLE_STR, "in_flight": INT}
    ),
    "OpenApiDocument": {
        "type": "object",
        "required": ["openapi", "info", "paths"],
        "properties": {"openapi": STR, "info": {"type": "object"}, "paths": {"type": "object"}},
    },
    "ChainBroken": _BROKEN,
    "Consent": _CONSENT,
    "ConsentGranted": _CONSENT_GRANTED,
    "AccessRight": _ACCESS_RIGHT,
    "Declaration": _DECLARATION,
    "Purpose": obj({"consumer": STR, "code": STR, "text": STR}),
    "FhirCode": obj(
        {
            "kind": {"enum": ["purpose", "actor", "base"]},
            "code": STR,
            "target": STR,
            "break_glass": {"type": "boolean"},
        }
    ),
    "Service": _SERVICE,
    "ClientSummary": _CLIENT_SUMMARY,
    "AuditRow": _AUDIT_ROW,
    "Checkpoint": _CHECKPOINT,
    "SubjectExchange": _SUBJECT_EXCHANGE,
    "OperationalRecord": _OPERATIONAL_RECORD,
}


_SERVICE_SETTINGS: dict[str, Any] = {
    "backend": {**STR, "description": (
        "the backend's http:// or https:// URL, or ngsi-ld:store for an NGSI-LD service "
        "the node answers from its own entities (docs/broker.md)"
    )},
    "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
    "path_parameters": {"type": "boolean"},
    "title": STR,
    "description": STR,
    "enabled": {"type": "boolean"},
    "openapi": {"type": ["object", "null"], "description": "an OpenAPI 3 description (JSON)"},
    "openapi_url": {**STR, "description": "where the node fetches the description, once"},
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
        "schema": STR,
    }
]


def _service_operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    """The node's services at runtime (docs/operations.md, "Services")."""
    one = "/api/services/{service_id}"
    return [
        ("GET", "/api/services", "the node's services (role admin, auditor or consent)",
         {"responses": _ok(obj({"services": array(ref("Service"))}))}),
        (
            "POST",
            "/api/services",
            "add a service: a plain REST service, or one whose OpenAPI description (openapi,"
            " or openapi_url fetched once) gives its endpoints; served at once, its"
            " provider subsystem must be hosted on this node (409: it exists)",
            {
                "requestBody": _body(["id", "backend"], {"id": STR, **_SERVICE_SETTINGS}),
                "responses": {**_ok(ref("Service"), "201"), **error_responses(400, 409)},
            },
        ),
        ("GET", one, "one service with its endpoints",
         {"parameters": _SERVICE_ID, "responses": {**_ok(ref("Service")), **_CHANGE}}),
        (
            "PATCH",
            one,
            "change some of a service's settings (enabled false disables it)",
            {
                "parameters": _SERVICE_ID,
                "requestBody": _body([], _SERVICE_SETTINGS),
                "responses": {**_ok(ref("Service")), **_CHANGE},
            },
        ),
        ("DELETE", one, "remove a service and its access rights",
         {"parameters": _SERVICE_ID,
          "responses": {**_ok(obj({"removed": STR, "access_rights_revoked": INT})),
                        **_CHANGE}}),
    ]  # fmt: skip


def _client_auth_operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    """Client-port authentication (docs/protocol.md, "Who is calling")."""

    def changed(schema: dict[str, Any]) -> dict[str, Any]:
        return {**_ok(schema), **error_responses(400, 404)}

    return [
        (
            "GET",
            "/api/clients",
            "client subsystems' connection types, registered TLS certificates and issued"
            " client tokens (role admin or auditor)",
            {
                "responses": _ok(
                    obj(
                        {
                            "clients": array(ref("ClientSummary")),
                            "default_connection_type": {"enum": _CONNECTION_TYPES},
                        }
                    )
                )
            },
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
                "responses": {
                    **changed(obj({"client": STR, "connection_type": {"enum": _CONNECTION_TYPES}})),
                    **error_responses(409),
                },
            },
        ),
        (
            "POST",
            f"{_CLIENT}/certificates",
            "register an information system's TLS client certificate (PEM) for the"
            " subsystem; answers its SHA-256 fingerprint",
            {
                "requestBody": _body(["certificate"], {"certificate": STR}),
                "responses": {
                    **_ok(obj({"client": STR, "sha256": STR}), "201"),
                    **error_responses(400, 404),
                },
            },
        ),
        (
            "DELETE",
            f"{_CLIENT}/certificates/{{sha256}}",
            "unregister a TLS client certificate by its SHA-256 fingerprint",
            {"responses": changed(obj({"client": STR, "removed": STR}))},
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
                                    "ttl_s": {"type": "integer", "minimum": 1, "maximum": 31622400}
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **_ok(
                        obj({"client": STR, "token": STR, "token_id": STR, "expires_at": STR}),
                        "201",
                    ),
                    **error_responses(400, 404),
                },
            },
        ),
        (
            "DELETE",
            f"{_CLIENT}/tokens/{{token_id}}",
            "revoke a client token; applies to the next request",
            {"responses": changed(obj({"client": STR, "revoked": STR}))},
        ),
    ]


def node_openapi() -> dict[str, Any]:
    get, post, put, delete = "GET", "POST", "PUT", "DELETE"
    ops: list[tuple[str, str, str, dict[str, Any]]] = [
        (get, "/healthz", "the process is alive", {"responses": _ok(ref("Health"))}),
        (
            get,
            "/readyz",
            "ready to serve (DESIGN §7); 503 with the failing checks",
            {
                "responses": {
                    **_ok(ref("Readiness")),
                    "503": {
                        "description": "not ready",
                        "content": {"application/json": {"schema": ref("Readiness")}},
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
                    "200": {"description": "ok", "content": {"text/plain": {"schema": STR}}}
                }
            },
        ),
        (get, "/openapi.json", "this document", {"responses": _ok(ref("OpenApiDocument"))}),
        (
            get,
            "/api/maintenance",
            "maintenance state and exchanges in flight",
            {"responses": _ok(ref("Maintenance"))},
        ),
        (
            "PUT",
            "/api/maintenance",
            "enter or leave maintenance mode",
            {
                "requestBody": _body(["enabled"], {"enabled": BOOL, "reason": STR}),
                "responses": {**_ok(ref("Maintenance")), **error_responses(400)},
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
                "responses": {**_ok(ref("OperatorLog")), **error_responses(400)},
            },
        ),
        (
            get,
            "/api/operator-log/verify",
            "verify the operator trail's hash chain (role admin or auditor)",
            {
                "responses": {
                    **_ok(obj({"ok": {"const": True}, "entries": INT})),
                    "409": {
                        "description": "chain broken: the first row that does not verify",
                        "content": {"application/json": {"schema": ref("ChainBroken")}},
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
                    "receipt gives the purpose's text as well as its code. With Content-Type "
                    "application/fhir+json the body is a FHIR R4 Consent for the service in the "
                    "service query parameter (root_type: permit or deny, where the resource "
                    "leaves the root rule's type out): imported as rules (201: origin, "
                    "consents, fhir), or refused whole with policies.fhir_consent_refused "
                    "(400) and problems naming each FHIR element the node cannot enforce."
                ),
                "parameters": _query("service", "root_type"),
                "requestBody": _body(
                    ["subject", "consumer", "service", "purpose", "fields"],
                    {
                        "subject": STR,
                        "consumer": STR,
                        "service": STR,
                        "purpose": STR,
                        "fields": _LIST,
                        "valid_from": STR,
                        "valid_until": STR,
                    },
                ),
                "responses": {**_ok(ref("ConsentGranted"), "201"), **_CHANGE},
            },
        ),
        (
            get,
            "/api/consents",
            "list consents",
            {
                "parameters": _query("subject", "service", "include_inactive"),
                "responses": {
                    **_ok(obj({"consents": array(ref("Consent"))})),
                    **error_responses(400),
                },
            },
        ),
        (
            get,
            "/api/consents/{consent_id}",
            "one consent",
            {
                "description": (
                    "With Accept: application/fhir+json, the consent (a rule id, or the id of "
                    "an imported FHIR Consent) as a FHIR R4 Consent that imports back to the "
                    "same rules."
                ),
                "responses": {**_ok(ref("Consent")), **_CHANGE},
            },
        ),
        (
            get,
            "/api/fhir-codes",
            "the FHIR mapping table (role admin, auditor or consent)",
            {"responses": _ok(obj({"codes": array(ref("FhirCode"))}))},
        ),
        (
            put,
            "/api/fhir-codes",
            "map a FHIR purpose (kind purpose: system|code -> purpose code, break_glass) or "
            "actor (kind actor: reference -> consumer, * or self), or set a service's base "
            "policy (kind base: service id -> opt-in or opt-out); role admin",
            {
                "requestBody": _body(
                    ["kind", "code", "target"],
                    {"kind": STR, "code": STR, "target": STR, "break_glass": {"type": "boolean"}},
                ),
                "responses": {**_ok(ref("FhirCode")), **_TEXT_400},
            },
        ),
        (
            delete,
            "/api/fhir-codes",
            "remove a row of the FHIR mapping table (role admin)",
            {
                "parameters": _query("kind", "code"),
                "responses": {
                    **_ok(obj({"removed": obj({"kind": STR, "code": STR})})),
                    **_TEXT_400,
                },
            },
        ),
        (
            post,
            "/api/citizen-links",
            "issue a resident's link to their console page (role consent or admin)",
            {
                "description": (
                    "A signed, expiring link naming exactly one data subject: opening "
                    "`path` on this management port starts a console session that shows "
                    "that subject's accesses and consents and nothing else. `ttl_s` "
                    "defaults to 7 days, at most 30 days. The operator trail records the "
                    "subject, expiry and link id, never the link."
                ),
                "requestBody": _body(
                    ["subject"], {"subject": STR, "ttl_s": {"type": "integer", "minimum": 1}}
                ),
                "responses": {
                    **_ok(
                        obj({"path": STR, "token": STR, "subject": STR, "expires_at": STR}),
                        status="201",
                    ),
                    **error_responses(400),
                },
            },
        ),
        (
            delete,
            "/api/consents/{consent_id}",
            "revoke a consent",
            {"responses": {**_ok(ref("Consent")), **_CHANGE}},
        ),
        (
            get,
            "/api/access",
            "list access rights",
            {
                "parameters": _query("service"),
                "responses": {
                    **_ok(obj({"access": array(ref("AccessRight"))})),
                    **error_responses(400),
                },
            },
        ),
        (
            post,
            "/api/access",
            "grant an access right",
            {
                "requestBody": _body(
                    ["service", "grantee"],
                    {"service": STR, "grantee": STR, "method": STR, "path": STR},
                ),
                "responses": {**_ok(ref("AccessRight"), "201"), **_CHANGE},
            },
        ),
        (
            delete,
            "/api/access/{right_id}",
            "revoke an access right",
            {"responses": {**_ok(obj({"revoked": STR})), **_CHANGE}},
        ),
        *_client_auth_operations(),
        (
            get,
            "/api/declarations",
            "service declarations",
            {"responses": _ok(obj({"declarations": array(ref("Declaration"))}))},
        ),
        *_service_operations(),
        (
            post,
            "/api/policy/apply",
            "apply a declarative policy file (its TOML text); with dry_run only list the "
            "changes, each with kind, key, action and before/after; applied in one "
            "transaction, recorded in the operator trail",
            {
                "requestBody": _body(["policy"], {"policy": STR, "dry_run": BOOL, "source": STR}),
                "responses": {
                    **_ok(
                        obj(
                            {
                                "applied": BOOL,
                                "changes": array(
                                    obj(
                                        {
                                            "kind": STR,
                                            "key": STR,
                                            "action": STR,
                                            "before": {},
                                            "after": {},
                                        }
                                    )
                                ),
                            }
                        )
                    ),
                    **_CHANGE,
                },
            },
        ),
        (
            get,
            "/api/purposes",
            "purpose declarations",
            {"responses": _ok(obj({"purposes": array(ref("Purpose"))}))},
        ),
        (
            post,
            "/api/purposes",
            "declare a purpose",
            {
                "requestBody": _body(
                    ["consumer", "code", "text"], {"consumer": STR, "code": STR, "text": STR}
                ),
                "responses": {**_ok(obj({"consumer": STR, "code": STR}), "201"), **_CHANGE},
            },
        ),
        (
            get,
            "/api/audit/rows",
            "audit rows (role auditor or admin)",
            {
                "parameters": [
                    *_query(
                        "message_id",
                        "client",
                        "service",
                        "subject",
                        integers=("after_seq", "limit"),
                    ),
                    *_time_range(),
                ],
                "responses": {
                    **_ok(obj({"node": STR, "rows": array(ref("AuditRow"))})),
                    **error_responses(400),
                },
            },
        ),
        (
            get,
            "/api/audit/verify",
            "verify the audit chain",
            {
                "responses": {
                    **_ok(obj({"ok": {"const": True}, "rows": INT})),
                    "409": {
                        "description": "chain broken",
                        "content": {"application/json": {"schema": ref("ChainBroken")}},
                    },
                }
            },
        ),
        (
            get,
            "/api/audit/checkpoints",
            "signed, time-stamped checkpoints",
            {"responses": _ok(obj({"node": STR, "checkpoints": array(ref("Checkpoint"))}))},
        ),
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
                "responses": {**_ok(_PROOF), **_TEXT_400, **error_responses(404)},
            },
        ),
        (
            get,
            "/api/audit/export",
            "export bundle for offline verification",
            {
                "parameters": _time_range(),
                "responses": {
                    "200": {
                        "description": "bundle",
                        "content": {"application/gzip": {"schema": STR}},
                    }
                },
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
                "responses": {
                    **_ok(obj({"subject": STR, "exchanges": array(ref("SubjectExchange"))})),
                    **_TEXT_400,
                    **error_responses(404),
                },
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
            {
                "responses": {
                    **_ok(
                        obj(
                            {
                                "subject": STR,
                                "bodies_erased": INT,
                                "keys_destroyed": INT,
                                "storage_released": BOOL,
                            }
                        )
                    ),
                    **error_responses(404),
                }
            },
        ),
        (
            get,
            "/api/audit/operational",
            "operational records (timings, sizes) per exchange",
            {
                "parameters": [*_query("service", integers=("limit",)), _time_range()[0]],
                "responses": {
                    **_ok(obj({"node": STR, "records": array(ref("OperationalRecord"))})),
                    **_TEXT_400,
                },
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
        schemas=_SCHEMAS,
    )

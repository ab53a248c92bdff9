"""JSON Schema building blocks shared by the registry's and the node's OpenAPI documents.

Both documents describe their bodies with these helpers and put named schemas in
``components/schemas``, so one shape (the Problem document, the operator trail) is
written once and referenced with ``$ref``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BOOL",
    "COUNT",
    "INT",
    "NULLABLE_INT",
    "NULLABLE_NUMBER",
    "NULLABLE_STR",
    "NUMBER",
    "SHARED_SCHEMAS",
    "STR",
    "STRINGS",
    "array",
    "obj",
    "ref",
]

STR: dict[str, Any] = {"type": "string"}
NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}
BOOL: dict[str, Any] = {"type": "boolean"}
INT: dict[str, Any] = {"type": "integer"}
NULLABLE_INT: dict[str, Any] = {"type": ["integer", "null"]}
NUMBER: dict[str, Any] = {"type": "number"}
NULLABLE_NUMBER: dict[str, Any] = {"type": ["number", "null"]}
# Sequence numbers and sizes: a signed 64-bit database integer, never negative.
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
STRINGS: dict[str, Any] = {"type": "array", "items": STR}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def obj(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object with these properties, all required except ``optional``.

    Further properties are allowed: a client written against this version keeps
    working when a later one adds a field.
    """
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


_OPERATOR_LOG_ENTRY = obj(
    {
        "id": INT,
        "at": {**STR, "description": "RFC 3339, UTC"},
        "actor": STR,
        "role": STR,
        "token_id": NULLABLE_STR,
        "method": STR,
        "action": STR,
        "target": STR,
        "status": INT,
        "result": STR,
        "source": NULLABLE_STR,
        "seq": NULLABLE_INT,
        "change": {**NULLABLE_STR, "description": "JSON text: before and after, or the request"},
        "prev_hash": NULLABLE_STR,
        "entry_hash": NULLABLE_STR,
    }
)

SHARED_SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": obj({"type": STR, "message": STR}),
    "OperatorLogEntry": _OPERATOR_LOG_ENTRY,
    "OperatorLog": obj({"entries": array(ref("OperatorLogEntry"))}),
}

"""NGSI-LD entities and attributes: validated, and held as the node stores them.

ETSI GS CIM 009 V1.8.1 clauses 4.5 (representations), 4.6 (data types and names),
5.2 (entity, Property, Relationship, GeoProperty and their kin).

The stored form is the normalized representation with every attribute and type
name expanded to its full IRI, so the store does not depend on any request's
``@context``. Input may be normalized or concise (clause 4.5.3); both end up the
same. System timestamps (``createdAt``, ``modifiedAt``) are the node's own: any
given by a producer are ignored (clause 5.2.2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.broker.errors import BadRequestData, OperationNotSupported
from gateway.broker.geoquery import GEOMETRY_TYPES, parse_geometry
from gateway.broker.ldcontext import ActiveContext

__all__ = [
    "ATTRIBUTE_TYPES",
    "NGSI_LD_NULL",
    "Entity",
    "check_entity_id",
    "check_name",
    "parse_attribute",
    "parse_entity",
]

Entity = dict[str, Any]  # {"id", "type", "createdAt", "modifiedAt", "attrs": {iri: attr}}
Attribute = dict[str, Any]

NGSI_LD_NULL = "urn:ngsi-ld:null"
ATTRIBUTE_TYPES = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
}
_CONTENT = {content: kind for kind, content in ATTRIBUTE_TYPES.items() if kind != "GeoProperty"}
# Members of an attribute that are not sub-attributes (clause 5.2.5 and kin).
_META = frozenset({"type", "datasetId", "observedAt", "unitCode", "objectType", "createdAt",
                   "modifiedAt", "instanceId", "lang", *ATTRIBUTE_TYPES.values()})
_SYSTEM = frozenset({"createdAt", "modifiedAt", "deletedAt", "instanceId"})
_ENTITY_RESERVED = frozenset({"id", "type", "@context", "scope", *_SYSTEM})
# Clause 4.6.2: characters a name may not contain; control characters neither.
_FORBIDDEN = re.compile(r"[<>\"'=;()\s\x00-\x1f\x7f]")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+")
_MAX_ID = 1024
_MAX_DEPTH = 8


def check_entity_id(value: Any, what: str = "an entity id") -> str:
    if not isinstance(value, str) or len(value) > _MAX_ID or not _URI.fullmatch(value):
        raise BadRequestData(f"{what} is a URI (clause 4.6.1): {str(value)[:100]!r}")
    return value


def check_name(value: Any, what: str = "a name") -> str:
    if not isinstance(value, str) or not value or len(value) > 512 or _FORBIDDEN.search(value):
        raise BadRequestData(f"{what} has characters clause 4.6.2 forbids: {str(value)[:100]!r}")
    return value


def check_datetime(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequestData(f"{what} is an ISO 8601 DateTime string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequestData(f"{what} is not an ISO 8601 DateTime: {value[:40]!r}") from exc
    if parsed.tzinfo is None:
        raise BadRequestData(f"{what} has a time zone (UTC, 'Z')")
    return value


def parse_entity(
    body: Any, ctx: ActiveContext, *, now: str, require_type: bool = True
) -> Entity:
    """A request's entity in the stored form; BadRequestData names what is wrong."""
    if not isinstance(body, dict):
        raise BadRequestData("an entity is a JSON object")
    entity_id = check_entity_id(body.get("id"))
    entity: Entity = {"id": entity_id, "createdAt": now, "modifiedAt": now, "attrs": {}}
    if "type" in body or require_type:
        entity["type"] = expand_type(body.get("type"), ctx)
    if "scope" in body:
        raise OperationNotSupported("entity scopes (clause 4.18) are not supported")
    entity["attrs"] = parse_attributes(body, ctx, now=now, reserved=_ENTITY_RESERVED)
    return entity


def expand_type(value: Any, ctx: ActiveContext) -> str:
    if isinstance(value, list):
        if len(value) != 1:
            raise OperationNotSupported("an entity has one type here (multi-typing, 4.16, not)")
        value = value[0]
    return ctx.expand(check_name(value, "an entity type"))


def parse_attributes(
    body: Mapping[str, Any], ctx: ActiveContext, *, now: str,
    reserved: frozenset[str] = _ENTITY_RESERVED, allow_null: bool = False,
) -> dict[str, Attribute | None]:
    """Attributes of a fragment by expanded name; None marks an NGSI-LD Null (delete)."""
    attrs: dict[str, Attribute | None] = {}
    for name, value in body.items():
        if name in reserved:
            continue
        check_name(name, "an attribute name")
        attrs[ctx.expand(name)] = parse_attribute(
            value, ctx, name=name, now=now, allow_null=allow_null
        )
    return attrs


def parse_attribute(
    value: Any, ctx: ActiveContext, *, name: str, now: str, allow_null: bool = False,
    depth: int = 0,
) -> Attribute | None:
    """One attribute, normalized or concise, in the stored form."""
    if depth > _MAX_DEPTH:
        raise BadRequestData(f"attribute {name!r} nests sub-attributes too deep")
    if value is None:
        raise BadRequestData(f"attribute {name!r} is null (clause 5.2.1)")
    if _is_null(value):
        if allow_null:
            return None
        raise BadRequestData(f"attribute {name!r} is an NGSI-LD Null outside a merge")
    if isinstance(value, list):
        if value and all(isinstance(item, dict) and _declares_kind(item) for item in value):
            raise OperationNotSupported(
                f"attribute {name!r} has several instances (datasetId, clause 4.5.5): not supported"
            )
        return _finish({"type": "Property", "value": value}, name, now)
    if not isinstance(value, dict):
        return _finish({"type": "Property", "value": value}, name, now)
    if value.get("type") in GEOMETRY_TYPES and "coordinates" in value:
        return _finish({"type": "GeoProperty", "value": value}, name, now)
    kind = value.get("type")
    if kind is None:
        kinds = [_CONTENT[member] for member in _CONTENT if member in value]
        if len(kinds) != 1:
            # A concise Property whose value is itself a JSON object.
            return _finish({"type": "Property", "value": value}, name, now)
        kind = kinds[0]
        if kind == "Property" and isinstance(value["value"], dict) and (
            value["value"].get("type") in GEOMETRY_TYPES
        ):
            kind = "GeoProperty"
    if kind not in ATTRIBUTE_TYPES:
        raise BadRequestData(f"attribute {name!r} has an unknown type {str(kind)[:60]!r}")
    content = ATTRIBUTE_TYPES[kind]
    if content not in value:
        raise BadRequestData(f"a {kind} ({name!r}) has {content!r}")
    attribute: Attribute = {"type": kind}
    for member, item in value.items():
        if member in _SYSTEM or member == "type":
            continue
        if member in _META:
            attribute[member] = _meta(kind, member, item, name, ctx)
        else:
            check_name(member, "a sub-attribute name")
            sub = parse_attribute(item, ctx, name=member, now=now, depth=depth + 1)
            assert sub is not None
            attribute[ctx.expand(member)] = sub
    return _finish(attribute, name, now)


def _declares_kind(item: dict[str, Any]) -> bool:
    return "datasetId" in item or item.get("type") in ATTRIBUTE_TYPES


def _is_null(value: Any) -> bool:
    if value == NGSI_LD_NULL:
        return True
    return isinstance(value, dict) and (
        value.get("value") == NGSI_LD_NULL or value.get("object") == NGSI_LD_NULL
    )


def _meta(kind: str, member: str, item: Any, name: str, ctx: ActiveContext) -> Any:
    content = ATTRIBUTE_TYPES[kind]
    if member in ATTRIBUTE_TYPES.values() and member != content:
        raise BadRequestData(f"a {kind} ({name!r}) has no {member!r}")
    if item is None:
        raise BadRequestData(f"{name}.{member} is null")
    match member:
        case "value" if kind == "GeoProperty":
            parse_geometry(item)
        case "object":
            check_entity_id(item, f"the object of {name!r}")
        case "objectList":
            if not isinstance(item, list):
                raise BadRequestData(f"the objectList of {name!r} is an array")
            for entry in item:
                check_entity_id(entry.get("object") if isinstance(entry, dict) else entry)
        case "valueList":
            if not isinstance(item, list):
                raise BadRequestData(f"the valueList of {name!r} is an array")
        case "languageMap":
            if not isinstance(item, dict) or not all(
                isinstance(v, str | list) for v in item.values()
            ):
                raise BadRequestData(f"the languageMap of {name!r} maps languages to strings")
        case "observedAt":
            check_datetime(item, f"{name}.observedAt")
        case "datasetId":
            check_entity_id(item, f"the datasetId of {name!r}")
            raise OperationNotSupported("datasetId (multi-attributes, 4.5.5) is not supported")
        case "unitCode":
            if not isinstance(item, str):
                raise BadRequestData(f"{name}.unitCode is a UN/CEFACT code string")
        case "objectType":
            return ctx.expand(check_name(item, "an objectType"))
        case "vocab":
            return ctx.expand(check_name(item, "a vocab value")) if isinstance(item, str) else item
    return item


def _finish(attribute: Attribute, name: str, now: str) -> Attribute:
    if attribute["type"] == "Property" and isinstance(attribute.get("value"), dict) and (
        attribute["value"].get("type") in GEOMETRY_TYPES
    ):
        raise BadRequestData(f"{name!r} holds a geometry: make it a GeoProperty")
    if attribute["type"] == "Property" and attribute.get("value") is None:
        raise BadRequestData(f"the Property {name!r} has a value")
    attribute["createdAt"] = now
    attribute["modifiedAt"] = now
    return attribute


def merge_attribute(old: Attribute, new: Attribute) -> Attribute:
    """PATCH on one attribute (clause 5.6.4): members given replace, others stay."""
    merged = {**old, **{k: v for k, v in new.items() if k != "createdAt"}}
    if new["type"] != old["type"]:
        merged = {**new, "createdAt": old.get("createdAt", new["createdAt"])}
    return merged


def replaced(old: Attribute | None, new: Attribute) -> Attribute:
    """An attribute replaced whole, keeping when it was first created."""
    if old is None:
        return new
    return {**new, "createdAt": old.get("createdAt", new["createdAt"])}

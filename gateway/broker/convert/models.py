"""NGSI-LD normalized entities as plain dicts, and the small builders for their parts.

An entity is ``{"id": ..., "type": ..., "@context": [...], <attribute>: {...}}`` as
ETSI GS CIM 009 clause 4.5.2 (normalized representation) writes it: every attribute
is a ``Property`` (``value``), a ``GeoProperty`` (a GeoJSON ``value``) or a
``Relationship`` (``object``), optionally with ``observedAt`` and ``unitCode``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

__all__ = [
    "Entity",
    "entity",
    "entity_id",
    "geo_property",
    "id_part",
    "is_attribute_name",
    "point",
    "prop",
    "relationship",
    "timestamp",
]

Entity = dict[str, Any]

# Characters left as they are in an id part: RFC 8141's unreserved set; everything
# else (":" and "%" included) is percent-encoded, so distinct GTFS ids never share
# an entity id and an id's parts can be told apart at the colons.
_ID_SAFE = "-._~!$&'()*+,;=@"
# An attribute name is a term: letters, digits, "_" (GS CIM 009 clause 4.6.2), not
# one of the names NGSI-LD keeps for itself.
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,255}")
_RESERVED = frozenset({"id", "type", "scope", "location", "observationSpace",
                       "operationSpace", "createdAt", "modifiedAt", "observedAt",
                       "unitCode", "datasetId", "instanceId", "value", "object"})


def id_part(raw: str) -> str:
    """One part of an entity id: a source identifier, percent-encoded where needed."""
    return quote(raw, safe=_ID_SAFE)


def entity_id(entity_type: str, *parts: str) -> str:
    """``urn:ngsi-ld:{type}:{part}:{part}...`` with every part percent-encoded."""
    return ":".join(["urn:ngsi-ld", entity_type, *(id_part(p) for p in parts)])


def is_attribute_name(name: str) -> bool:
    return bool(_ATTRIBUTE_NAME.fullmatch(name)) and name not in _RESERVED


def entity(entity_id_: str, entity_type: str, context: list[str]) -> Entity:
    return {"id": entity_id_, "type": entity_type, "@context": list(context)}


def prop(
    value: Any, *, observed_at: str | None = None, unit_code: str | None = None
) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "Property", "value": value}
    if observed_at is not None:
        attribute["observedAt"] = observed_at
    if unit_code is not None:
        attribute["unitCode"] = unit_code
    return attribute


def relationship(target: str | list[str]) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def point(longitude: float, latitude: float) -> dict[str, Any]:
    """A GeoJSON Point, refusing coordinates outside the WGS 84 ranges."""
    if not (math.isfinite(latitude) and -90.0 <= latitude <= 90.0):
        raise ValueError(f"latitude {latitude!r} is outside -90..90")
    if not (math.isfinite(longitude) and -180.0 <= longitude <= 180.0):
        raise ValueError(f"longitude {longitude!r} is outside -180..180")
    return {"type": "Point", "coordinates": [longitude, latitude]}


def geo_property(geometry: dict[str, Any], *, observed_at: str | None = None) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "GeoProperty", "value": geometry}
    if observed_at is not None:
        attribute["observedAt"] = observed_at
    return attribute


def timestamp(moment: datetime) -> str:
    """An ``observedAt`` value: UTC, ISO 8601, ``Z``; naive times are refused."""
    if moment.tzinfo is None:
        raise ValueError("a time without a UTC offset is ambiguous")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

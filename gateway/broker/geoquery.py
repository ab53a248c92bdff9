"""Geo-queries, ETSI GS CIM 009 V1.8.1 clause 4.10 (parameters in clause 6.4.3.2).

A geo-query is ``georel`` (``near;maxDistance==m``, ``near;minDistance==m``,
``within``, ``contains``, ``intersects``, ``equals``, ``disjoint``, ``overlaps``),
a ``geometry`` with its ``coordinates`` (GeoJSON order: longitude, latitude) and the
``geoproperty`` it applies to (``location`` by default).

The store narrows candidates with a bounding box on indexed numeric columns; the
exact test is made here with shapely. Distances are in metres on a local
equirectangular projection around the query geometry, which errs by well under
1 % across a city (tens of kilometres) and is what ``near`` is used for.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import shapely
import shapely.errors
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from gateway.broker.errors import BadRequestData

__all__ = [
    "GEOMETRY_TYPES",
    "BoundingBox",
    "GeoQuery",
    "bounding_box",
    "parse_geo_query",
    "parse_geometry",
]

GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)
QUERY_GEOMETRIES = frozenset({"Point", "Polygon", "LineString", "MultiPolygon"})
_RELATIONS = frozenset(
    {"near", "within", "contains", "intersects", "equals", "disjoint", "overlaps"}
)
_EARTH_RADIUS_M = 6_371_008.8
_METRES_PER_DEGREE = math.pi * _EARTH_RADIUS_M / 180
_MAX_COORDINATES = 10_000

BoundingBox = tuple[float, float, float, float]  # min lon, min lat, max lon, max lat


def parse_geometry(value: Any) -> BaseGeometry:
    """A GeoJSON geometry (RFC 7946) as shapely; BadRequestData if it is not one."""
    if not isinstance(value, dict) or value.get("type") not in GEOMETRY_TYPES:
        raise BadRequestData(
            "a GeoProperty's value is a GeoJSON geometry: " + ", ".join(sorted(GEOMETRY_TYPES))
        )
    coordinates = value.get("coordinates")
    if not isinstance(coordinates, list):
        raise BadRequestData("a GeoJSON geometry has a coordinates array")
    _check_positions(coordinates, 0)
    try:
        geometry = shape(value)
    except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException) as exc:
        raise BadRequestData(f"invalid {value['type']} coordinates: {exc}") from exc
    if geometry.is_empty:
        raise BadRequestData(f"the {value['type']} has no coordinates")
    if value["type"] in {"Polygon", "MultiPolygon"} and not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        raise BadRequestData(f"the {value['type']} is not valid: {reason}")
    return geometry


def _check_positions(node: Any, count: int) -> int:
    if node and all(isinstance(x, int | float) and not isinstance(x, bool) for x in node):
        if len(node) not in (2, 3):
            raise BadRequestData("a GeoJSON position has two or three numbers")
        lon, lat = node[0], node[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not all(map(math.isfinite, node)):
            raise BadRequestData("a position is longitude -180..180, latitude -90..90")
        return count + 1
    if not isinstance(node, list) or not node:
        raise BadRequestData("GeoJSON coordinates are nested arrays of positions")
    for item in node:
        count = _check_positions(item, count)
        if count > _MAX_COORDINATES:
            raise BadRequestData(f"a geometry is limited to {_MAX_COORDINATES} positions")
    return count


def bounding_box(geometry: BaseGeometry) -> BoundingBox:
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    return float(min_lon), float(min_lat), float(max_lon), float(max_lat)


@dataclass(frozen=True)
class GeoQuery:
    relation: str
    geometry: BaseGeometry
    geoproperty: str  # the attribute name as given; the caller expands it
    max_distance: float | None = None
    min_distance: float | None = None

    def candidate_box(self) -> BoundingBox | None:
        """A box every match lies in (for the index), or None when none can be given."""
        if self.relation == "disjoint" or (self.relation == "near" and self.max_distance is None):
            return None
        min_lon, min_lat, max_lon, max_lat = bounding_box(self.geometry)
        if self.relation == "near" and self.max_distance is not None:
            lat_pad = self.max_distance / _METRES_PER_DEGREE
            widest = max(abs(min_lat), abs(max_lat)) + lat_pad
            cos = math.cos(math.radians(min(widest, 89.9)))
            lon_pad = self.max_distance / (_METRES_PER_DEGREE * cos)
            return (max(min_lon - lon_pad, -180), max(min_lat - lat_pad, -90),
                    min(max_lon + lon_pad, 180), min(max_lat + lat_pad, 90))
        return min_lon, min_lat, max_lon, max_lat

    def matches(self, candidate: BaseGeometry) -> bool:
        query = self.geometry
        match self.relation:
            case "near":
                distance = self._metres_between(candidate)
                if self.max_distance is not None and distance > self.max_distance:
                    return False
                return self.min_distance is None or distance >= self.min_distance
            case "within":
                return bool(candidate.within(query))
            case "contains":
                return bool(candidate.contains(query))
            case "intersects":
                return bool(candidate.intersects(query))
            case "equals":
                return bool(candidate.equals(query))
            case "disjoint":
                return bool(candidate.disjoint(query))
            case "overlaps":
                return bool(candidate.overlaps(query))
        raise AssertionError(self.relation)

    def _metres_between(self, candidate: BaseGeometry) -> float:
        origin = self.geometry.centroid
        scale_x = _METRES_PER_DEGREE * math.cos(math.radians(origin.y))

        def project(coordinates: Any) -> Any:
            return (coordinates - [origin.x, origin.y]) * [scale_x, _METRES_PER_DEGREE]

        return float(
            shapely.transform(self.geometry, project).distance(
                shapely.transform(candidate, project)
            )
        )


def parse_geo_query(
    georel: str | None, geometry: str | None, coordinates: str | None, geoproperty: str | None
) -> GeoQuery | None:
    """The geo-query of a request's parameters; None when it has none."""
    if georel is None and geometry is None and coordinates is None:
        if geoproperty is not None:
            raise BadRequestData("geoproperty is given only with georel, geometry, coordinates")
        return None
    if georel is None or geometry is None or coordinates is None:
        raise BadRequestData("a geo-query needs georel, geometry and coordinates together")
    relation, *modifiers = georel.split(";")
    if relation not in _RELATIONS:
        raise BadRequestData(f"georel {relation!r} is not one of {', '.join(sorted(_RELATIONS))}")
    max_distance = min_distance = None
    for modifier in modifiers:
        name, sep, number = modifier.partition("==")
        if relation != "near" or not sep or name not in {"maxDistance", "minDistance"}:
            raise BadRequestData(f"georel modifier {modifier!r} is not understood")
        try:
            distance = float(number)
        except ValueError as exc:
            raise BadRequestData(f"{name} is a number of metres") from exc
        if not math.isfinite(distance) or distance < 0:
            raise BadRequestData(f"{name} is a non-negative number of metres")
        if name == "maxDistance":
            max_distance = distance
        else:
            min_distance = distance
    if relation == "near" and max_distance is None and min_distance is None:
        raise BadRequestData("near needs maxDistance or minDistance")
    if geometry not in QUERY_GEOMETRIES:
        raise BadRequestData(
            f"geometry {geometry!r} is not one of {', '.join(sorted(QUERY_GEOMETRIES))}"
        )
    if relation == "near" and geometry != "Point":
        raise BadRequestData("near is measured from a Point")
    try:
        parsed = json.loads(coordinates)
    except ValueError as exc:
        raise BadRequestData("coordinates is a JSON array") from exc
    shaped = parse_geometry({"type": geometry, "coordinates": parsed})
    return GeoQuery(
        relation=relation,
        geometry=shaped,
        geoproperty=geoproperty or "location",
        max_distance=max_distance,
        min_distance=min_distance,
    )

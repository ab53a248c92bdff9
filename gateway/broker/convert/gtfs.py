"""A GTFS static feed into Smart Data Models UrbanMobility entities.

Each GTFS record becomes one NGSI-LD entity of the matching Smart Data Models type
(``dataModel.UrbanMobility``), with the attribute names of its published schema and
ids ``urn:ngsi-ld:{type}:{feed}:{gtfs id}``:

==================  =====================================  =========================
GTFS file           entity type                            id parts after the feed
==================  =====================================  =========================
agency.txt          GtfsAgency                             agency_id (``default``
                                                           for a lone agency
                                                           without one)
stops.txt           GtfsStop (location_type 0, 3, 4),      stop_id
                    GtfsStation (1), GtfsAccessPoint (2)
routes.txt          GtfsRoute                              route_id
calendar.txt        GtfsService + GtfsCalendarRule         service_id
calendar_dates.txt  GtfsService + GtfsCalendarDateRule     service_id, date
shapes.txt          GtfsShape (a LineString)               shape_id
trips.txt           GtfsTrip                               trip_id
stop_times.txt      GtfsStopTime                           trip_id, stop_sequence
frequencies.txt     GtfsFrequency                          trip_id, start_time (HHMMSS)
transfers.txt       GtfsTransferRule                       from/to stop, route, trip
==================  =====================================  =========================

The feed is read twice, one row at a time: a first pass checks every field and
every reference and counts the entities; only when it found nothing wrong does
``GtfsConversion.entities()`` hand them out, so a bad feed never yields a single
entity. Memory holds the feed's identifiers (and the points of its shapes), never
its rows.
"""

from __future__ import annotations

import itertools
import re
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.broker.convert._feedfiles import DEFAULT_MAX_FEED_BYTES, FeedFiles, Row
from gateway.broker.convert.contexts import CORE_CONTEXT, URBAN_MOBILITY_CONTEXT
from gateway.broker.convert.errors import FeedError
from gateway.broker.convert.models import (
    Entity,
    entity,
    entity_id,
    geo_property,
    point,
    prop,
    relationship,
)

__all__ = ["CONVERTED_FILES", "FEED_ID", "GtfsConversion", "convert_gtfs"]

FEED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CONVERTED_FILES = (
    "agency.txt", "stops.txt", "routes.txt", "calendar.txt", "calendar_dates.txt",
    "shapes.txt", "trips.txt", "stop_times.txt", "frequencies.txt", "transfers.txt",
)
_REQUIRED_FILES = ("agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt")
_CONTEXT = [URBAN_MOBILITY_CONTEXT, CORE_CONTEXT]
_LONE_AGENCY = "default"
_STOP_TYPES = {0: "GtfsStop", 1: "GtfsStation", 2: "GtfsAccessPoint", 3: "GtfsStop", 4: "GtfsStop"}
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class GtfsConversion:
    """A checked feed: what it converts to, and the entities on demand."""

    feed_id: str
    counts: Mapping[str, int]
    ignored_files: tuple[str, ...]
    _files: FeedFiles = field(repr=False)
    _source: str | None = field(repr=False)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def entities(self) -> Iterator[Entity]:
        """The entities, read again from the feed in the order of the table above."""
        return _Walk(self._files, self.feed_id, self._source).run()


def convert_gtfs(
    path: str | Path,
    feed_id: str,
    *,
    source: str | None = None,
    max_bytes: int = DEFAULT_MAX_FEED_BYTES,
) -> GtfsConversion:
    """Check the feed at ``path`` (a zip archive or a directory) completely.

    ``feed_id`` names the feed inside every entity id; ``source`` (the feed's URL)
    fills the agencies' ``source`` attribute, which otherwise is the agency's URL.
    Raises ``FeedError`` naming the file, line and field of the first fault.
    """
    if not FEED_ID.fullmatch(feed_id):
        raise FeedError(
            f"feed id {feed_id!r} must be 1..64 letters, digits, '.', '_' or '-'"
        )
    files = FeedFiles(Path(path), max_bytes=max_bytes)
    counts: Counter[str] = Counter()
    for converted in _Walk(files, feed_id, source).run():
        counts[converted["type"]] += 1
    ignored = tuple(sorted(n for n in files.names if n not in CONVERTED_FILES))
    return GtfsConversion(feed_id, dict(counts), ignored, files, source)


class _Walk:
    """One pass over a feed; the indexes it builds check the references of later files."""

    def __init__(self, files: FeedFiles, feed_id: str, source: str | None) -> None:
        self.files = files
        self.feed = feed_id
        self.source = source
        self.agencies: set[str] = set()
        self.stop_types: dict[str, int] = {}
        self.stop_parents: dict[str, str] = {}
        self.routes: set[str] = set()
        self.services: set[str] = set()
        self.shapes: set[str] = set()
        self.trips: set[str] = set()

    def id(self, entity_type: str, *parts: str) -> str:
        return entity_id(entity_type, self.feed, *parts)

    def new(self, entity_type: str, *parts: str) -> Entity:
        return entity(self.id(entity_type, *parts), entity_type, _CONTEXT)

    def stop_id(self, stop: str) -> str:
        return self.id(_STOP_TYPES[self.stop_types[stop]], stop)

    def run(self) -> Iterator[Entity]:
        for name in _REQUIRED_FILES:
            if not self.files.has(name):
                raise FeedError("required file missing from the feed", source=name)
        if not (self.files.has("calendar.txt") or self.files.has("calendar_dates.txt")):
            raise FeedError("the feed needs calendar.txt or calendar_dates.txt",
                            source="calendar.txt")
        yield from self.agency()
        self.index_stops()
        yield from self.stops()
        yield from self.route_rows()
        yield from self.calendar()
        yield from self.calendar_dates()
        yield from self.shape_rows()
        yield from self.trip_rows()
        yield from self.stop_times()
        yield from self.frequencies()
        yield from self.transfers()

    # agency.txt --------------------------------------------------------------
    def agency(self) -> Iterator[Entity]:
        rows = 0
        anonymous = False
        for row in self.files.rows("agency.txt", ("agency_name", "agency_url",
                                                  "agency_timezone")):
            rows += 1
            agency = row.text("agency_id")
            anonymous = anonymous or agency is None
            if anonymous and rows > 1:
                raise row.error("agency_id", "agency_id is required when a feed has "
                                "several agencies")
            key = agency if agency is not None else _LONE_AGENCY
            if key in self.agencies:
                raise row.error("agency_id", f"duplicate agency_id {key!r}")
            self.agencies.add(key)
            url = row.url("agency_url")
            e = self.new("GtfsAgency", key)
            _put(e, "name", row.required("agency_name"))
            _put(e, "page", url)
            _put(e, "timezone", row.required("agency_timezone"))
            _put(e, "language", row.text("agency_lang"))
            _put(e, "phone", row.text("agency_phone"))
            _put(e, "agency_fare_url", row.url("agency_fare_url"))
            _put(e, "agency_email", row.text("agency_email"))
            _put(e, "source", self.source or url)
            yield e
        if rows == 0:
            raise FeedError("the feed has no agency", source="agency.txt")

    # stops.txt ---------------------------------------------------------------
    def index_stops(self) -> None:
        for row in self.files.rows("stops.txt", ("stop_id",)):
            stop = row.required("stop_id")
            if stop in self.stop_types:
                raise row.error("stop_id", f"duplicate stop_id {stop!r}")
            self.stop_types[stop] = row.choice("location_type", range(5)) or 0
            parent = row.text("parent_station")
            if parent is not None:
                self.stop_parents[stop] = parent

    def stops(self) -> Iterator[Entity]:
        children: dict[str, list[str]] = {}
        access_points: dict[str, list[str]] = {}
        for stop, parent in self.stop_parents.items():
            kind = self.stop_types[stop]
            if kind == 0 and self.stop_types.get(parent) == 1:
                children.setdefault(parent, []).append(self.stop_id(stop))
            elif kind == 2 and self.stop_types.get(parent) == 1:
                access_points.setdefault(parent, []).append(self.stop_id(stop))
        for row in self.files.rows("stops.txt", ("stop_id",)):
            stop = row.required("stop_id")
            kind = self.stop_types[stop]
            e = self.new(_STOP_TYPES[kind], stop)
            name = row.text("stop_name")
            if name is None and kind <= 2:
                raise row.error("stop_name", "a value is required for this location_type")
            _put(e, "name", name)
            location = _stop_location(row, required=kind <= 2)
            if location is not None:
                e["location"] = geo_property(location)
            _put(e, "code", row.text("stop_code"))
            _put(e, "description", row.text("stop_desc"))
            _put(e, "zoneCode", row.text("zone_id"))
            _put(e, "page", row.url("stop_url"))
            _put(e, "timezone", row.text("stop_timezone"))
            wheelchair = row.choice("wheelchair_boarding", range(3))
            _put(e, "wheelChairAccessible", None if wheelchair is None else str(wheelchair))
            parent_id = row.text("parent_station")
            if parent_id is not None:
                self._check_parent(row, kind, parent_id)
                e["hasParentStation"] = relationship(self.stop_id(parent_id))
            elif kind >= 2:
                raise row.error("parent_station", "a value is required for this location_type")
            if stop in children:
                e["hasStop"] = relationship(children[stop])
            if stop in access_points:
                e["hasAccessPoint"] = relationship(access_points[stop])
            yield e

    def _check_parent(self, row: Row, kind: int, parent: str) -> None:
        if kind == 1:
            raise row.error("parent_station", "a station cannot have a parent station")
        if parent not in self.stop_types:
            raise row.error("parent_station", f"no stop {parent!r} in stops.txt")
        wanted = 0 if kind == 4 else 1
        if self.stop_types[parent] != wanted:
            raise row.error("parent_station",
                            f"{parent!r} has location_type {self.stop_types[parent]}, "
                            f"not {wanted}")

    # routes.txt --------------------------------------------------------------
    def route_rows(self) -> Iterator[Entity]:
        for row in self.files.rows("routes.txt", ("route_id", "route_type")):
            route = row.required("route_id")
            if route in self.routes:
                raise row.error("route_id", f"duplicate route_id {route!r}")
            self.routes.add(route)
            e = self.new("GtfsRoute", route)
            short, long = row.text("route_short_name"), row.text("route_long_name")
            if short is None and long is None:
                raise row.error("route_short_name",
                                "route_short_name or route_long_name is required")
            _put(e, "shortName", short)
            _put(e, "name", long)
            _put(e, "description", row.text("route_desc"))
            route_type = row.integer("route_type")
            if route_type is None:
                raise row.error("route_type", "a value is required")
            _put(e, "routeType", str(route_type))
            _put(e, "page", row.url("route_url"))
            _put(e, "routeColor", row.color("route_color"))
            _put(e, "routeTextColor", row.color("route_text_color"))
            _put(e, "routeSortOrder", row.integer("route_sort_order"))
            _put_code(e, "continuous_pickup", row.choice("continuous_pickup", range(4)))
            _put_code(e, "continuous_drop_off", row.choice("continuous_drop_off", range(4)))
            e["operatedBy"] = relationship(self.id("GtfsAgency", self._agency_of(row)))
            yield e

    def _agency_of(self, row: Row) -> str:
        agency = row.text("agency_id")
        if agency is None:
            if len(self.agencies) != 1:
                raise row.error("agency_id", "agency_id is required when a feed has "
                                "several agencies")
            return next(iter(self.agencies))
        if agency not in self.agencies:
            raise row.error("agency_id", f"no agency {agency!r} in agency.txt")
        return agency

    # calendar.txt, calendar_dates.txt ----------------------------------------
    def _service(self, service: str) -> Iterator[Entity]:
        if service not in self.services:
            self.services.add(service)
            e = self.new("GtfsService", service)
            _put(e, "name", service)
            yield e

    def calendar(self) -> Iterator[Entity]:
        if not self.files.has("calendar.txt"):
            return
        seen: set[str] = set()
        for row in self.files.rows("calendar.txt", ("service_id", *_DAYS, "start_date",
                                                    "end_date")):
            service = row.required("service_id")
            if service in seen:
                raise row.error("service_id", f"duplicate service_id {service!r}")
            seen.add(service)
            e = self.new("GtfsCalendarRule", service)
            e["hasService"] = relationship(self.id("GtfsService", service))
            for day in _DAYS:
                flag = row.choice(day, range(2))
                if flag is None:
                    raise row.error(day, "a value is required")
                e[day] = prop(flag == 1)
            start, end = row.day("start_date"), row.day("end_date")
            if start is None or end is None:
                raise row.error("start_date" if start is None else "end_date",
                                "a value is required")
            if end < start:
                raise row.error("end_date", "end_date is before start_date")
            e["startDate"] = prop(start)
            e["endDate"] = prop(end)
            yield from self._service(service)
            yield e

    def calendar_dates(self) -> Iterator[Entity]:
        if not self.files.has("calendar_dates.txt"):
            return
        seen: set[tuple[str, str]] = set()
        for row in self.files.rows("calendar_dates.txt",
                                   ("service_id", "date", "exception_type")):
            service = row.required("service_id")
            day = row.day("date")
            if day is None:
                raise row.error("date", "a value is required")
            if (service, day) in seen:
                raise row.error("date", f"a second rule for {service!r} on {day}")
            seen.add((service, day))
            exception = row.integer("exception_type", low=1, high=2)
            if exception is None:
                raise row.error("exception_type", "a value is required")
            e = self.new("GtfsCalendarDateRule", service, day)
            e["hasService"] = relationship(self.id("GtfsService", service))
            e["appliesOn"] = prop(day)
            e["exceptionType"] = prop(str(exception))
            yield from self._service(service)
            yield e

    # shapes.txt --------------------------------------------------------------
    def shape_rows(self) -> Iterator[Entity]:
        if not self.files.has("shapes.txt"):
            return
        points: dict[str, list[tuple[int, float, float, float | None, int]]] = {}
        for row in self.files.rows("shapes.txt", ("shape_id", "shape_pt_lat",
                                                  "shape_pt_lon", "shape_pt_sequence")):
            shape = row.required("shape_id")
            sequence = row.integer("shape_pt_sequence")
            if sequence is None:
                raise row.error("shape_pt_sequence", "a value is required")
            location = _point(row, "shape_pt_lat", "shape_pt_lon", required=True)
            assert location is not None
            lon, lat = location["coordinates"]
            travelled = row.number("shape_dist_traveled", low=0.0)
            points.setdefault(shape, []).append((sequence, lon, lat, travelled, row.line))
        for shape, path in points.items():
            path.sort()
            for before, after in itertools.pairwise(path):
                if before[0] == after[0]:
                    raise FeedError(f"shape {shape!r} has point {after[0]} twice",
                                    source="shapes.txt", line=after[4],
                                    field="shape_pt_sequence")
            if len(path) < 2:
                raise FeedError(f"shape {shape!r} has fewer than two points",
                                source="shapes.txt", line=path[0][4], field="shape_id")
            self.shapes.add(shape)
            e = self.new("GtfsShape", shape)
            e["location"] = geo_property(
                {"type": "LineString", "coordinates": [[p[1], p[2]] for p in path]}
            )
            distances = [p[3] for p in path]
            if all(d is not None for d in distances):
                e["distanceTravelled"] = prop(distances)
            yield e

    # trips.txt ---------------------------------------------------------------
    def trip_rows(self) -> Iterator[Entity]:
        for row in self.files.rows("trips.txt", ("route_id", "service_id", "trip_id")):
            trip = row.required("trip_id")
            if trip in self.trips:
                raise row.error("trip_id", f"duplicate trip_id {trip!r}")
            self.trips.add(trip)
            e = self.new("GtfsTrip", trip)
            e["hasRoute"] = relationship(self.id("GtfsRoute", _known(row, "route_id",
                                                                     self.routes)))
            e["hasService"] = relationship(self.id("GtfsService", _known(
                row, "service_id", self.services)))
            shape = row.text("shape_id")
            if shape is not None:
                e["hasShape"] = relationship(self.id("GtfsShape", _known(row, "shape_id",
                                                                         self.shapes)))
            _put(e, "headSign", row.text("trip_headsign"))
            _put(e, "shortName", row.text("trip_short_name"))
            _put(e, "direction", row.choice("direction_id", range(2)))
            _put(e, "block", row.text("block_id"))
            _put(e, "wheelChairAccessible", row.choice("wheelchair_accessible", range(3)))
            _put(e, "bikesAllowed", row.choice("bikes_allowed", range(3)))
            yield e

    # stop_times.txt ----------------------------------------------------------
    def stop_times(self) -> Iterator[Entity]:
        # The sequences seen per trip, packed: the only state that grows with the file.
        sequences: dict[str, array[int]] = {}
        for row in self.files.rows("stop_times.txt", ("trip_id", "stop_id",
                                                      "stop_sequence")):
            trip = _known(row, "trip_id", self.trips)
            stop = row.required("stop_id")
            if stop not in self.stop_types:
                raise row.error("stop_id", f"no stop {stop!r} in stops.txt")
            if self.stop_types[stop] != 0:
                raise row.error("stop_id", f"{stop!r} is not a stop or platform "
                                f"(location_type {self.stop_types[stop]})")
            sequence = row.integer("stop_sequence")
            if sequence is None:
                raise row.error("stop_sequence", "a value is required")
            seen = sequences.setdefault(trip, array("q"))
            if sequence in seen:
                raise row.error("stop_sequence", f"trip {trip!r} has stop_sequence "
                                f"{sequence} twice")
            seen.append(sequence)
            e = self.new("GtfsStopTime", trip, str(sequence))
            e["hasTrip"] = relationship(self.id("GtfsTrip", trip))
            e["hasStop"] = relationship(self.stop_id(stop))
            e["stopSequence"] = prop(sequence)
            _put(e, "arrivalTime", row.clock("arrival_time"))
            _put(e, "departureTime", row.clock("departure_time"))
            _put(e, "stopHeadsign", row.text("stop_headsign"))
            _put_code(e, "pickupType", row.choice("pickup_type", range(4)))
            _put_code(e, "dropOffType", row.choice("drop_off_type", range(4)))
            _put_code(e, "continuous_pickup", row.choice("continuous_pickup", range(4)))
            _put_code(e, "continuous_drop_off", row.choice("continuous_drop_off", range(4)))
            _put_code(e, "timepoint", row.choice("timepoint", range(2)))
            _put(e, "distanceTravelled", row.number("shape_dist_traveled", low=0.0))
            yield e

    # frequencies.txt ---------------------------------------------------------
    def frequencies(self) -> Iterator[Entity]:
        if not self.files.has("frequencies.txt"):
            return
        seen: set[tuple[str, str]] = set()
        for row in self.files.rows("frequencies.txt", ("trip_id", "start_time",
                                                       "end_time", "headway_secs")):
            trip = _known(row, "trip_id", self.trips)
            start, end = row.clock("start_time"), row.clock("end_time")
            if start is None or end is None:
                raise row.error("start_time" if start is None else "end_time",
                                "a value is required")
            if (trip, start) in seen:
                raise row.error("start_time", f"trip {trip!r} has two frequencies "
                                f"starting at {start}")
            seen.add((trip, start))
            headway = row.integer("headway_secs", low=1)
            if headway is None:
                raise row.error("headway_secs", "a value is required")
            e = self.new("GtfsFrequency", trip, start.replace(":", ""))
            e["hasTrip"] = relationship(self.id("GtfsTrip", trip))
            e["startTime"] = prop(start)
            e["endTime"] = prop(end)
            e["headwaySeconds"] = prop(headway)
            exact = row.choice("exact_times", range(2))
            _put(e, "exactTimes", None if exact is None else exact == 1)
            yield e

    # transfers.txt -----------------------------------------------------------
    def transfers(self) -> Iterator[Entity]:
        if not self.files.has("transfers.txt"):
            return
        seen: set[tuple[str, ...]] = set()
        for row in self.files.rows("transfers.txt", ("from_stop_id", "to_stop_id")):
            key = (
                _known_or_none(row, "from_stop_id", self.stop_types),
                _known_or_none(row, "to_stop_id", self.stop_types),
                _known_or_none(row, "from_route_id", self.routes),
                _known_or_none(row, "to_route_id", self.routes),
                _known_or_none(row, "from_trip_id", self.trips),
                _known_or_none(row, "to_trip_id", self.trips),
            )
            parts = tuple(part or "" for part in key)
            if parts in seen:
                raise row.error(None, "a second transfer with the same stops, routes "
                                "and trips")
            seen.add(parts)
            last = max((i for i, part in enumerate(parts) if part), default=-1)
            e = self.new("GtfsTransferRule", *parts[: last + 1])
            if key[0] is not None:
                e["hasOrigin"] = relationship(self.stop_id(key[0]))
            if key[1] is not None:
                e["hasDestination"] = relationship(self.stop_id(key[1]))
            e["transferType"] = prop(str(row.choice("transfer_type", range(6)) or 0))
            _put(e, "minimumTransferTime", row.integer("min_transfer_time"))
            yield e


def _put(e: Entity, name: str, value: Any) -> None:
    if value is not None:
        e[name] = prop(value)


def _put_code(e: Entity, name: str, value: int | None) -> None:
    # The schemas give these enumerations as strings ("0".."3").
    if value is not None:
        e[name] = prop(str(value))


def _known(row: Row, name: str, known: set[str] | dict[str, int]) -> str:
    value = row.required(name)
    if value not in known:
        raise row.error(name, f"{value!r} is not defined in the feed")
    return value


def _known_or_none(row: Row, name: str, known: set[str] | dict[str, int]) -> str | None:
    return None if row.text(name) is None else _known(row, name, known)


def _point(row: Row, lat_field: str, lon_field: str, *, required: bool) -> dict[str, Any] | None:
    lat = row.number(lat_field, low=-90.0, high=90.0)
    lon = row.number(lon_field, low=-180.0, high=180.0)
    if lat is None or lon is None:
        if required or (lat is None) != (lon is None):
            raise row.error(lat_field if lat is None else lon_field, "a value is required")
        return None
    return point(lon, lat)


def _stop_location(row: Row, *, required: bool) -> dict[str, Any] | None:
    return _point(row, "stop_lat", "stop_lon", required=required)

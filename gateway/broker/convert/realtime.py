"""GTFS-Realtime vehicle positions into Smart Data Models ``Vehicle`` entities.

One ``Vehicle`` per ``VehiclePosition`` of a ``FeedMessage`` (decoded with the
``gtfs-realtime-bindings`` protobuf classes), id ``urn:ngsi-ld:Vehicle:{feed}:{vehicle
id}``. Position, bearing and speed are observations: they carry ``observedAt`` (the
position's timestamp, else the header's). Speed arrives in m/s and is written in
km/h, the unit the Smart Data Models ``Vehicle`` schema gives, with its UN/CEFACT
code. The trip and route become relationships to the static feed's ``GtfsTrip`` and
``GtfsRoute`` entities of the same feed id. Trip updates and alerts are not
vehicle positions and are passed over.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2

from gateway.broker.convert.contexts import (
    CORE_CONTEXT,
    TRANSPORTATION_CONTEXT,
    URBAN_MOBILITY_CONTEXT,
)
from gateway.broker.convert.errors import RealtimeError
from gateway.broker.convert.gtfs import FEED_ID
from gateway.broker.convert.models import (
    Entity,
    entity,
    entity_id,
    geo_property,
    point,
    prop,
    relationship,
    timestamp,
)

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "convert_vehicle_positions"]

# Real feeds of a city's fleet are well under a megabyte.
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Transportation after UrbanMobility: where both define a term (speed, bearing,
# vehicleType), the Vehicle model's meaning wins; hasTrip/hasRoute come from
# UrbanMobility.
_CONTEXT = [URBAN_MOBILITY_CONTEXT, TRANSPORTATION_CONTEXT, CORE_CONTEXT]
_KILOMETRES_PER_HOUR = "KMH"
_DEGREES = "DD"


def convert_vehicle_positions(
    message: bytes,
    feed_id: str,
    *,
    vehicle_type: str = "bus",
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> list[Entity]:
    """All vehicles of ``message``, or ``RealtimeError`` naming the entity and field."""
    if not FEED_ID.fullmatch(feed_id):
        raise RealtimeError(f"feed id {feed_id!r} must be 1..64 letters, digits, '.', "
                            "'_' or '-'")
    if len(message) > max_bytes:
        raise RealtimeError(f"the message is larger than {max_bytes} bytes")
    feed = gtfs_realtime_pb2.FeedMessage()
    try:
        feed.ParseFromString(message)
    except DecodeError as exc:
        raise RealtimeError(f"not a GTFS-Realtime FeedMessage: {exc}") from exc
    # The decoder accepts a message that lacks required fields (even an empty one).
    if not feed.IsInitialized():
        raise RealtimeError("not a GTFS-Realtime FeedMessage: required fields missing")
    header_time = feed.header.timestamp if feed.header.HasField("timestamp") else None
    vehicles: list[Entity] = []
    seen: set[str] = set()
    for index, item in enumerate(feed.entity):
        if not item.HasField("vehicle") or item.is_deleted:
            continue
        converted = _vehicle(item, f"entity[{index}]", feed_id, vehicle_type, header_time)
        if converted["id"] in seen:
            raise RealtimeError("a second position for the same vehicle",
                                source=f"entity[{index}]", field="vehicle.vehicle.id")
        seen.add(converted["id"])
        vehicles.append(converted)
    return vehicles


def _vehicle(
    item: gtfs_realtime_pb2.FeedEntity,
    where: str,
    feed_id: str,
    vehicle_type: str,
    header_time: int | None,
) -> Entity:
    position = item.vehicle
    descriptor = position.vehicle
    key = descriptor.id or item.id
    if not key:
        raise RealtimeError("neither the vehicle nor the entity has an id", source=where,
                            field="vehicle.vehicle.id")
    e = entity(entity_id("Vehicle", feed_id, key), "Vehicle", _CONTEXT)
    e["vehicleType"] = prop(vehicle_type)
    if descriptor.id:
        e["fleetVehicleId"] = prop(descriptor.id)
    if descriptor.label:
        e["name"] = prop(descriptor.label)
    if descriptor.license_plate:
        e["license_plate"] = prop(descriptor.license_plate)
    seconds = position.timestamp if position.HasField("timestamp") else header_time
    observed = _observed_at(seconds, where) if seconds else None
    if position.HasField("position"):
        where_position = "vehicle.position"
        try:
            location = point(position.position.longitude, position.position.latitude)
        except ValueError as exc:
            raise RealtimeError(str(exc), source=where, field=where_position) from None
        e["location"] = geo_property(location, observed_at=observed)
        if position.position.HasField("bearing"):
            bearing = position.position.bearing
            if not (math.isfinite(bearing) and 0.0 <= bearing < 360.0):
                raise RealtimeError(f"bearing {bearing!r} is outside 0..360",
                                    source=where, field="vehicle.position.bearing")
            e["bearing"] = prop(round(bearing, 3), observed_at=observed, unit_code=_DEGREES)
        if position.position.HasField("speed"):
            speed = position.position.speed
            if not (math.isfinite(speed) and speed >= 0.0):
                raise RealtimeError(f"speed {speed!r} is not a speed", source=where,
                                    field="vehicle.position.speed")
            e["speed"] = prop(round(speed * 3.6, 3), observed_at=observed,
                              unit_code=_KILOMETRES_PER_HOUR)
    if position.HasField("trip"):
        if position.trip.trip_id:
            e["hasTrip"] = relationship(entity_id("GtfsTrip", feed_id, position.trip.trip_id))
        if position.trip.route_id:
            e["hasRoute"] = relationship(
                entity_id("GtfsRoute", feed_id, position.trip.route_id)
            )
    return e


def _observed_at(seconds: int, where: str) -> str:
    try:
        return timestamp(datetime.fromtimestamp(seconds, tz=UTC))
    except (OverflowError, OSError, ValueError):
        raise RealtimeError(f"timestamp {seconds} is not a time", source=where,
                            field="vehicle.timestamp") from None

"""GTFS-Realtime vehicle positions into Vehicle entities, messages built with the bindings."""

from __future__ import annotations

import math

import pytest
from google.transit import gtfs_realtime_pb2
from hypothesis import given
from hypothesis import strategies as st

from gateway.broker.convert.contexts import (
    CORE_CONTEXT,
    TRANSPORTATION_CONTEXT,
    URBAN_MOBILITY_CONTEXT,
    context_terms,
)
from gateway.broker.convert.errors import RealtimeError
from gateway.broker.convert.realtime import convert_vehicle_positions
from gateway.cli import main

FEED = "demo"


def _message(*vehicles: dict[str, object], header_time: int | None = 1_700_000_000) -> bytes:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    if header_time is not None:
        feed.header.timestamp = header_time
    for number, spec in enumerate(vehicles):
        item = feed.entity.add()
        item.id = str(spec.get("entity_id", f"e{number}"))
        position = item.vehicle
        if "vehicle_id" in spec:
            position.vehicle.id = str(spec["vehicle_id"])
        if "label" in spec:
            position.vehicle.label = str(spec["label"])
        if "plate" in spec:
            position.vehicle.license_plate = str(spec["plate"])
        if "lat" in spec:
            position.position.latitude = float(spec["lat"])  # type: ignore[arg-type]
            position.position.longitude = float(spec["lon"])  # type: ignore[arg-type]
        for name in ("bearing", "speed"):
            if name in spec:
                setattr(position.position, name, spec[name])
        if "time" in spec:
            position.timestamp = int(spec["time"])  # type: ignore[call-overload]
        if "trip" in spec:
            position.trip.trip_id = str(spec["trip"])
        if "route" in spec:
            position.trip.route_id = str(spec["route"])
    return feed.SerializeToString()


BUS = {"vehicle_id": "bus-7", "label": "Route 10", "plate": "NV 1234", "lat": 36.9,
       "lon": -116.75, "bearing": 90.0, "speed": 10.0, "time": 1_700_000_123,
       "trip": "AB1", "route": "AB"}


def test_a_vehicle_position_becomes_a_vehicle_with_observations() -> None:
    (vehicle,) = convert_vehicle_positions(_message(BUS), FEED)
    observed = "2023-11-14T22:15:23.000Z"
    assert vehicle["id"] == "urn:ngsi-ld:Vehicle:demo:bus-7"
    assert vehicle["type"] == "Vehicle"
    assert vehicle["@context"] == [URBAN_MOBILITY_CONTEXT, TRANSPORTATION_CONTEXT,
                                   CORE_CONTEXT]
    assert vehicle["location"]["type"] == "GeoProperty"
    assert vehicle["location"]["observedAt"] == observed
    longitude, latitude = vehicle["location"]["value"]["coordinates"]
    assert math.isclose(longitude, -116.75, abs_tol=1e-5)
    assert math.isclose(latitude, 36.9, abs_tol=1e-5)
    assert vehicle["bearing"] == {"type": "Property", "value": 90.0, "observedAt": observed,
                                  "unitCode": "DD"}
    # 10 m/s is 36 km/h, the unit of the Smart Data Models Vehicle's speed.
    assert vehicle["speed"] == {"type": "Property", "value": 36.0, "observedAt": observed,
                                "unitCode": "KMH"}
    assert vehicle["hasTrip"] == {"type": "Relationship",
                                  "object": "urn:ngsi-ld:GtfsTrip:demo:AB1"}
    assert vehicle["hasRoute"]["object"] == "urn:ngsi-ld:GtfsRoute:demo:AB"
    assert vehicle["name"]["value"] == "Route 10"
    assert vehicle["license_plate"]["value"] == "NV 1234"
    assert vehicle["vehicleType"]["value"] == "bus"
    terms = context_terms(URBAN_MOBILITY_CONTEXT) | context_terms(TRANSPORTATION_CONTEXT)
    assert set(vehicle) - {"id", "type", "@context"} <= terms


def test_the_header_time_stands_in_for_a_missing_position_time() -> None:
    bus = {k: v for k, v in BUS.items() if k != "time"}
    (vehicle,) = convert_vehicle_positions(_message(bus, header_time=1_700_000_000), FEED)
    assert vehicle["location"]["observedAt"] == "2023-11-14T22:13:20.000Z"
    (vehicle,) = convert_vehicle_positions(_message(bus, header_time=None), FEED)
    assert "observedAt" not in vehicle["location"]


def test_the_entity_id_stands_in_for_a_missing_vehicle_id() -> None:
    (vehicle,) = convert_vehicle_positions(
        _message({"entity_id": "x:1", "lat": 1, "lon": 2}), FEED)
    assert vehicle["id"] == "urn:ngsi-ld:Vehicle:demo:x%3A1"
    assert "fleetVehicleId" not in vehicle


def test_trip_updates_and_alerts_are_passed_over() -> None:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(_message(BUS))
    update = feed.entity.add()
    update.id = "u1"
    update.trip_update.trip.trip_id = "AB1"
    alert = feed.entity.add()
    alert.id = "a1"
    alert.alert.header_text.translation.add().text = "detour"
    vehicles = convert_vehicle_positions(feed.SerializeToString(), FEED)
    assert [v["id"] for v in vehicles] == ["urn:ngsi-ld:Vehicle:demo:bus-7"]


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"lat": 95.0}, "vehicle.position", "latitude"),
        ({"lon": -181.0}, "vehicle.position", "longitude"),
        ({"lon": math.nan}, "vehicle.position", "longitude"),
        ({"bearing": 360.5}, "vehicle.position.bearing", "outside"),
        ({"speed": -1.0}, "vehicle.position.speed", "not a speed"),
        ({"speed": math.inf}, "vehicle.position.speed", "not a speed"),
        ({"time": 2**63 - 1}, "vehicle.timestamp", "not a time"),
    ],
)
def test_impossible_values_are_refused_naming_entity_and_field(change, field, problem) -> None:
    good = {**BUS, "vehicle_id": "ok"}
    with pytest.raises(RealtimeError, match=problem) as caught:
        convert_vehicle_positions(_message(good, {**BUS, **change}), FEED)
    assert (caught.value.source, caught.value.field) == ("entity[1]", field)
    assert caught.value.code == "broker.convert.bad_realtime"


def test_two_positions_of_one_vehicle_are_refused() -> None:
    with pytest.raises(RealtimeError, match="same vehicle") as caught:
        convert_vehicle_positions(_message(BUS, BUS), FEED)
    assert caught.value.source == "entity[1]"


def test_a_vehicle_without_any_id_is_refused() -> None:
    with pytest.raises(RealtimeError, match="neither the vehicle nor the entity"):
        convert_vehicle_positions(_message({"entity_id": "", "lat": 1, "lon": 2}), FEED)


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"\xff\xff\xff", "not a GTFS-Realtime FeedMessage"),
        (_message(BUS)[:-5], "not a GTFS-Realtime FeedMessage"),
        (gtfs_realtime_pb2.FeedMessage().SerializePartialToString(), "not a GTFS-Realtime"),
    ],
)
def test_what_is_not_a_feed_message_is_refused(message, problem) -> None:
    with pytest.raises(RealtimeError, match=problem):
        convert_vehicle_positions(message, FEED)


def test_a_message_over_the_bound_is_refused_before_decoding() -> None:
    with pytest.raises(RealtimeError, match="larger than 10 bytes"):
        convert_vehicle_positions(_message(BUS), FEED, max_bytes=10)


def test_a_bad_feed_id_is_refused() -> None:
    with pytest.raises(RealtimeError, match="feed id"):
        convert_vehicle_positions(_message(BUS), "a:b")


@given(st.binary(max_size=400))
def test_arbitrary_bytes_decode_or_are_refused(message: bytes) -> None:
    try:
        vehicles = convert_vehicle_positions(message, FEED)
    except RealtimeError:
        return
    assert all(v["type"] == "Vehicle" for v in vehicles)


def test_the_command_line_converts_a_message(tmp_path, capsys) -> None:
    message = tmp_path / "positions.pb"
    message.write_bytes(_message(BUS, {**BUS, "vehicle_id": "bus-8"}))
    out = tmp_path / "vehicles.jsonl"
    assert main(["broker", "convert", "gtfs-rt", str(message), "--feed-id", FEED,
                 "--vehicle-type", "minibus", "--out", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    assert '"Vehicle": 2' in capsys.readouterr().err
    message.write_bytes(b"\x00garbage")
    assert main(["broker", "convert", "gtfs-rt", str(message), "--feed-id", FEED,
                 "--out", str(out)]) == 1
    assert "[broker.convert.bad_realtime]" in capsys.readouterr().err

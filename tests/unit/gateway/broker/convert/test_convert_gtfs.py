"""GTFS static feeds into UrbanMobility entities: checked against an independent reader."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import gtfs_kit  # an independent GTFS reader, to check the conversion loses nothing
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.broker.convert.contexts import (
    CORE_CONTEXT,
    URBAN_MOBILITY_CONTEXT,
    bundled_context_urls,
    context_terms,
)
from gateway.broker.convert.errors import FeedError
from gateway.broker.convert.gtfs import convert_gtfs
from gateway.broker.convert.models import entity_id, id_part
from tests.unit.gateway.broker.convert.gtfs_helpers import (
    SAMPLE_FEED,
    copy_sample,
    read_table,
    scaled_feed,
    set_cell,
    write_table,
    zip_feed,
)

FEED = "demo"


def _by_type(entities: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    grouped: dict[str, dict[str, dict[str, Any]]] = {}
    for item in entities:
        grouped.setdefault(item["type"], {})[item["id"]] = item
    return grouped


def _value(item: dict[str, Any], name: str) -> Any:
    attribute = item.get(name)
    if attribute is None:
        return None
    return attribute["object"] if attribute["type"] == "Relationship" else attribute["value"]


def _clock(raw: str) -> str:
    hours, minutes, seconds = raw.split(":")
    return f"{int(hours):02d}:{minutes}:{seconds}"


@pytest.fixture(scope="module")
def sample() -> list[dict[str, Any]]:
    return list(convert_gtfs(SAMPLE_FEED, FEED).entities())


@pytest.fixture(scope="module")
def reference() -> Any:
    return gtfs_kit.read_feed(SAMPLE_FEED, dist_units="km")


def test_every_stop_is_present_with_its_name_and_position(sample, reference) -> None:
    stops = _by_type(sample)["GtfsStop"]
    assert len(stops) == len(reference.stops)
    for stop in reference.stops.itertuples():
        item = stops[entity_id("GtfsStop", FEED, stop.stop_id)]
        assert _value(item, "name") == stop.stop_name
        assert _value(item, "location") == {
            "type": "Point", "coordinates": [stop.stop_lon, stop.stop_lat]
        }


def test_every_route_is_present_with_its_names_type_and_agency(sample, reference) -> None:
    routes = _by_type(sample)["GtfsRoute"]
    assert len(routes) == len(reference.routes)
    for route in reference.routes.itertuples():
        item = routes[entity_id("GtfsRoute", FEED, route.route_id)]
        assert _value(item, "shortName") == route.route_short_name
        assert _value(item, "name") == route.route_long_name
        assert _value(item, "routeType") == str(route.route_type)
        assert _value(item, "operatedBy") == entity_id("GtfsAgency", FEED, route.agency_id)


def test_every_trip_is_present_with_its_route_and_service(sample, reference) -> None:
    trips = _by_type(sample)["GtfsTrip"]
    assert len(trips) == len(reference.trips)
    for trip in reference.trips.itertuples():
        item = trips[entity_id("GtfsTrip", FEED, trip.trip_id)]
        assert _value(item, "hasRoute") == entity_id("GtfsRoute", FEED, trip.route_id)
        assert _value(item, "hasService") == entity_id("GtfsService", FEED, trip.service_id)
        assert _value(item, "direction") == (
            None if pd.isna(trip.direction_id) else int(trip.direction_id)
        )


def test_every_stop_time_is_present_with_its_times(sample, reference) -> None:
    stop_times = _by_type(sample)["GtfsStopTime"]
    assert len(stop_times) == len(reference.stop_times)
    for row in reference.stop_times.itertuples():
        item = stop_times[entity_id("GtfsStopTime", FEED, row.trip_id, str(row.stop_sequence))]
        assert _value(item, "hasStop") == entity_id("GtfsStop", FEED, row.stop_id)
        assert _value(item, "hasTrip") == entity_id("GtfsTrip", FEED, row.trip_id)
        assert _value(item, "arrivalTime") == _clock(row.arrival_time)
        assert _value(item, "departureTime") == _clock(row.departure_time)


def test_agencies_services_and_frequencies_are_present(sample, reference) -> None:
    grouped = _by_type(sample)
    assert set(grouped["GtfsAgency"]) == {
        entity_id("GtfsAgency", FEED, a) for a in reference.agency.agency_id
    }
    services = set(reference.calendar.service_id) | set(reference.calendar_dates.service_id)
    assert set(grouped["GtfsService"]) == {entity_id("GtfsService", FEED, s) for s in services}
    assert len(grouped["GtfsCalendarRule"]) == len(reference.calendar)
    assert len(grouped["GtfsCalendarDateRule"]) == len(reference.calendar_dates)
    assert len(grouped["GtfsFrequency"]) == len(reference.frequencies)
    assert len(grouped["GtfsTransferRule"]) == len(reference.transfers)


def test_entities_use_only_terms_of_the_published_context(sample) -> None:
    terms = context_terms(URBAN_MOBILITY_CONTEXT)
    assert URBAN_MOBILITY_CONTEXT in bundled_context_urls()
    for item in sample:
        assert item["@context"] == [URBAN_MOBILITY_CONTEXT, CORE_CONTEXT]
        assert item["type"] in terms
        for name, attribute in item.items():
            if name in ("id", "type", "@context"):
                continue
            assert name in terms, (item["type"], name)
            assert attribute["type"] in ("Property", "GeoProperty", "Relationship")


def test_counts_match_the_entities_and_unconverted_files_are_named(tmp_path) -> None:
    conversion = convert_gtfs(SAMPLE_FEED, FEED)
    entities = list(conversion.entities())
    assert conversion.total == len(entities) == len({e["id"] for e in entities})
    assert "translations.txt" in conversion.ignored_files
    assert "stops.txt" not in conversion.ignored_files


def test_a_zip_archive_converts_like_the_directory(tmp_path, sample) -> None:
    archive = zip_feed(SAMPLE_FEED, tmp_path / "feed.zip")
    assert list(convert_gtfs(archive, FEED).entities()) == sample


def test_stations_link_their_stops_both_ways(tmp_path) -> None:
    feed = copy_sample(tmp_path)
    header, rows = read_table(feed / "stops.txt")
    header += ["location_type", "parent_station"]
    rows = [[*r, "", "STATION" if r[0] == "BULLFROG" else ""] for r in rows]
    rows.append(["STATION", "Bullfrog Station", "", "36.88", "-116.81", "", "", "1", ""])
    write_table(feed / "stops.txt", header, rows)
    grouped = _by_type(list(convert_gtfs(feed, FEED).entities()))
    station = grouped["GtfsStation"][entity_id("GtfsStation", FEED, "STATION")]
    stop_id = entity_id("GtfsStop", FEED, "BULLFROG")
    assert _value(station, "hasStop") == [stop_id]
    assert _value(grouped["GtfsStop"][stop_id], "hasParentStation") == station["id"]


def test_a_larger_feed_converts_without_loss(tmp_path) -> None:
    feed = scaled_feed(tmp_path, 40)
    reference = gtfs_kit.read_feed(feed, dist_units="km")
    grouped = _by_type(list(convert_gtfs(feed, FEED).entities()))
    assert set(grouped["GtfsStop"]) == {entity_id("GtfsStop", FEED, s)
                                        for s in reference.stops.stop_id}
    assert set(grouped["GtfsRoute"]) == {entity_id("GtfsRoute", FEED, r)
                                         for r in reference.routes.route_id}
    assert set(grouped["GtfsTrip"]) == {entity_id("GtfsTrip", FEED, t)
                                        for t in reference.trips.trip_id}
    assert len(grouped["GtfsStopTime"]) == len(reference.stop_times)


def test_memory_does_not_grow_with_the_entities(tmp_path) -> None:
    # 400 copies: 11,200 stop times; holding them as entities would take tens of MB.
    feed = scaled_feed(tmp_path, 400)
    conversion = convert_gtfs(feed, FEED)
    tracemalloc.start()
    try:
        size = sum(len(json.dumps(item)) for item in conversion.entities())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert conversion.counts["GtfsStopTime"] == 28 * 400
    assert peak < size / 4, (peak, size)


# -- refusals: each names the file, line and field ----------------------------

CELL_FAULTS = [
    ("stops.txt", 0, "stop_lat", "north", "not a number"),
    ("stops.txt", 1, "stop_lat", "91", "outside"),
    ("stops.txt", 2, "stop_lon", "-180.5", "outside"),
    ("stops.txt", 3, "stop_name", "", "a value is required"),
    ("stops.txt", 4, "stop_id", "FUR_CREEK_RES", "duplicate stop_id"),
    ("stops.txt", 0, "location_type", "7", "outside"),
    ("stops.txt", 0, "parent_station", "NOWHERE", "no stop"),
    ("stops.txt", 0, "stop_url", "javascript:alert(1)", "not an http(s) URL"),
    ("routes.txt", 1, "agency_id", "ELSEWHERE", "no agency"),
    ("routes.txt", 2, "route_type", "bus", "not an integer"),
    ("routes.txt", 0, "route_color", "red", "not a colour"),
    ("trips.txt", 3, "route_id", "NO_ROUTE", "not defined"),
    ("trips.txt", 4, "service_id", "NO_SERVICE", "not defined"),
    ("trips.txt", 5, "direction_id", "2", "outside"),
    ("trips.txt", 6, "shape_id", "NO_SHAPE", "not defined"),
    ("stop_times.txt", 5, "trip_id", "GHOST", "not defined"),
    ("stop_times.txt", 6, "stop_id", "NOWHERE", "no stop"),
    ("stop_times.txt", 7, "arrival_time", "25:61:00", "not a time"),
    ("stop_times.txt", 8, "departure_time", "six", "not a time"),
    ("stop_times.txt", 9, "stop_sequence", "-1", "outside"),
    ("stop_times.txt", 1, "stop_sequence", "1", "twice"),
    ("stop_times.txt", 2, "pickup_type", "9", "outside"),
    ("calendar.txt", 0, "monday", "2", "outside"),
    ("calendar.txt", 1, "end_date", "20061231", "before start_date"),
    ("calendar_dates.txt", 0, "date", "2007-06-04", "not a date"),
    ("calendar_dates.txt", 0, "exception_type", "3", "outside"),
    ("frequencies.txt", 0, "headway_secs", "0", "outside"),
    ("frequencies.txt", 1, "trip_id", "GHOST", "not defined"),
    ("transfers.txt", 0, "to_stop_id", "NOWHERE", "not defined"),
    ("transfers.txt", 1, "transfer_type", "6", "outside"),
    ("agency.txt", 0, "agency_url", "google.com", "not an http(s) URL"),
    ("agency.txt", 0, "agency_timezone", " ", "a value is required"),
]


@pytest.mark.parametrize(("name", "row", "column", "value", "problem"), CELL_FAULTS)
def test_a_bad_cell_is_refused_naming_file_line_and_field(
    tmp_path, name, row, column, value, problem
) -> None:
    feed = copy_sample(tmp_path)
    line = set_cell(feed, name, row, column, value)
    with pytest.raises(FeedError) as caught:
        convert_gtfs(feed, FEED)
    error = caught.value
    assert (error.source, error.line, error.field) == (name, line, column)
    assert problem in str(error)
    assert f"{name}, line {line}, field '{column}'" in str(error)
    assert error.code == "broker.convert.bad_feed"


@pytest.mark.parametrize("name", ["agency.txt", "stops.txt", "routes.txt", "trips.txt",
                                  "stop_times.txt"])
def test_a_missing_required_file_is_refused(tmp_path, name) -> None:
    feed = copy_sample(tmp_path)
    (feed / name).unlink()
    with pytest.raises(FeedError, match="required file missing") as caught:
        convert_gtfs(feed, FEED)
    assert caught.value.source == name


def test_a_feed_without_any_calendar_is_refused(tmp_path) -> None:
    feed = copy_sample(tmp_path)
    (feed / "calendar.txt").unlink()
    (feed / "calendar_dates.txt").unlink()
    with pytest.raises(FeedError, match="calendar"):
        convert_gtfs(feed, FEED)


def test_a_missing_required_column_is_refused_at_the_header(tmp_path) -> None:
    feed = copy_sample(tmp_path)
    header, rows = read_table(feed / "trips.txt")
    index = header.index("service_id")
    write_table(feed / "trips.txt", [h for i, h in enumerate(header) if i != index],
                [[v for i, v in enumerate(r) if i != index] for r in rows])
    with pytest.raises(FeedError) as caught:
        convert_gtfs(feed, FEED)
    assert (caught.value.source, caught.value.line, caught.value.field) == (
        "trips.txt", 1, "service_id")


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (b"stop_id,stop_name,stop_lat,stop_lon\nA,x,1,2,extra\n", 2, "5 fields"),
        (b'stop_id,stop_name,stop_lat,stop_lon\nA,"x"y,1,2\n', 2, "malformed CSV"),
        (b"stop_id,stop_name,stop_lat,stop_lon\nA,\xff\xfe,1,2\n", 2, "not UTF-8"),
        (b"stop_id,stop_id\nA,B\n", 1, "appears twice"),
        (b"", 1, "no header"),
    ],
)
def test_malformed_csv_is_refused_with_its_line(tmp_path, content, line, problem) -> None:
    feed = copy_sample(tmp_path)
    (feed / "stops.txt").write_bytes(content)
    with pytest.raises(FeedError, match=problem) as caught:
        convert_gtfs(feed, FEED)
    assert (caught.value.source, caught.value.line) == ("stops.txt", line)


@pytest.mark.parametrize("feed_id", ["", "a:b", "has space", "x" * 65, "-lead", "é"])
def test_a_feed_id_that_would_break_entity_ids_is_refused(feed_id) -> None:
    with pytest.raises(FeedError, match="feed id"):
        convert_gtfs(SAMPLE_FEED, feed_id)


def test_neither_a_zip_nor_a_directory_is_refused(tmp_path) -> None:
    (tmp_path / "feed.zip").write_bytes(b"not a zip")
    with pytest.raises(FeedError, match="neither a zip"):
        convert_gtfs(tmp_path / "feed.zip", FEED)
    with pytest.raises(FeedError, match="no such file"):
        convert_gtfs(tmp_path / "absent", FEED)


def test_a_feed_larger_than_the_bound_is_refused_before_reading(tmp_path) -> None:
    archive = zip_feed(SAMPLE_FEED, tmp_path / "feed.zip")
    with pytest.raises(FeedError, match="more than 1000 bytes"):
        convert_gtfs(archive, FEED, max_bytes=1000)


def test_a_fault_late_in_the_feed_yields_no_entity_at_all(tmp_path) -> None:
    feed = copy_sample(tmp_path)
    header, rows = read_table(feed / "transfers.txt")
    rows[-1][header.index("to_stop_id")] = "NOWHERE"
    write_table(feed / "transfers.txt", header, rows)
    handed_out = []
    with pytest.raises(FeedError):
        handed_out.extend(convert_gtfs(feed, FEED).entities())
    assert handed_out == []


# -- property-style: any garbage in a typed field is refused at that spot -----

TYPED_FIELDS = [
    ("stops.txt", "stop_lat"), ("stops.txt", "stop_lon"), ("routes.txt", "route_type"),
    ("trips.txt", "direction_id"), ("stop_times.txt", "stop_sequence"),
    ("stop_times.txt", "arrival_time"), ("calendar.txt", "start_date"),
    ("calendar.txt", "saturday"), ("calendar_dates.txt", "exception_type"),
    ("frequencies.txt", "headway_secs"), ("frequencies.txt", "start_time"),
]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(TYPED_FIELDS),
    row=st.integers(min_value=0, max_value=100),
    garbage=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_#", min_size=1, max_size=12),
)
def test_garbage_in_any_typed_field_is_refused_there(tmp_path_factory, target, row,
                                                     garbage) -> None:
    name, column = target
    feed = copy_sample(tmp_path_factory.mktemp("feed"))
    _, rows = read_table(feed / name)
    line = set_cell(feed, name, row % len(rows), column, garbage)
    with pytest.raises(FeedError) as caught:
        convert_gtfs(feed, FEED)
    assert (caught.value.source, caught.value.line, caught.value.field) == (name, line, column)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300))
def test_arbitrary_bytes_as_a_file_convert_or_are_refused(tmp_path_factory, content) -> None:
    feed = copy_sample(tmp_path_factory.mktemp("feed"))
    (feed / "stops.txt").write_bytes(b"stop_id,stop_name,stop_lat,stop_lon\n" + content)
    refused: FeedError | None = None
    try:
        list(convert_gtfs(feed, FEED).entities())
    except FeedError as error:
        refused = error
    assert refused is None or refused.source in ("stops.txt", "stop_times.txt", "transfers.txt")


@given(st.text(max_size=20), st.text(max_size=20))
def test_distinct_identifiers_never_share_an_entity_id(first: str, second: str) -> None:
    assert ":" not in id_part(first)
    if first != second:
        assert id_part(first) != id_part(second)

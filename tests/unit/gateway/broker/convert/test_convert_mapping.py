"""Mapped sensor payloads: the documented example mappings, and every refusal."""

from __future__ import annotations

import contextlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.broker.convert.contexts import (
    ENVIRONMENT_CONTEXT,
    TRANSPORTATION_CONTEXT,
    context_terms,
)
from gateway.broker.convert.errors import MappingError, PayloadError
from gateway.broker.convert.mapping import load_mapping, parse_mapping
from gateway.broker.convert.payloads import convert_payload
from gateway.cli import main

EXAMPLES = Path(__file__).parents[5] / "docs" / "examples" / "broker"
RIVER = load_mapping(EXAMPLES / "river-levels.toml")
PLOUGH = load_mapping(EXAMPLES / "snow-plough.toml")
HEADER = "station,name,lat,lon,time,level_cm,flow_m3s\n"
GOOD_ROWS = [
    "KAMO-01,Kamo Bridge,35.0300,135.7700,2025-06-01T09:00:00+09:00,182,41.5\n",
    "KATSURA-02,Katsura,34.9800,135.7000,2025-06-01T09:00:00+09:00,95,\n",
]


def _csv(*rows: str) -> bytes:
    return (HEADER + "".join(rows)).encode()


def _trucks(*trucks: dict[str, Any]) -> bytes:
    return json.dumps({"trucks": list(trucks)}).encode()


TRUCK = {"unit": "P-12", "gps": {"lat": 43.06, "lon": 141.35}, "reported": 1735707600,
         "kmh": 18.5, "heading": 270, "blade": True}


def test_river_levels_become_water_observed_entities() -> None:
    kamo, katsura = convert_payload(RIVER, _csv(*GOOD_ROWS))
    assert kamo["id"] == "urn:ngsi-ld:WaterObserved:river-authority:KAMO-01"
    assert kamo["type"] == "WaterObserved"
    assert kamo["waterLevel"] == {"type": "Property", "value": 1.82, "unitCode": "MTR",
                                  "observedAt": "2025-06-01T00:00:00.000Z"}
    assert kamo["location"]["value"] == {"type": "Point", "coordinates": [135.77, 35.03]}
    assert kamo["refDevice"] == {"type": "Relationship",
                                 "object": "urn:ngsi-ld:Device:river-authority:gauge-KAMO-01"}
    assert "observedAt" not in kamo["name"]
    assert "flow" not in katsura  # optional and empty: left out, not invented
    terms = context_terms(ENVIRONMENT_CONTEXT)
    assert set(kamo) - {"id", "type", "@context", "location"} <= terms


def test_snow_plough_positions_become_vehicles() -> None:
    (plough,) = convert_payload(PLOUGH, _trucks(TRUCK))
    assert plough["id"] == "urn:ngsi-ld:Vehicle:road-authority:P-12"
    assert plough["location"]["value"]["coordinates"] == [141.35, 43.06]
    assert plough["location"]["observedAt"] == "2025-01-01T05:00:00.000Z"
    assert plough["speed"]["unitCode"] == "KMH"
    assert plough["serviceOnDuty"]["value"] is True
    assert plough["vehicleType"] == {"type": "Property", "value": "specialVehicle"}
    assert set(plough) - {"id", "type", "@context"} <= context_terms(TRANSPORTATION_CONTEXT)


def test_json_lines_and_epoch_milliseconds() -> None:
    document = tomllib.loads((EXAMPLES / "snow-plough.toml").read_text(encoding="utf-8"))
    document["input"] = {"format": "jsonl"}
    document["observed_at"]["format"] = "epoch_milliseconds"
    mapping = parse_mapping(document)
    lines = "\n".join(json.dumps({**TRUCK, "unit": u, "reported": 1735707600000})
                      for u in ("A", "B"))
    vehicles = convert_payload(mapping, lines.encode())
    assert [v["fleetVehicleId"]["value"] for v in vehicles] == ["A", "B"]
    assert vehicles[0]["speed"]["observedAt"] == "2025-01-01T05:00:00.000Z"


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ("KAMO-01,Kamo,35.03,135.77,2025-06-01T09:00:00+09:00,high,1\n", "level_cm",
         "not a number"),
        ("KAMO-01,Kamo,35.03,135.77,2025-06-01T09:00:00+09:00,,1\n", "level_cm",
         "a value is required"),
        ("KAMO-01,Kamo,135.03,35.77,2025-06-01T09:00:00+09:00,1,1\n", "lat", "latitude"),
        ("KAMO-01,Kamo,35.03,235.77,2025-06-01T09:00:00+09:00,1,1\n", "lon", "longitude"),
        ("KAMO-01,Kamo,35.03,135.77,2025-06-01T09:00:00,1,1\n", "time", "no UTC offset"),
        ("KAMO-01,Kamo,35.03,135.77,yesterday,1,1\n", "time", "not a time"),
        ("KAMO-01,Kamo,35.03,135.77,2025-06-01T09:00:00+09:00,1,nan\n", "flow_m3s",
         "not a finite number"),
        (",Kamo,35.03,135.77,2025-06-01T09:00:00+09:00,1,1\n", "station",
         "required for the id"),
    ],
)
def test_a_bad_csv_field_is_refused_naming_line_and_field(row, field, problem) -> None:
    with pytest.raises(PayloadError, match=problem) as caught:
        convert_payload(RIVER, _csv(GOOD_ROWS[0], row), source="levels.csv")
    assert (caught.value.source, caught.value.line, caught.value.field) == (
        "levels.csv", 3, field)
    assert caught.value.code == "broker.convert.bad_payload"


@pytest.mark.parametrize(
    ("payload", "line", "problem"),
    [
        (HEADER + "KAMO-01,Kamo,35.03\n", 2, "3 fields"),
        (HEADER + 'KAMO-01,"Ka"mo,35.03,135.77,t,1,1\n', 2, "malformed CSV"),
        ("station,station\nA,B\n", 1, "names a column twice"),
        (HEADER + GOOD_ROWS[0] + GOOD_ROWS[0], 3, "already made from line 2"),
    ],
)
def test_a_malformed_csv_line_is_refused(payload, line, problem) -> None:
    with pytest.raises(PayloadError, match=problem) as caught:
        convert_payload(RIVER, payload.encode())
    assert caught.value.line == line


def test_text_that_is_not_utf8_is_refused_with_its_line() -> None:
    with pytest.raises(PayloadError, match="not UTF-8") as caught:
        convert_payload(RIVER, _csv(GOOD_ROWS[0]) + b"KAMO-02,\xff,1,2,t,1,1\n")
    assert caught.value.line == 3


@pytest.mark.parametrize(
    ("payload", "source", "field", "problem"),
    [
        (_trucks(TRUCK, {**TRUCK, "unit": "P-13", "kmh": "fast"}), "payload records[1]",
         "kmh", "not a number"),
        (_trucks(TRUCK, {**TRUCK, "unit": "P-13", "blade": "maybe"}), "payload records[1]",
         "blade", "not a boolean"),
        (_trucks({**TRUCK, "gps": {"lat": 43.0}}), "payload records[0]", "gps.lon",
         "a value is required"),
        (_trucks({**TRUCK, "unit": {"nested": 1}}), "payload records[0]", "unit",
         "cannot be part of an id"),
        (_trucks({**TRUCK, "reported": 10**20}), "payload records[0]", "reported",
         "not a time"),
        (b'{"lorries": []}', "payload", "trucks", "no 'trucks'"),
        (b'{"trucks": {}}', "payload", "trucks", "not a JSON array"),
    ],
)
def test_a_bad_json_record_is_refused_naming_record_and_field(payload, source, field,
                                                              problem) -> None:
    with pytest.raises(PayloadError, match=problem) as caught:
        convert_payload(PLOUGH, payload)
    assert (caught.value.source, caught.value.field) == (source, field)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b'{"trucks": [1]}', "must be a JSON object"),
        (b'{"trucks": [], "trucks": []}', "a key appears twice"),
        (b'{"trucks": [{"kmh": NaN}]}', "not a JSON number"),
        (b'{"trucks": [', "not JSON"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_malformed_json_is_refused(payload, problem) -> None:
    with pytest.raises(PayloadError, match=problem):
        convert_payload(PLOUGH, payload)


def test_a_payload_over_its_bounds_is_refused() -> None:
    with pytest.raises(PayloadError, match="larger than 10 bytes"):
        convert_payload(RIVER, _csv(*GOOD_ROWS), max_bytes=10)
    document = tomllib.loads((EXAMPLES / "river-levels.toml").read_text(encoding="utf-8"))
    document["input"]["max_records"] = 1
    with pytest.raises(PayloadError, match="more than 1 records") as caught:
        convert_payload(parse_mapping(document), _csv(*GOOD_ROWS))
    assert caught.value.line == 3


def _river(**changes: Any) -> dict[str, Any]:
    document = tomllib.loads((EXAMPLES / "river-levels.toml").read_text(encoding="utf-8"))
    for path, value in changes.items():
        table: Any = document
        *parents, key = path.split("__")
        for part in parents:
            table = table[int(part)] if part.isdigit() else table[part]
        table[key] = value
    return document


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"entity__colour": "blue"}, "entity.colour", "unknown key"),
        ({"entity__type": "Water Observed"}, "entity.type", "not an entity type"),
        ({"entity__id": "{station}"}, "entity.id", "must be a URI"),
        ({"entity__id": "urn:x:{station!r}"}, "entity.id", "placeholders"),
        ({"entity__id": "urn:x:{station:>10}"}, "entity.id", "placeholders"),
        ({"entity__id": "urn:x:{"}, "entity.id", "not a template"),
        ({"entity__context": ["https://example.org/ctx.jsonld"]}, "entity.context",
         "not a bundled context"),
        ({"input__format": "xml"}, "input.format", "one of"),
        ({"input__delimiter": ";;"}, "input.delimiter", "one character"),
        ({"input__records": "x"}, "input.records", "only for json"),
        ({"input__max_records": 0}, "input.max_records", "positive integer"),
        ({"observed_at__format": "rfc822"}, "observed_at.format", "one of"),
        ({"attributes__1__name": "location"}, "attributes[1].name", "not an attribute"),
        ({"attributes__1__name": "water level"}, "attributes[1].name", "not an attribute"),
        ({"attributes__1__name": "name"}, "attributes[1].name", "mapped twice"),
        ({"attributes__1__unit_code": "metres"}, "attributes[1].unit_code", "UN/CEFACT"),
        ({"attributes__1__type": "float"}, "attributes[1].type", "one of"),
        ({"attributes__0__scale": 2}, "attributes[0].scale", "only a number"),
        ({"attributes__1__value": 3}, "attributes[1]", "exactly one of"),
        ({"attributes__1__kind": "relationship"}, "attributes[1].object",
         "needs an object"),
        ({"attributes__1__required": "yes"}, "attributes[1].required", "true or false"),
    ],
)
def test_a_bad_mapping_is_refused_naming_the_key(changes, field, problem) -> None:
    with pytest.raises(MappingError, match=problem) as caught:
        parse_mapping(_river(**changes))
    assert caught.value.field == field
    assert caught.value.code == "broker.convert.bad_mapping"


def test_a_placeholder_is_only_ever_a_lookup_in_the_record() -> None:
    # "{0.__class__}" is the dotted path 0 -> __class__ into the record, never an
    # attribute access on a Python object: absent here, so the id cannot be made.
    mapping = parse_mapping(_river(entity__id="urn:x:{0.__class__}"))
    with pytest.raises(PayloadError, match="required for the id"):
        convert_payload(mapping, _csv(GOOD_ROWS[0]))


def test_a_mapping_file_that_is_not_toml_is_refused(tmp_path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[entity\n", encoding="utf-8")
    with pytest.raises(MappingError, match="not TOML"):
        load_mapping(path)


def test_a_fault_in_the_last_record_yields_nothing() -> None:
    rows = [f"S{i},n,35,135,2025-06-01T09:00:00+09:00,{i},\n" for i in range(500)]
    rows.append("S500,n,35,135,2025-06-01T09:00:00+09:00,oops,\n")
    made: list[Any] = []
    with pytest.raises(PayloadError) as caught:
        made = convert_payload(RIVER, _csv(*rows))
    assert made == []
    assert caught.value.line == 502


@settings(max_examples=80, deadline=None)
@given(
    column=st.sampled_from(["lat", "lon", "level_cm", "time"]),
    garbage=st.text(alphabet="abcdeghjkoqrsuvwxyz#!", min_size=1, max_size=10),
)
def test_garbage_in_any_typed_column_is_refused_there(column, garbage) -> None:
    values = dict(zip(HEADER.strip().split(","), GOOD_ROWS[1].strip().split(","),
                      strict=True))
    values[column] = garbage
    row = ",".join(values.values()) + "\n"
    with pytest.raises(PayloadError) as caught:
        convert_payload(RIVER, _csv(GOOD_ROWS[0], row))
    assert (caught.value.line, caught.value.field) == (3, column)


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_convert_or_are_refused(payload: bytes) -> None:
    for mapping in (RIVER, PLOUGH):
        with contextlib.suppress(PayloadError):
            entities = convert_payload(mapping, payload)
            assert all(e["type"] == mapping.entity_type for e in entities)


def test_the_command_line_converts_a_mapped_payload(tmp_path, capsys) -> None:
    payload = tmp_path / "levels.csv"
    payload.write_bytes(_csv(*GOOD_ROWS))
    out = tmp_path / "levels.jsonl"
    assert main(["broker", "convert", "mapped", str(EXAMPLES / "river-levels.toml"),
                 str(payload), "--out", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    assert '"WaterObserved": 2' in capsys.readouterr().err
    payload.write_bytes(_csv(GOOD_ROWS[0], GOOD_ROWS[0]))
    assert main(["broker", "convert", "mapped", str(EXAMPLES / "river-levels.toml"),
                 str(payload), "--out", str(out)]) == 1
    assert "levels.csv, line 3" in capsys.readouterr().err
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2

"""Sensor payloads (CSV, JSON, JSON Lines) into entities, as a ``Mapping`` says.

Every record is converted and checked before the list is returned; a fault names the
line (CSV, JSON Lines) or the record (``records[3]`` in a JSON document) and the
field. Two records that make the same entity id are refused: which one is current
would otherwise depend on the order of the file.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from gateway.broker.convert.errors import PayloadError
from gateway.broker.convert.mapping import Attribute, Mapping, Template
from gateway.broker.convert.models import (
    Entity,
    entity,
    geo_property,
    id_part,
    point,
    prop,
    relationship,
    timestamp,
)

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "convert_payload"]

DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


class _Record:
    def __init__(self, values: dict[str, Any], source: str, line: int | None,
                 label: str | None = None) -> None:
        self.values = values
        self.source = source if label is None else f"{source} {label}"
        self.line = line

    def error(self, field: str | None, problem: str) -> PayloadError:
        return PayloadError(problem, source=self.source, line=self.line, field=field)

    def get(self, path: str) -> Any:
        """The value at ``path`` (dotted for nested JSON objects), or None when absent."""
        if path in self.values:
            value = self.values[path]
        else:
            value = self.values
            for part in path.split("."):
                if not isinstance(value, dict) or part not in value:
                    return None
                value = value[part]
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value


def convert_payload(
    mapping: Mapping,
    payload: bytes,
    *,
    source: str = "payload",
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> list[Entity]:
    if len(payload) > max_bytes:
        raise PayloadError(f"the payload is larger than {max_bytes} bytes", source=source)
    converted: list[Entity] = []
    first_seen: dict[str, str] = {}
    for number, record in enumerate(_records(mapping, payload, source), start=1):
        if number > mapping.max_records:
            raise record.error(None, f"more than {mapping.max_records} records")
        item = _entity(mapping, record)
        place = f"line {record.line}" if record.line is not None else record.source
        if item["id"] in first_seen:
            raise record.error(None, f"entity {item['id']} was already made from "
                               f"{first_seen[item['id']]}")
        first_seen[item["id"]] = place
        converted.append(item)
    return converted


def _records(mapping: Mapping, payload: bytes, source: str) -> Iterator[_Record]:
    try:
        text = payload.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = payload[: exc.start].count(b"\n") + 1
        raise PayloadError("not UTF-8 text", source=source, line=line) from None
    if mapping.input_format == "csv":
        yield from _csv_records(mapping, text, source)
    elif mapping.input_format == "jsonl":
        for number, text_line in enumerate(text.splitlines(), start=1):
            if text_line.strip():
                value = _json(text_line, source, number)
                if not isinstance(value, dict):
                    raise PayloadError("a line must hold one JSON object", source=source,
                                       line=number)
                yield _Record(value, source, number)
    else:
        document = _json(text, source, None)
        records = document
        for part in mapping.records.split(".") if mapping.records else ():
            if not isinstance(records, dict) or part not in records:
                raise PayloadError(f"no {mapping.records!r} in the document", source=source,
                                   field=mapping.records)
            records = records[part]
        if not isinstance(records, list):
            raise PayloadError("the records are not a JSON array", source=source,
                               field=mapping.records or None)
        for index, value in enumerate(records):
            label = f"records[{index}]"
            if not isinstance(value, dict):
                raise PayloadError("a record must be a JSON object",
                                   source=f"{source} {label}")
            yield _Record(value, source, None, label)


def _csv_records(mapping: Mapping, text: str, source: str) -> Iterator[_Record]:
    reader = csv.reader(text.splitlines(keepends=True), delimiter=mapping.delimiter,
                        strict=True)
    try:
        header = [column.strip() for column in next(reader, [])]
        if not header or len(set(header)) != len(header):
            raise PayloadError("the header is empty or names a column twice",
                               source=source, line=1)
        for values in reader:
            if not values or values == [""]:
                continue
            if len(values) != len(header):
                raise PayloadError(f"{len(values)} fields where the header has "
                                   f"{len(header)}", source=source, line=reader.line_num)
            yield _Record(dict(zip(header, values, strict=True)), source, reader.line_num)
    except csv.Error as exc:
        raise PayloadError(f"malformed CSV: {exc}", source=source,
                           line=reader.line_num) from exc


def _json(text: str, source: str, line: int | None) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            raise ValueError("a key appears twice in one object")
        return result

    try:
        return json.loads(text, object_pairs_hook=pairs,
                          parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"not JSON: {exc}", source=source, line=line) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _entity(mapping: Mapping, record: _Record) -> Entity:
    observed = _observed_at(mapping, record)
    made = entity(_fill(mapping.id_template, record, "id"), mapping.entity_type,
                  list(mapping.context))
    if mapping.latitude is not None and mapping.longitude is not None:
        latitude = _number(record, mapping.latitude)
        longitude = _number(record, mapping.longitude)
        try:
            location = point(longitude, latitude)
        except ValueError as exc:
            field = mapping.latitude if "latitude" in str(exc) else mapping.longitude
            raise record.error(field, str(exc)) from None
        made["location"] = geo_property(location, observed_at=observed)
    for attribute in mapping.attributes:
        value = _attribute(attribute, record, observed)
        if value is not None:
            made[attribute.name] = value
    return made


def _attribute(attribute: Attribute, record: _Record, observed: str) -> dict[str, Any] | None:
    if attribute.object is not None:
        return relationship(_fill(attribute.object, record, attribute.name))
    if attribute.field is None:
        value = attribute.value
    else:
        value = _typed(attribute, record)
        if value is None:
            return None
    return prop(value, observed_at=observed if attribute.observed else None,
                unit_code=attribute.unit_code)


def _typed(attribute: Attribute, record: _Record) -> Any:
    field = attribute.field or ""
    raw = record.get(field)
    if raw is None:
        if attribute.required:
            raise record.error(field, "a value is required")
        return None
    if attribute.value_type == "number":
        number = _number(record, field)
        return number * attribute.scale if attribute.scale is not None else number
    if attribute.value_type == "integer":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lstrip("+-").isdigit() and raw.isascii():
            return int(raw)
        raise record.error(field, f"not an integer: {raw!r}")
    if attribute.value_type == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "1", "false", "0"):
            return raw.lower() in ("true", "1")
        raise record.error(field, f"not a boolean: {raw!r}")
    if isinstance(raw, str) or (isinstance(raw, int) and not isinstance(raw, bool)):
        return str(raw)
    raise record.error(field, f"not a string: {raw!r}")


def _number(record: _Record, field: str) -> float:
    raw = record.get(field)
    if raw is None:
        raise record.error(field, "a value is required")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise record.error(field, f"not a number: {raw!r}")
    try:
        number = float(raw)
    except ValueError:
        raise record.error(field, f"not a number: {raw!r}") from None
    if not math.isfinite(number):
        raise record.error(field, f"not a finite number: {raw!r}")
    return number


def _observed_at(mapping: Mapping, record: _Record) -> str:
    field = mapping.observed_field
    raw = record.get(field)
    if raw is None:
        raise record.error(field, "a value is required")
    try:
        if mapping.observed_format == "iso8601":
            if not isinstance(raw, str):
                raise ValueError
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                raise record.error(field, f"{raw!r} has no UTC offset")
        else:
            seconds = _number(record, field)
            if mapping.observed_format == "epoch_milliseconds":
                seconds /= 1000
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        return timestamp(moment)
    except (ValueError, OverflowError, OSError):
        raise record.error(field, f"not a time ({mapping.observed_format}): "
                           f"{raw!r}") from None


def _fill(template: Template, record: _Record, what: str) -> str:
    parts = []
    for literal, name in template.pieces:
        if name is None:
            parts.append(literal)
            continue
        value = record.get(name)
        if value is None:
            raise record.error(name, f"a value is required for the {what}")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise record.error(name, f"{value!r} cannot be part of an id")
        parts.append(id_part(str(value)))
    return "".join(parts)

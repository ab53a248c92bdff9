"""A declarative mapping (TOML) from sensor payload records to NGSI-LD entities.

The file is checked completely when it is loaded: unknown keys, wrong types, an
attribute name NGSI-LD does not allow, a context that is not bundled or a template
with anything but ``{field}`` placeholders are refused with the key's path. The
keys are documented in docs/broker.md.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.broker.convert.contexts import CORE_CONTEXT, bundled_context_urls
from gateway.broker.convert.errors import MappingError
from gateway.broker.convert.models import is_attribute_name

__all__ = ["Attribute", "Mapping", "Template", "load_mapping", "parse_mapping"]

ValueType = Literal["number", "integer", "string", "boolean"]
_FORMATS = ("csv", "json", "jsonl")
_TIME_FORMATS = ("iso8601", "epoch_seconds", "epoch_milliseconds")
_TYPES = ("number", "integer", "string", "boolean")
# UN/CEFACT Common Codes are two or three upper-case letters or digits.
_UNIT_CODE = re.compile(r"[A-Z0-9]{2,3}")
_ENTITY_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,255}")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
DEFAULT_MAX_RECORDS = 100_000


@dataclass(frozen=True)
class Template:
    """Literal text with ``{field}`` placeholders, filled with percent-encoded values."""

    text: str
    pieces: tuple[tuple[str, str | None], ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for _, name in self.pieces if name is not None)


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: Literal["property", "relationship"]
    field: str | None
    value: Any
    object: Template | None
    value_type: ValueType
    unit_code: str | None
    scale: float | None
    required: bool
    observed: bool


@dataclass(frozen=True)
class Mapping:
    entity_type: str
    id_template: Template
    context: tuple[str, ...]
    input_format: Literal["csv", "json", "jsonl"]
    delimiter: str
    records: str
    max_records: int
    observed_field: str
    observed_format: str
    latitude: str | None
    longitude: str | None
    attributes: tuple[Attribute, ...]


def load_mapping(path: Path) -> Mapping:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"not TOML: {exc}", source=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"cannot read: {exc}", source=str(path)) from exc
    return parse_mapping(document, source=str(path))


def parse_mapping(document: dict[str, Any], *, source: str = "mapping") -> Mapping:
    reader = _Keys(document, source, "")
    reader.only("entity", "input", "observed_at", "location", "attributes")
    entity = reader.table("entity", required=True)
    entity.only("type", "id", "context")
    entity_type = entity.string("type", required=True)
    if not _ENTITY_TYPE.fullmatch(entity_type):
        raise entity.error("type", f"{entity_type!r} is not an entity type name")
    id_template = entity.template("id", required=True)
    if not _URI_SCHEME.match(id_template.text):
        raise entity.error("id", "the id must be a URI, such as urn:ngsi-ld:Type:{field}")
    context = entity.strings("context")
    for url in context:
        if url not in bundled_context_urls():
            raise entity.error("context", f"{url!r} is not a bundled context; bundled: "
                               + ", ".join(bundled_context_urls()))

    payload = reader.table("input", required=True)
    payload.only("format", "delimiter", "records", "max_records")
    input_format = payload.string("format", required=True)
    if input_format not in _FORMATS:
        raise payload.error("format", f"one of {', '.join(_FORMATS)}")
    delimiter = payload.string("delimiter") or ","
    if len(delimiter) != 1 or delimiter in "\"\r\n":
        raise payload.error("delimiter", "one character, not a quote or line end")
    if "delimiter" in payload.data and input_format != "csv":
        raise payload.error("delimiter", "only for csv input")
    if "records" in payload.data and input_format != "json":
        raise payload.error("records", "only for json input")
    max_records = payload.integer("max_records") or DEFAULT_MAX_RECORDS

    observed = reader.table("observed_at", required=True)
    observed.only("field", "format")
    observed_format = observed.string("format") or "iso8601"
    if observed_format not in _TIME_FORMATS:
        raise observed.error("format", f"one of {', '.join(_TIME_FORMATS)}")

    latitude = longitude = None
    if "location" in document:
        location = reader.table("location", required=True)
        location.only("latitude", "longitude")
        latitude = location.string("latitude", required=True)
        longitude = location.string("longitude", required=True)

    attributes = tuple(_attribute(item) for item in reader.tables("attributes"))
    names = [a.name for a in attributes]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise MappingError(f"attribute {name!r} is mapped twice", source=source,
                               field=f"attributes[{index}].name")
    if not attributes and latitude is None:
        raise reader.error("attributes", "map at least one attribute or a location")
    return Mapping(
        entity_type=entity_type,
        id_template=id_template,
        context=(*context, CORE_CONTEXT),
        input_format=input_format,  # type: ignore[arg-type]
        delimiter=delimiter,
        records=payload.string("records") or "",
        max_records=max_records,
        observed_field=observed.string("field", required=True),
        observed_format=observed_format,
        latitude=latitude,
        longitude=longitude,
        attributes=attributes,
    )


def _attribute(keys: _Keys) -> Attribute:
    keys.only("name", "kind", "field", "value", "object", "type", "unit_code", "scale",
              "required", "observed")
    name = keys.string("name", required=True)
    if not is_attribute_name(name):
        raise keys.error("name", f"{name!r} is not an attribute name NGSI-LD allows")
    kind = keys.string("kind") or "property"
    if kind not in ("property", "relationship"):
        raise keys.error("kind", "property or relationship")
    sources = [k for k in ("field", "value", "object") if k in keys.data]
    if len(sources) != 1:
        raise keys.error(None, "give exactly one of field, value or object")
    if kind == "relationship" and sources != ["object"]:
        raise keys.error("object", "a relationship needs an object template")
    if kind == "property" and sources == ["object"]:
        raise keys.error("object", "only a relationship has an object")
    value_type = keys.string("type") or "string"
    if value_type not in _TYPES:
        raise keys.error("type", f"one of {', '.join(_TYPES)}")
    unit_code = keys.string("unit_code") or None
    if unit_code is not None and not _UNIT_CODE.fullmatch(unit_code):
        raise keys.error("unit_code", "a UN/CEFACT common code: 2 or 3 capitals or digits")
    scale = keys.number("scale")
    if scale is not None and value_type != "number":
        raise keys.error("scale", "only a number can be scaled")
    value = keys.data.get("value")
    if value is not None and not isinstance(value, str | int | float | bool):
        raise keys.error("value", "a string, number or boolean")
    return Attribute(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        field=keys.string("field") or None,
        value=value,
        object=keys.template("object") if "object" in keys.data else None,
        value_type=value_type,  # type: ignore[arg-type]
        unit_code=unit_code,
        scale=scale,
        required=keys.boolean("required", default=True),
        observed=keys.boolean("observed", default=True),
    )


class _Keys:
    """Typed access to one TOML table, with errors naming the key's path."""

    def __init__(self, data: dict[str, Any], source: str, path: str) -> None:
        self.data = data
        self.source = source
        self.path = path

    def error(self, key: str | None, problem: str) -> MappingError:
        where = ".".join(p for p in (self.path, key) if p) or None
        return MappingError(problem, source=self.source, field=where)

    def only(self, *allowed: str) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(key, f"unknown key; known: {', '.join(allowed)}")

    def table(self, key: str, *, required: bool = False) -> _Keys:
        value = self.data.get(key)
        if value is None and not required:
            return _Keys({}, self.source, self._join(key))
        if not isinstance(value, dict):
            raise self.error(key, "a table is required")
        return _Keys(value, self.source, self._join(key))

    def tables(self, key: str) -> list[_Keys]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, "an array of tables ([[attributes]]) is required")
        return [_Keys(v, self.source, f"{self._join(key)}[{i}]") for i, v in enumerate(value)]

    def string(self, key: str, *, required: bool = False) -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "required")
            return ""
        if not isinstance(value, str) or not value:
            raise self.error(key, "a non-empty string is required")
        return value

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "a string or an array of strings is required")
        return value

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error(key, "a positive integer is required")
        return value

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.error(key, "a number is required")
        return float(value)

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "true or false")
        return value

    def template(self, key: str, *, required: bool = False) -> Template:
        text = self.string(key, required=required)
        pieces: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise self.error(key, f"not a template: {exc}") from None
        for literal, name, spec, conversion in parsed:
            if literal:
                pieces.append((literal, None))
            if name is None:
                continue
            if not name or spec or conversion or "[" in name:
                raise self.error(key, "placeholders are {field} with a field name only")
            pieces.append(("", name))
        return Template(text, tuple(pieces))

    def _join(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

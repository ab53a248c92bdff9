"""Errors of the converters, each with a stable code and the place of the fault.

::

    ConvertError        broker.convert.failed
    ├── FeedError       broker.convert.bad_feed       a GTFS static feed: file, line, field
    ├── RealtimeError   broker.convert.bad_realtime   a GTFS-Realtime message: entity, field
    ├── MappingError    broker.convert.bad_mapping    a mapping file: key path
    └── PayloadError    broker.convert.bad_payload    a sensor payload: line or record, field

A converter raises before it hands out a single entity, so a caller never holds a
half-converted input: it has all the entities or one of these errors.
"""

from __future__ import annotations

__all__ = ["ConvertError", "FeedError", "MappingError", "PayloadError", "RealtimeError"]


class ConvertError(Exception):
    """Base of the converters' errors; ``str()`` names where the input is wrong."""

    code = "broker.convert.failed"

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.line = line
        self.field = field
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = []
        if self.source is not None:
            where.append(self.source)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.problem}" if where else self.problem


class FeedError(ConvertError):
    code = "broker.convert.bad_feed"


class RealtimeError(ConvertError):
    code = "broker.convert.bad_realtime"


class MappingError(ConvertError):
    code = "broker.convert.bad_mapping"


class PayloadError(ConvertError):
    code = "broker.convert.bad_payload"

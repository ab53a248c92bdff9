"""Strict readers for the registry's JSON documents (global configuration, anchor).

Every reader raises ``FormatError`` (a ``ValueError``) naming the offending field;
public parsers translate it into their own package error at their boundary.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography import x509

from certs import jws
from member_registry._certificates import certificate_from_pem

__all__ = [
    "FormatError",
    "format_time",
    "loads_strict",
    "parse_time",
    "read_certificate",
    "read_int",
    "read_list",
    "read_object",
    "read_str",
    "read_url",
]

T = TypeVar("T")

# RFC 3339, UTC only, written with "Z"; fractions of a second are accepted on input.
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


class FormatError(ValueError):
    """A JSON document does not have the expected shape."""


def loads_strict(data: bytes | str) -> Any:
    """The strict reader of ``certs.jws`` (duplicate keys, NaN refused), raising
    ``FormatError``."""
    try:
        return jws.loads_strict(data)
    except jws.JsonRefused as exc:
        raise FormatError(str(exc)) from exc


def read_object(
    value: object, where: str, required: Sequence[str], optional: Sequence[str] = ()
) -> Mapping[str, Any]:
    """Check that ``value`` is an object with exactly the allowed keys."""
    if not isinstance(value, dict):
        raise FormatError(f"{where} must be an object")
    missing = [key for key in required if key not in value]
    if missing:
        raise FormatError(f"{where} is missing {', '.join(sorted(missing))}")
    allowed = set(required) | set(optional)
    unknown = [str(key) for key in value if key not in allowed]
    if unknown:
        raise FormatError(f"{where} has unknown keys {', '.join(sorted(unknown))}")
    return value


def read_str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise FormatError(f"{where} must be a non-empty string")
    return value


def read_int(value: object, where: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    # bool is an int subclass in Python; a JSON true is never a number here.
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"{where} must be an integer")
    if value < minimum or (maximum is not None and value > maximum):
        raise FormatError(f"{where} is out of range")
    return value


def read_list(value: object, where: str, item: Callable[[object, str], T]) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise FormatError(f"{where} must be a list")
    return tuple(item(element, f"{where}[{index}]") for index, element in enumerate(value))


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; whole seconds unless the value has microseconds."""
    if moment.tzinfo is None:
        raise FormatError("times must be timezone-aware")
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, where: str) -> datetime:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise FormatError(f"{where} must be an RFC 3339 UTC time ending in 'Z'")
    try:
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:
        raise FormatError(f"{where} is not a valid time") from exc


def read_url(value: object, where: str) -> str:
    url = read_str(value, where)
    if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
        raise FormatError(f"{where} must be an http(s) URL")
    return url


def read_certificate(value: object, where: str) -> x509.Certificate:
    if not isinstance(value, str):
        raise FormatError(f"{where} must be a PEM string")
    try:
        return certificate_from_pem(value)
    except ValueError as exc:
        raise FormatError(f"{where} is not a valid PEM certificate") from exc

"""Content-Type checks for the filter: declared, JSON, UTF-8."""

from __future__ import annotations

from policies.errors import UnsupportedCharset, UnsupportedMediaType

__all__ = ["FHIR_JSON", "check_media_type", "is_json_media_type"]

FHIR_JSON = "application/fhir+json"


def is_json_media_type(media_type: str) -> bool:
    """``application/json`` or a structured ``+json`` type; the only ones we can filter."""
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def check_media_type(content_type: str, declared: tuple[str, ...]) -> str:
    """Return the bare media type of ``content_type`` or raise.

    The type must be JSON and listed in ``declared``; a ``charset`` parameter, if any,
    must be UTF-8 (JSON has no other charset, RFC 8259 §8.1).
    """
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    media_type = media_type.lower()
    if media_type not in declared or not is_json_media_type(media_type):
        raise UnsupportedMediaType(f"media type {media_type!r} is not declared as filterable")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in ("utf-8", "utf8"):
                raise UnsupportedCharset(f"charset {charset!r} is not UTF-8")
    return media_type

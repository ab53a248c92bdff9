"""Media types and the JSON-LD ``Link`` header, ETSI GS CIM 009 V1.8.1 clauses 6.3.4-6.3.6.

- A body sent as ``application/json`` may name its ``@context`` in one ``Link``
  header (rel ``http://www.w3.org/ns/json-ld#context``) and may not carry one
  inside; a body sent as ``application/ld+json`` carries ``@context`` inside and
  may not have such a ``Link`` header. Anything else is refused.
- The answer is ``application/json`` with a ``Link`` header naming the context, or
  ``application/ld+json`` with ``@context`` in the body, as ``Accept`` prefers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gateway.broker.errors import BadRequestData, NotAcceptable, UnsupportedMediaType

__all__ = [
    "JSON",
    "JSON_LD",
    "LINK_REL",
    "body_context",
    "choose_response_type",
    "link_context",
    "link_header",
]

JSON = "application/json"
JSON_LD = "application/ld+json"
MERGE_PATCH = "application/merge-patch+json"
LINK_REL = "http://www.w3.org/ns/json-ld#context"
_LINK = re.compile(r"\s*<([^>]*)>\s*((?:;\s*[A-Za-z-]+\s*=\s*(?:\"[^\"]*\"|[^;,\s]*)\s*)*)$")
_PARAM = re.compile(r";\s*([A-Za-z-]+)\s*=\s*(?:\"([^\"]*)\"|([^;,\s]*))")


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def link_context(link_headers: Sequence[str]) -> str | None:
    """The context URL of the request's JSON-LD ``Link`` header, if it has one."""
    found = []
    for header in link_headers:
        match = _LINK.match(header)
        if match is None:
            raise BadRequestData("the Link header is not <url>; rel=...; type=...")
        params = {
            m.group(1).lower(): m.group(2) or m.group(3) for m in _PARAM.finditer(match.group(2))
        }
        if params.get("rel") == LINK_REL:
            found.append(match.group(1))
    if len(found) > 1:
        raise BadRequestData("at most one JSON-LD context Link header (clause 6.3.5)")
    return found[0] if found else None


def body_context(content_type: str | None, link: str | None, body: Any) -> list[Any]:
    """The user @context of a request with a body, in the order it applies."""
    kind = media_type(content_type)
    if kind == JSON_LD:
        if link is not None:
            raise BadRequestData("an application/ld+json body has no JSON-LD Link header")
        items = body if isinstance(body, list) else [body]
        contexts = []
        for item in items:
            if not isinstance(item, dict) or "@context" not in item:
                raise BadRequestData("an application/ld+json body carries its @context")
            contexts.append(_as_list(item["@context"]))
        if any(c != contexts[0] for c in contexts):
            raise BadRequestData("every entity of a batch has the same @context")
        return contexts[0] if contexts else []
    if kind in (JSON, MERGE_PATCH):
        items = body if isinstance(body, list) else [body]
        if any(isinstance(item, dict) and "@context" in item for item in items):
            raise BadRequestData("an application/json body carries no @context: use a Link header")
        return [link] if link is not None else []
    raise UnsupportedMediaType(f"Content-Type {kind or 'none'}: use {JSON} or {JSON_LD}")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def choose_response_type(accept: str | None) -> str:
    """``application/json`` or ``application/ld+json``, whichever ``Accept`` prefers."""
    if accept is None or not accept.strip():
        return JSON
    best, best_q = None, 0.0
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        offered = {JSON_LD: JSON_LD, JSON: JSON, "*/*": JSON, "application/*": JSON}.get(
            kind.lower()
        )
        # The highest q wins; among equal ones the first listed.
        if offered is not None and q > best_q:
            best, best_q = offered, q
    if best is None:
        raise NotAcceptable(f"Accept {accept[:100]!r}: this API answers {JSON} or {JSON_LD}")
    return best


def link_header(url: str) -> str:
    return f'<{url}>; rel="{LINK_REL}"; type="{JSON_LD}"'

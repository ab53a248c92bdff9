"""Error responses as X-Road 7 gives them: ``X-Road-Error`` plus a JSON or XML body."""

from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape

from aiohttp import web

__all__ = ["error_body", "error_media_type", "error_response", "r1_status", "wants_xml"]

JSON = "application/json"
_XML_TYPES = ("text/xml", "application/xml", "text/*")

# Statuses kept on r1 although X-Road answers 400 or 500 (docs/protocol.md):
# 401 makes bearer-token clients renew their token (RFC 6750); 408 and 413 are
# the guard's transport-level answers, the same whether the guard sees the
# problem before the exchange or while its body streams; 429 with Retry-After
# makes retrying clients back off instead of hammering.
_KEPT_ON_R1 = frozenset({401, 408, 413, 429})


def error_media_type(accept: str | None) -> str:
    """The media type of an error body, chosen as X-Road's client proxy does.

    X-Road (``ClientRestMessageHandler.decideErrorResponseContentType``) takes
    the first of ``text/xml``, ``application/xml`` or ``text/*`` named in
    ``Accept`` (parameters and order of preference ignored), answers
    ``text/*`` with ``text/xml``, and JSON otherwise. One refinement: a type
    the client marks ``q=0`` ("not acceptable", RFC 9110 §12.4.2) is skipped.
    """
    for item in (accept or "").split(","):
        media, _, params = item.partition(";")
        media = media.strip().lower()
        if media not in _XML_TYPES or _refused_by_quality(params):
            continue
        return "text/xml" if media == "text/*" else media
    return JSON


def _refused_by_quality(params: str) -> bool:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value.strip()) <= 0
            except ValueError:
                return False
    return False


def wants_xml(accept: str | None) -> bool:
    """True when the client's ``Accept`` gets an XML error body."""
    return error_media_type(accept) != JSON


def r1_status(exc_status: int, code: str) -> int:
    """The status of a refusal on r1: X-Road's 500 for ``server.*``, 400 otherwise.

    X-Road 7 answers every error it raises with one of these two
    (PR-REST §4.6); the statuses in ``_KEPT_ON_R1`` are deliberate differences.
    """
    if exc_status in _KEPT_ON_R1:
        return exc_status
    return 500 if code.startswith("server.") else 400


def error_body(
    code: str, message: str, detail: str, *, xml: bool | str
) -> tuple[bytes, str]:
    """The error document; ``xml`` is True (``application/xml``) or the XML media type."""
    if xml:
        media = xml if isinstance(xml, str) else "application/xml"
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<error><type>{escape(code)}</type><message>{escape(message)}</message>"
            f"<detail>{escape(detail)}</detail></error>"
        )
        return text.encode("utf-8"), f"{media}; charset=utf-8"
    body = json.dumps({"type": code, "message": message, "detail": detail})
    return body.encode("utf-8"), "application/json; charset=utf-8"


def error_response(
    code: str,
    message: str,
    status: int,
    *,
    accept: str | None = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Build the refusal; ``detail`` is the id also written to the node's log."""
    detail = detail or str(uuid.uuid4())
    media = error_media_type(accept)
    body, content_type = error_body(code, message, detail, xml=media if media != JSON else False)
    out = {"X-Road-Error": code, "Content-Type": content_type}
    if headers:
        out.update(headers)
    return web.Response(status=status, body=body, headers=out)

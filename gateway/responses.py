"""Error responses as X-Road 7 gives them: ``X-Road-Error`` plus a JSON or XML body."""

from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape

from aiohttp import web

__all__ = ["error_body", "error_response", "wants_xml"]


def wants_xml(accept: str | None) -> bool:
    """True when the client asks for XML rather than JSON."""
    if not accept:
        return False
    best: tuple[float, str] | None = None
    for item in accept.split(","):
        media, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.strip().lower()
        known = media in ("application/xml", "text/xml", "application/json", "*/*")
        if known and (best is None or quality > best[0]):
            best = (quality, media)
    return best is not None and best[1] in ("application/xml", "text/xml") and best[0] > 0


def error_body(code: str, message: str, detail: str, *, xml: bool) -> tuple[bytes, str]:
    if xml:
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<error><type>{escape(code)}</type><message>{escape(message)}</message>"
            f"<detail>{escape(detail)}</detail></error>"
        )
        return text.encode("utf-8"), "application/xml; charset=utf-8"
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
    body, content_type = error_body(code, message, detail, xml=wants_xml(accept))
    out = {"X-Road-Error": code, "Content-Type": content_type}
    if headers:
        out.update(headers)
    return web.Response(status=status, body=body, headers=out)

"""The TSA's HTTP side (RFC 3161 §3.4): ``POST`` a TimeStampReq, get a TimeStampResp.

Any path accepts ``POST`` with ``Content-Type: application/timestamp-query``;
the answer is always ``200 application/timestamp-reply`` (a refusal is a
``rejection`` TimeStampResp). ``GET /healthz`` reports liveness.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from certs.tsa import TIMESTAMP_QUERY_TYPE, TIMESTAMP_REPLY_TYPE, TimeStampAuthority, rejection

__all__ = ["CLOCK", "MAX_REQUEST_BYTES", "TSA", "create_tsa_app"]

MAX_REQUEST_BYTES = 16 * 1024
_SERIAL_BITS = 128

TSA = web.AppKey("tsa", TimeStampAuthority)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("tsa_clock")


def create_tsa_app(tsa: TimeStampAuthority, *, clock: Callable[[], datetime]) -> web.Application:
    """An aiohttp application answering time-stamp queries with ``tsa``."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[TSA] = tsa
    app[CLOCK] = clock
    app.router.add_get("/healthz", _healthz)
    app.router.add_post("/{tail:.*}", _stamp)
    return app


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _stamp(request: web.Request) -> web.Response:
    if request.content_type != TIMESTAMP_QUERY_TYPE:
        return _reply(rejection("bad_request", f"expected {TIMESTAMP_QUERY_TYPE}"))
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _reply(rejection("bad_request", "request too large"))
    tsa = request.app[TSA]
    # Random serials: unique across restarts and processes without shared state.
    serial = secrets.randbits(_SERIAL_BITS)
    return _reply(tsa.respond(body, now=request.app[CLOCK](), serial=serial))


def _reply(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=TIMESTAMP_REPLY_TYPE)

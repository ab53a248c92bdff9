"""The OCSP responder's HTTP side (RFC 6960 Appendix A): POST and GET.

* ``POST /`` (any path) with ``Content-Type: application/ocsp-request`` and the
  DER request as the body;
* ``GET /<base64 of the DER request, URL-encoded>``;
* ``GET /healthz`` for liveness.

Every answer to an OCSP query is ``200 application/ocsp-response``; a request
that cannot be read gets an OCSP ``malformedRequest`` response, not an HTTP
error, so that OCSP clients can report it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from urllib.parse import unquote

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from certs.ocsp import OCSP_REQUEST_TYPE, OCSP_RESPONSE_TYPE
from certs.ocsp_responder import OcspResponder

__all__ = ["CLOCK", "MAX_REQUEST_BYTES", "RESPONDER", "create_ocsp_app"]

# A single-certificate request is a few hundred bytes.
MAX_REQUEST_BYTES = 16 * 1024

RESPONDER = web.AppKey("ocsp_responder", OcspResponder)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("ocsp_clock")


def create_ocsp_app(responder: OcspResponder, *, clock: Callable[[], datetime]) -> web.Application:
    """An aiohttp application answering OCSP queries with ``responder``."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[RESPONDER] = responder
    app[CLOCK] = clock
    app.router.add_get("/healthz", _healthz)
    app.router.add_post("/{tail:.*}", _post)
    app.router.add_get("/{encoded:.+}", _get)
    return app


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _post(request: web.Request) -> web.Response:
    if request.content_type != OCSP_REQUEST_TYPE:
        return _malformed()
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _malformed()
    return await _answer(request.app, body)


async def _get(request: web.Request) -> web.Response:
    # The raw path keeps %2F etc. encoded, so unquote exactly once here.
    encoded = unquote(request.raw_path.lstrip("/").split("?", 1)[0])
    try:
        der = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return _malformed()
    return await _answer(request.app, der)


async def _answer(app: web.Application, der: bytes) -> web.Response:
    responder = app[RESPONDER]
    now = app[CLOCK]()
    # The responder reads the CA index from disk: keep that off the event loop.
    body = await asyncio.to_thread(responder.respond, der, now=now)
    return web.Response(body=body, content_type=OCSP_RESPONSE_TYPE)


def _malformed() -> web.Response:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    return web.Response(
        body=response.public_bytes(serialization.Encoding.DER), content_type=OCSP_RESPONSE_TYPE
    )

"""The bench backend: a 1 KB JSON document, a FHIR patient, and large bodies.

- ``GET /doc``: the same 1 KB JSON document every time;
- ``GET /fhir/Patient/{id}``: a sandbox example patient (consent-governed path);
- ``GET /blob?size=N``: N bytes streamed in 1 MiB chunks;
- ``POST /blob``: the body read to the end and counted, answered with its size.

Run as ``python -m bench.backend`` (prints ``PORT <n>``).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from bench._serve import serve_forever, use_uvloop
from gateway.sandbox.backends import fhir_patients

__all__ = ["DOCUMENT", "backend_app"]

_CHUNK = 1024 * 1024


def _document() -> bytes:
    """A JSON object of exactly 1024 bytes."""
    base = {"id": "bench-1", "kind": "timetable-stop", "name": "Central station", "pad": ""}
    size = len(json.dumps(base, separators=(",", ":")).encode())
    base["pad"] = "x" * (1024 - size)
    body = json.dumps(base, separators=(",", ":")).encode()
    assert len(body) == 1024
    return body


DOCUMENT = _document()


def backend_app() -> web.Application:
    patients = {k: json.dumps(v).encode() for k, v in fhir_patients().items()}
    block = b"\x5a" * _CHUNK
    app = web.Application(client_max_size=1024**4)

    async def doc(_: web.Request) -> web.Response:
        return web.Response(body=DOCUMENT, content_type="application/json")

    async def patient(request: web.Request) -> web.Response:
        found = patients.get(request.match_info["id"])
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found, content_type="application/fhir+json")

    async def blob_get(request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("size", "0"))
        reply = web.StreamResponse()
        reply.content_type = "application/octet-stream"
        reply.content_length = size
        await reply.prepare(request)
        left = size
        while left > 0:
            await reply.write(block[: min(left, _CHUNK)])
            left -= _CHUNK
        await reply.write_eof()
        return reply

    async def blob_post(request: web.Request) -> web.Response:
        received = 0
        async for chunk in request.content.iter_chunked(_CHUNK):
            received += len(chunk)
        return web.json_response({"received": received})

    app.router.add_get("/doc", doc)
    app.router.add_get("/fhir/Patient/{id}", patient)
    app.router.add_get("/blob", blob_get)
    app.router.add_post("/blob", blob_post)
    return app


def main() -> None:
    use_uvloop()
    asyncio.run(serve_forever(backend_app()))


if __name__ == "__main__":
    main()

"""Downloads a node makes are read up to a cap, never to the end of what a server sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from certs.errors import OcspUnavailable, TsaError
from certs.ocsp import OCSP_RESPONSE_TYPE
from certs.ocsp_client import fetch_ocsp_response
from certs.tsa_client import request_timestamp
from gateway.downloads import DownloadTooLarge, read_capped
from member_registry.signing import generate_signing_identity

MIB = 1024 * 1024
# What the stand-in server would stream if nobody stopped reading (300 MB was seen).
ENDLESS = 300 * MIB


class Streamer:
    """A server that streams ``ENDLESS`` bytes, counting what it got out."""

    def __init__(self) -> None:
        self.sent = 0
        self.content_type = "application/octet-stream"
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.stream)
        self.server = TestServer(app, host="127.0.0.1")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": self.content_type})
        await response.prepare(request)
        chunk = b"A" * (256 * 1024)
        try:
            while self.sent < ENDLESS:
                await response.write(chunk)
                self.sent += len(chunk)
        except ConnectionError:
            pass  # the client went away: what we wanted
        return response


@pytest.fixture
async def streamer() -> AsyncIterator[Streamer]:
    server = Streamer()
    await server.server.start_server()
    yield server
    await server.server.close()


async def test_an_endless_answer_is_cut_off_at_the_cap(streamer: Streamer) -> None:
    async with aiohttp.ClientSession() as session, session.get(
        streamer.server.make_url("/x")
    ) as response:
        with pytest.raises(DownloadTooLarge, match="more than 1048576 bytes"):
            await read_capped(response, MIB, what="the test answer")
    # The kernel's buffers let the server get somewhat ahead, never far.
    assert streamer.sent < 32 * MIB


async def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * (2 * MIB))

    app = web.Application()
    app.router.add_get("/", big)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session, session.get(
            server.make_url("/")
        ) as response:
            with pytest.raises(DownloadTooLarge, match="declares 2097152 bytes"):
                await read_capped(response, MIB, what="the test answer")
    finally:
        await server.close()


async def test_an_answer_within_the_cap_is_read_whole() -> None:
    async def small(_: web.Request) -> web.Response:
        return web.Response(body=b"y" * 1000)

    app = web.Application()
    app.router.add_get("/", small)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session, session.get(
            server.make_url("/")
        ) as response:
            assert await read_capped(response, 1000, what="the test answer") == b"y" * 1000
    finally:
        await server.close()


async def test_an_endless_ocsp_answer_is_refused(streamer: Streamer) -> None:
    streamer.content_type = OCSP_RESPONSE_TYPE
    _, cert = generate_signing_identity("RENKEI", datetime.now(UTC) - timedelta(days=1))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(OcspUnavailable, match="sent more than"):
            await fetch_ocsp_response(session, str(streamer.server.make_url("/ocsp")), cert, cert)
    assert streamer.sent < 32 * MIB


async def test_an_endless_time_stamp_answer_is_refused(streamer: Streamer) -> None:
    streamer.content_type = "application/timestamp-reply"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TsaError, match="sent more than"):
            await request_timestamp(session, str(streamer.server.make_url("/tsa")), b"\0" * 32)
    assert streamer.sent < 32 * MIB

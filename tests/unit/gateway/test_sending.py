"""A caller that stops reading a response is cut off; one that reads gets all of it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.limits import HttpLimits
from gateway.sending import send_body

CHUNK = 256 * 1024
BODY = 32 * 1024 * 1024  # beyond what the kernel's buffers on both sides absorb


async def _chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // CHUNK):
        yield b"z" * CHUNK


async def _server(port: int, limits: HttpLimits, outcomes: list[bool]) -> web.AppRunner:
    async def download(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse()
        reply.content_length = BODY
        await reply.prepare(request)
        outcomes.append(await send_body(request, reply, _chunks(BODY), limits))
        return reply

    app = web.Application()
    app.router.add_get("/", download)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _wait_for(outcomes: list[bool], within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not outcomes and loop.time() < deadline:
        await asyncio.sleep(0.05)


async def test_a_client_that_stops_reading_is_cut_off(unused_tcp_port: int) -> None:
    outcomes: list[bool] = []
    limits = HttpLimits(send_idle_timeout_s=0.5, send_grace_s=0.5, min_send_rate_bps=1024)
    runner = await _server(unused_tcp_port, limits, outcomes)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no autotuning
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", unused_tcp_port))
        await asyncio.get_running_loop().sock_sendall(
            sock, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        # ... and never read.
        await _wait_for(outcomes, 15)
    finally:
        sock.close()
        await runner.cleanup()
    assert outcomes == [False]


async def test_a_client_that_reads_gets_the_whole_body(unused_tcp_port: int) -> None:
    outcomes: list[bool] = []
    limits = HttpLimits(send_idle_timeout_s=2, send_grace_s=2, min_send_rate_bps=1024)
    runner = await _server(unused_tcp_port, limits, outcomes)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        received = 0
        while received < BODY:
            chunk = await asyncio.wait_for(reader.read(1024 * 1024), 10)
            assert chunk
            received += len(chunk)
        writer.close()
        await _wait_for(outcomes, 5)
    finally:
        await runner.cleanup()
    assert received == BODY
    assert outcomes == [True]

"""The HTTP guard's parts: limits, the in-flight limiter, error mapping, the aiohttp hook."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web, web_protocol
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from gateway.errors import TooManyRequests
from gateway.guard import GuardedRunner, InFlightLimiter, Refusal, _parse_error
from gateway.limits import HttpLimits, LimitsError, limits_from_table


def test_limits_defaults_and_overrides() -> None:
    assert limits_from_table(None) == HttpLimits()
    limits = limits_from_table({"header_timeout_s": "1.5", "max_headers": "3"})
    assert limits.header_timeout_s == 1.5
    assert limits.max_headers == 3


@pytest.mark.parametrize(
    "table",
    [{"header_timeout_s": "soon"}, {"max_headers": 0}, {"max_headers": -1}, {"nope": 1}, []],
)
def test_bad_limits_are_refused(table: object) -> None:
    with pytest.raises(LimitsError):
        limits_from_table(table)  # type: ignore[arg-type]


def test_in_flight_limiter_caps_each_key_and_releases() -> None:
    limiter = InFlightLimiter()
    keys = [("client", "A", 2)]
    with limiter.hold(keys), limiter.hold(keys):
        with pytest.raises(TooManyRequests), limiter.hold(keys):
            pass
        with limiter.hold([("client", "B", 2)]):
            assert limiter.in_flight("client", "B") == 1
    assert limiter.in_flight("client", "A") == 0
    with limiter.hold(keys):
        assert limiter.in_flight("client", "A") == 1


def test_a_refusal_takes_no_slot() -> None:
    limiter = InFlightLimiter()
    with limiter.hold([("address", "x", 1)]):
        with pytest.raises(TooManyRequests):
            with limiter.hold([("client", "A", 5), ("address", "x", 1)]):
                pass
        assert limiter.in_flight("client", "A") == 0


def test_parse_errors_map_to_documented_codes() -> None:
    assert _parse_error(LineTooLong(bytearray(b"/r1/aaa"), 10)).code == "client.uri_too_long"
    assert _parse_error(LineTooLong(b"aaa", 10)).code == "client.header_too_large"
    assert _parse_error(BadHttpMessage("Too many headers received")).code == (
        "client.header_too_large"
    )
    assert _parse_error(BadHttpMessage("Duplicate Content-Length")).code == (
        "client.malformed_http"
    )
    assert _parse_error(None).code == "client.malformed_http"


def test_the_aiohttp_hook_the_guard_overrides_still_exists() -> None:
    # If an aiohttp upgrade renames it, parse errors would lose their codes.
    assert callable(getattr(web_protocol.RequestHandler, "_make_error_handler", None))


async def test_a_guarded_runner_refuses_and_reports(unused_tcp_port: int) -> None:
    refusals: list[Refusal] = []

    async def sink(refusal: Refusal) -> None:
        refusals.append(refusal)

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = GuardedRunner(
        app, port="client", limits=HttpLimits(header_timeout_s=0.3), max_body_bytes=10,
        sink=sink,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    try:
        for raw, status in (
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"200"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
             b"400"),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", b"413"),
            (b"GET / HTTP/1.1\r\nHo", b"408"),
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
            writer.write(raw)
            data = await asyncio.wait_for(reader.read(4096), 2)
            writer.close()
            assert data.split(b" ")[1] == status, data
    finally:
        await runner.cleanup()
    assert [r.code for r in refusals] == [
        "client.malformed_http", "client.body_too_large", "client.request_timeout",
    ]


async def _serve(app: web.Application, port: int, *, which: str = "client",
                 refusals: list[Refusal], limits: HttpLimits | None = None,
                 max_body_bytes: int = 10) -> GuardedRunner:
    async def sink(refusal: Refusal) -> None:
        refusals.append(refusal)

    runner = GuardedRunner(
        app, port=which, limits=limits or HttpLimits(), max_body_bytes=max_body_bytes,  # type: ignore[arg-type]
        sink=sink,
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        return await asyncio.wait_for(reader.read(65536), 2)
    finally:
        writer.close()


@pytest.mark.parametrize("which", ["client", "peer"])
async def test_a_path_outside_the_protocol_gets_a_coded_404(
    unused_tcp_port: int, which: str
) -> None:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def missing(_: web.Request) -> web.Response:
        raise web.HTTPNotFound(text="no such record")

    app = web.Application()
    app.router.add_get("/r1/{tail:.*}", hello)
    app.router.add_get("/r1x/missing", missing)
    refusals: list[Refusal] = []
    runner = await _serve(app, unused_tcp_port, which=which, refusals=refusals)
    try:
        for target in ("/", "/r2/I/C/M/S/x", "/R1/I/C/M/S/x"):
            data = await _exchange(unused_tcp_port, f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n"
                                   .encode())
            assert data.startswith(b"HTTP/1.1 404"), data
            assert b"X-Road-Error: client.not_found" in data
        # A 404 a handler makes itself is its own answer, not the node's.
        data = await _exchange(unused_tcp_port, b"GET /r1x/missing HTTP/1.1\r\nHost: a\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 404")
        assert b"X-Road-Error" not in data
        assert b"no such record" in data
    finally:
        await runner.cleanup()
    assert [(r.code, r.status, r.path) for r in refusals] == [
        ("client.not_found", 404, "/"),
        ("client.not_found", 404, "/r2/I/C/M/S/x"),
        ("client.not_found", 404, "/R1/I/C/M/S/x"),
    ]


async def test_the_management_port_keeps_its_own_404(unused_tcp_port: int) -> None:
    refusals: list[Refusal] = []
    runner = await _serve(web.Application(), unused_tcp_port, which="management",
                          refusals=refusals)
    try:
        data = await _exchange(unused_tcp_port, b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
    finally:
        await runner.cleanup()
    assert data.startswith(b"HTTP/1.1 404")
    assert b"X-Road-Error" not in data
    assert refusals == []


async def test_expect_continue_over_the_limit_is_refused_before_100(
    unused_tcp_port: int,
) -> None:
    read: list[int] = []

    async def upload(request: web.Request) -> web.Response:
        read.append(len(await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/r1/x", upload)
    refusals: list[Refusal] = []
    runner = await _serve(app, unused_tcp_port, refusals=refusals, max_body_bytes=10)
    try:
        over = await _exchange(
            unused_tcp_port,
            b"POST /r1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n"
            b"Expect: 100-continue\r\n\r\n",
        )
        within = await _exchange(
            unused_tcp_port,
            b"POST /r1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
            b"Expect: 100-continue\r\n\r\n",
        )
    finally:
        await runner.cleanup()
    assert over.startswith(b"HTTP/1.1 413"), over
    assert b"100 Continue" not in over
    assert b"X-Road-Error: client.body_too_large" in over
    assert within.startswith(b"HTTP/1.1 100 Continue"), within
    assert [r.code for r in refusals] == ["client.body_too_large"]
    assert read == []

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

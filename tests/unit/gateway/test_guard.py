"""The HTTP guard's parts: limits, the in-flight limiter, error mapping, the aiohttp hook."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aiohttp import ClientSession, TCPConnector, web, web_protocol
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from gateway.errors import TooManyRequests
from gateway.guard import GuardedRunner, GuardedSite, InFlightLimiter, Refusal, _parse_error
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


async def _wait_closed(reader: asyncio.StreamReader, within: float) -> bytes:
    """What the server sent before it closed, or TimeoutError if it keeps the line."""
    data = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        chunk = await asyncio.wait_for(reader.read(4096), max(deadline - loop.time(), 0.01))
        if not chunk:
            return data
        data += chunk


def _hello_app() -> web.Application:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/r1/x", hello)
    return app


async def test_a_connection_that_sends_nothing_is_closed(unused_tcp_port: int) -> None:
    refusals: list[Refusal] = []
    limits = HttpLimits(first_byte_timeout_s=0.3, idle_timeout_s=30)
    runner = await _serve(_hello_app(), unused_tcp_port, refusals=refusals, limits=limits)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        try:
            assert await _wait_closed(reader, 3) == b""
        finally:
            writer.close()
        # A connection that asks in time is served, and may then wait idle_timeout_s.
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        try:
            writer.write(b"GET /r1/x HTTP/1.1\r\nHost: a\r\n\r\n")
            assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
            with pytest.raises(TimeoutError):
                await _wait_closed(reader, 0.8)
        finally:
            writer.close()
    finally:
        await runner.cleanup()
    assert refusals == []  # nothing was asked, so nothing is audited


async def _open_from(address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))


async def test_the_global_cap_does_not_lock_out_another_address(unused_tcp_port: int) -> None:
    """Two addresses hold every connection, idle; a third address is still served."""
    refusals: list[Refusal] = []
    limits = HttpLimits(max_connections=6, max_connections_per_ip=4, first_byte_timeout_s=30)
    runner = await _serve(_hello_app(), unused_tcp_port, refusals=refusals, limits=limits)
    held = []
    try:
        for address in ("127.0.0.2", "127.0.0.3"):
            for _ in range(3):
                held.append(await _open_from(address, unused_tcp_port))
        await asyncio.sleep(0.1)
        reader, writer = await _open_from("127.0.0.4", unused_tcp_port)
        writer.write(b"GET /r1/x HTTP/1.1\r\nHost: a\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"ok"), 2)).startswith(b"HTTP/1.1 200")
        held.append((reader, writer))  # kept open: the cap stays reached
        # One idle connection of the holders made room, and was closed.
        closed = 0
        for held_reader, _ in held[:-1]:
            try:
                if await asyncio.wait_for(held_reader.read(1), 0.2) == b"":
                    closed += 1
            except TimeoutError:
                pass
        assert closed == 1
        # A holder gets no room at another holder's expense.
        reader, writer = await _open_from("127.0.0.2", unused_tcp_port)
        data = await asyncio.wait_for(reader.read(4096), 2)
        writer.close()
        assert data.startswith(b"HTTP/1.1 429"), data
    finally:
        for _, held_writer in held:
            held_writer.close()
        await runner.cleanup()


async def test_connections_in_use_are_never_evicted(unused_tcp_port: int) -> None:
    refusals: list[Refusal] = []
    limits = HttpLimits(max_connections=4, max_connections_per_ip=4, header_timeout_s=30,
                        first_byte_timeout_s=30)
    runner = await _serve(_hello_app(), unused_tcp_port, refusals=refusals, limits=limits)
    held = []
    try:
        for _ in range(4):
            reader, writer = await _open_from("127.0.0.2", unused_tcp_port)
            writer.write(b"GET /r1/x HTTP/1.1\r\nHo")  # a head still arriving
            held.append((reader, writer))
        await asyncio.sleep(0.1)
        reader, writer = await _open_from("127.0.0.3", unused_tcp_port)
        data = await asyncio.wait_for(reader.read(4096), 2)
        writer.close()
        assert data.startswith(b"HTTP/1.1 429"), data
        for _, held_writer in held:
            held_writer.write(b"st: a\r\n\r\n")
        for held_reader, _ in held:
            assert (await asyncio.wait_for(held_reader.readuntil(b"ok"), 2)).startswith(
                b"HTTP/1.1 200"
            )
    finally:
        for _, held_writer in held:
            held_writer.close()
        await runner.cleanup()
    assert [r.code for r in refusals] == ["client.too_many_requests"]


async def test_a_tls_handshake_that_never_starts_is_cut_off(
    unused_tcp_port: int, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from certs.keys import save_certificate, save_private_key
    from member_registry.signing import generate_signing_identity

    key, cert = generate_signing_identity("RENKEI", datetime.now(UTC) - timedelta(days=1))
    save_private_key(key, tmp_path / "key.pem")
    save_certificate(cert, tmp_path / "cert.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    runner = GuardedRunner(
        _hello_app(), port="peer", limits=HttpLimits(), max_body_bytes=10,
        sink=_no_sink,
    )
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", unused_tcp_port, ssl_context=context,
                       handshake_timeout_s=0.3)
    await site.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        try:
            assert await _wait_closed(reader, 3) == b""
        finally:
            writer.close()
    finally:
        await runner.cleanup()


async def _no_sink(_: Refusal) -> None:
    return None


def _connection_app(seen: list[int]) -> web.Application:
    """Answers with nothing but records which client connection (source port) asked."""

    async def which(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.append(int(peer[1]) if peer else -1)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/r1/x", which)
    return app


async def _sequential(port: int, count: int, *, pause_after: int | None = None,
                      pause_s: float = 0.0) -> list[str]:
    connection_headers = []
    async with ClientSession(connector=TCPConnector(limit=1)) as session:
        for number in range(1, count + 1):
            async with session.get(f"http://127.0.0.1:{port}/r1/x") as response:
                assert response.status == 200
                await response.read()
                connection_headers.append(response.headers.get("Connection", ""))
            if number == pause_after:
                await asyncio.sleep(pause_s)
    return connection_headers


async def test_a_connection_serves_a_bounded_number_of_requests(unused_tcp_port: int) -> None:
    """So that processes sharing a port (SO_REUSEPORT) get new connections, hence requests."""
    seen: list[int] = []
    limits = HttpLimits(max_requests_per_connection=3, idle_timeout_s=30)
    runner = await _serve(_connection_app(seen), unused_tcp_port, refusals=[], limits=limits)
    try:
        headers = await _sequential(unused_tcp_port, 7)
    finally:
        await runner.cleanup()
    # One kept-alive client connection, yet three server connections: 3 + 3 + 1.
    assert [seen.index(port) for port in seen] == [0, 0, 0, 3, 3, 3, 6]
    assert [h.lower() for h in headers][2::3] == ["close", "close"]


async def test_a_connection_past_its_age_is_closed_after_its_next_response(
    unused_tcp_port: int,
) -> None:
    seen: list[int] = []
    limits = HttpLimits(max_connection_age_s=0.3, idle_timeout_s=30)
    runner = await _serve(_connection_app(seen), unused_tcp_port, refusals=[], limits=limits)
    try:
        headers = await _sequential(unused_tcp_port, 4, pause_after=1, pause_s=0.5)
    finally:
        await runner.cleanup()
    # The first request is young enough; the second, after the pause, closes the connection.
    assert [h.lower() == "close" for h in headers] == [False, True, False, False]
    assert seen[0] == seen[1]
    assert seen[2] != seen[1]

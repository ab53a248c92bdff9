"""The HTTP guard in front of every port: framing, sizes, deadlines and caps.

aiohttp's parser (llhttp) already refuses the classic smuggling shapes
(Content-Length with Transfer-Encoding, duplicate Content-Length, obs-fold,
bare LF, bad chunk sizes); this module makes those refusals documented
``X-Road-Error`` codes with an audit row instead of aiohttp's plain text, and
adds what the parser lets through:

- HTTP versions other than 1.1 (1.0 too on the client and management ports),
- absolute-form targets, ``Upgrade``, ``Connection`` naming other headers,
  transfer codings other than ``chunked``, unknown ``Expect``, odd methods,
- URIs and bodies beyond the limits (413 from ``Content-Length``, before a
  body byte is read),
- a request head not complete within ``header_timeout_s`` of its first byte,
  and a body that stalls or trickles (408, connection closed),
- connections per remote address and exchanges in flight per peer
  certificate or address (429 with ``Retry-After``; the client port's cap
  per client subsystem is in ``gateway/client_port.py``).

Every refusal goes to a :data:`RefusalSink` (the node's audit log).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast

import structlog
from aiohttp import web, web_protocol
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.typedefs import Middleware

from gateway.errors import (
    BodyTooLarge,
    ExpectationFailed,
    GatewayError,
    HeaderTooLarge,
    HttpVersionNotSupported,
    MalformedHttp,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    TooManyRequests,
    UriTooLong,
)
from gateway.limits import HttpLimits
from gateway.responses import error_body, error_response
from gateway.tls import peer_certificate_der

__all__ = [
    "GuardedRunner",
    "GuardedSite",
    "InFlightLimiter",
    "Port",
    "Refusal",
    "RefusalSink",
    "guard_middleware",
]

log = structlog.get_logger(__name__)

Port = Literal["client", "peer", "management"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CONNECTION_TOKENS = frozenset({"keep-alive", "close"})
# Bodies are watched this often for stalls; small enough to cut off within seconds.
_WATCH_INTERVAL_S = 0.25


@dataclass(frozen=True, slots=True)
class Refusal:
    """One request the guard refused, as the audit log records it."""

    port: Port
    code: str
    status: int
    message: str
    method: str = "-"
    path: str = "-"
    remote: str | None = None
    client: str | None = None
    message_id: str | None = None


RefusalSink = Callable[[Refusal], Coroutine[Any, Any, None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class InFlightLimiter:
    """Counts exchanges in flight per key; refuses once a key is at its cap."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def in_flight(self, kind: str, key: str) -> int:
        return self._counts[(kind, key)]

    @contextlib.contextmanager
    def hold(self, keys: list[tuple[str, str, int]]) -> Iterator[None]:
        """Hold one slot for each ``(kind, key, cap)``, or raise :class:`TooManyRequests`."""
        for kind, key, cap in keys:
            if self._counts[(kind, key)] >= cap:
                raise TooManyRequests(f"too many exchanges in flight for this {kind}")
        taken = [(kind, key) for kind, key, _ in keys]
        for slot in taken:
            self._counts[slot] += 1
        try:
            yield
        finally:
            for slot in taken:
                self._counts[slot] -= 1
                if self._counts[slot] <= 0:
                    del self._counts[slot]


def _check_head(port: Port, request: web.Request, limits: HttpLimits, max_body: int) -> None:
    allowed = {(1, 1)} if port == "peer" else {(1, 1), (1, 0)}
    if (request.version.major, request.version.minor) not in allowed:
        raise HttpVersionNotSupported(
            f"HTTP/{request.version.major}.{request.version.minor} is not accepted on this port"
        )
    if request.method not in _METHODS:
        raise MethodNotAllowed(f"the method {request.method[:16]} is not accepted")
    if len(request.raw_path) > limits.max_uri_bytes:
        raise UriTooLong(f"the request target exceeds {limits.max_uri_bytes} bytes")
    if not request.raw_path.startswith("/") or request.raw_path.startswith("//"):
        raise MalformedHttp("only origin-form request targets are accepted")
    headers = request.headers
    codings = headers.getall("Transfer-Encoding", [])
    if codings and (len(codings) > 1 or codings[0].strip().lower() != "chunked"):
        raise MalformedHttp("the only transfer coding accepted is a single 'chunked'")
    if "Upgrade" in headers:
        raise MalformedHttp("protocol upgrades are not supported")
    for value in headers.getall("Connection", []):
        for token in value.split(","):
            if token.strip() and token.strip().lower() not in _CONNECTION_TOKENS:
                raise MalformedHttp("Connection may only say keep-alive or close")
    if port == "management" and headers.get("Content-Encoding", "identity") != "identity":
        raise MalformedHttp("management requests must not be compressed")
    if request.content_length is not None and request.content_length > max_body:
        raise BodyTooLarge(f"body exceeds the limit of {max_body} bytes")


def _in_flight_keys(
    port: Port, request: web.Request, limits: HttpLimits
) -> list[tuple[str, str, int]]:
    keys = [("address", request.remote or "-", limits.max_in_flight_per_ip)]
    # The client port's per-subsystem cap is held once the caller has proven
    # which subsystem it is (gateway/client_port.py), never by what it claims.
    if port == "peer":
        transport = request.transport
        der = peer_certificate_der(transport.get_extra_info("ssl_object") if transport else None)
        peer = hashlib.sha256(der).hexdigest() if der else "-"
        keys.append(("peer", peer, limits.max_in_flight_per_peer))
    return keys


async def _watch_body(request: web.Request, limits: HttpLimits) -> None:
    """Fail the body's reads once the client stalls or trickles it."""
    content = request.content
    loop = asyncio.get_running_loop()
    started = last_progress = loop.time()
    last_total = content.total_bytes
    while not content.is_eof() and content.exception() is None:
        await asyncio.sleep(_WATCH_INTERVAL_S)
        now = loop.time()
        # Unread buffered bytes mean the node is behind, not the client.
        buffered = int(getattr(content, "_size", 0))
        if content.total_bytes != last_total or buffered:
            last_total, last_progress = content.total_bytes, now
        elapsed = now - started
        if now - last_progress > limits.body_idle_timeout_s:
            reason = f"no body data for {limits.body_idle_timeout_s:g} s"
        elif elapsed > limits.body_timeout_s:
            reason = f"the body was not received within {limits.body_timeout_s:g} s"
        elif (
            elapsed > limits.body_grace_s
            and not buffered
            and content.total_bytes / elapsed < limits.min_body_rate_bps
        ):
            reason = f"the body arrives slower than {limits.min_body_rate_bps} bytes/s"
        else:
            continue
        content.set_exception(RequestTimeout(reason))
        return


def guard_middleware(
    port: Port,
    limits: HttpLimits,
    *,
    max_body_bytes: int,
    sink: RefusalSink,
    limiter: InFlightLimiter | None = None,
) -> Middleware:
    """The request-level checks; put it first so it runs before anything else."""
    flights = limiter if limiter is not None else InFlightLimiter()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            _check_head(port, request, limits, max_body_bytes)
            with flights.hold(_in_flight_keys(port, request, limits)):
                watcher = None
                if request.body_exists:
                    watcher = asyncio.create_task(_watch_body(request, limits))
                try:
                    return await handler(request)
                except web.HTTPNotFound as exc:
                    # The router's own 404 on the exchange ports (a path outside
                    # /r1/): coded and logged like any refusal the node makes.
                    if port == "management" or request.match_info.http_exception is not exc:
                        raise
                    raise NotFound("the path is not part of the protocol: use /r1/...") from exc
                finally:
                    if watcher is not None:
                        watcher.cancel()
        except (HttpVersionNotSupported, MethodNotAllowed, UriTooLong, MalformedHttp,
                BodyTooLarge, TooManyRequests, NotFound) as exc:
            if isinstance(exc, BodyTooLarge) and request.content_length is None:
                raise  # a chunked body outgrew the limit inside a handler that logged it
            return await _refused(port, exc, request, sink, limits)

    return guard


async def _refused(
    port: Port, exc: GatewayError, request: web.Request, sink: RefusalSink, limits: HttpLimits
) -> web.Response:
    """Log a refusal and answer it; the connection is closed unless it is a 404 or 429."""
    await sink(_refusal(port, exc, request))
    headers = {"Connection": "close"} if exc.status not in (404, 429) else {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(limits.retry_after_s)
    return error_response(
        exc.code, exc.message, exc.status,
        accept=request.headers.get("Accept"), headers=headers,
    )


def _expect_checked(
    handle: Handler, port: Port, sink: RefusalSink, limits: HttpLimits, max_body_bytes: int
) -> Handler:
    """Check a request that carries ``Expect`` before anything answers it.

    aiohttp answers ``Expect: 100-continue`` (and a plain 417 for anything
    else) before any middleware runs, so the check wraps the application's
    handler itself: an unknown expectation gets a code and an audit row, and
    a head the guard would refuse (a declared body over the limit above all)
    is refused before ``100 Continue`` invites the body.
    """

    async def checked(request: web.Request) -> web.StreamResponse:
        values = request.headers.getall("Expect", [])
        if not values:
            return await handle(request)
        try:
            if len(values) > 1 or values[0].strip().lower() != "100-continue":
                raise ExpectationFailed("only 'Expect: 100-continue' is supported")
            _check_head(port, request, limits, max_body_bytes)
        except (ExpectationFailed, HttpVersionNotSupported, MethodNotAllowed, UriTooLong,
                MalformedHttp, BodyTooLarge) as exc:
            response = await _refused(port, exc, request, sink, limits)
            response.force_close()
            return response
        return await handle(request)

    return checked


def _refusal(port: Port, exc: GatewayError, request: web.BaseRequest | None) -> Refusal:
    if request is None:
        return Refusal(port=port, code=exc.code, status=exc.status, message=exc.message)
    return Refusal(
        port=port,
        code=exc.code,
        status=exc.status,
        message=exc.message,
        method=request.method[:16],
        path=request.raw_path[:2048],
        remote=request.remote,
        client=request.headers.get("X-Road-Client", None),
        message_id=request.headers.get("X-Road-Id", None),
    )


def _parse_error(exc: BaseException | None) -> GatewayError:
    if isinstance(exc, LineTooLong):
        # llhttp reports an over-long target with the URL buffer (a bytearray).
        if exc.args and isinstance(exc.args[0], bytearray):
            return UriTooLong("the request target is too long")
        return HeaderTooLarge("a request header field is too large")
    if isinstance(exc, HttpProcessingError) and "Too many headers" in str(exc.message):
        return HeaderTooLarge("the request has too many header fields")
    return MalformedHttp("the request is not well-formed HTTP/1.1")


def _raw_refusal(error: GatewayError, limits: HttpLimits) -> bytes:
    """A complete response written straight to the transport (no request object)."""
    body, content_type = error_body(error.code, error.message, str(uuid.uuid4()), xml=False)
    extra = f"Retry-After: {limits.retry_after_s}\r\n" if error.status == 429 else ""
    head = (
        f"HTTP/1.1 {error.status} {_REASONS.get(error.status, 'Error')}\r\n"
        f"X-Road-Error: {error.code}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_REASONS = {408: "Request Timeout", 429: "Too Many Requests"}


def _write_and_close(transport: asyncio.Transport, data: bytes) -> None:
    if not transport.is_closing():
        transport.write(data)
        transport.close()


class _GuardedHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler plus deadlines, caps and coded parse errors."""

    def __init__(self, manager: _GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._head_timer: asyncio.TimerHandle | None = None
        self._first_byte_timer: asyncio.TimerHandle | None = None
        self._remote: str = "-"
        self._counted = False
        self._opened_at = self._loop.time()
        factory = self._request_factory
        assert factory is not None

        def recycling_factory(message: Any, *args: Any) -> web.BaseRequest:
            # A request that reaches a connection's bound is answered with
            # "Connection: close" (aiohttp reads keep-alive off the message).
            if self._past_its_bound():
                message = message._replace(should_close=True)
            return factory(message, *args)

        self._request_factory = recycling_factory

    def _past_its_bound(self) -> bool:
        limits = self._guard.limits
        return (
            self._request_count >= limits.max_requests_per_connection
            or self._loop.time() - self._opened_at >= limits.max_connection_age_s
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._remote = str(peer[0]) if isinstance(peer, tuple) and peer else "-"
        guard = self._guard
        if guard.open_per_ip[self._remote] >= guard.limits.max_connections_per_ip or (
            guard.open_total >= guard.limits.max_connections
            and not guard.make_room_for(self._remote)
        ):
            error = TooManyRequests("too many connections from this address")
            guard.record(Refusal(guard.port, error.code, 429, error.message, remote=self._remote))
            # uvloop's transports are not asyncio.Transport subclasses; both can write.
            self._loop.call_soon(
                _write_and_close, cast(asyncio.Transport, transport),
                _raw_refusal(error, guard.limits),
            )
            return
        self._counted = True
        guard.count(self)
        self._opened_at = self._loop.time()
        super().connection_made(transport)
        self._first_byte_timer = self._loop.call_later(
            guard.limits.first_byte_timeout_s, self._no_first_byte
        )

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        self._cancel_first_byte_timer()
        self.uncount()
        super().connection_lost(exc)

    def uncount(self) -> None:
        if self._counted:
            self._counted = False
            self._guard.uncount(self)

    @property
    def remote(self) -> str:
        return self._remote

    def is_idle(self) -> bool:
        """No request on this connection is being received, handled or answered."""
        return (
            self._current_request is None
            and self._head_timer is None
            and not self._messages
            and not getattr(self, "_request_in_progress", False)
        )

    def evict(self) -> None:
        """Close an idle connection to make room for another address's."""
        self.uncount()
        self.force_close()

    def data_received(self, data: bytes) -> None:
        self._cancel_first_byte_timer()
        before = self._request_count
        if self._head_timer is None and self._current_request is None and not self._messages:
            self._head_timer = self._loop.call_later(
                self._guard.limits.header_timeout_s, self._head_too_slow
            )
        super().data_received(data)
        if self._request_count != before:
            self._cancel_head_timer()

    def _cancel_first_byte_timer(self) -> None:
        if self._first_byte_timer is not None:
            self._first_byte_timer.cancel()
            self._first_byte_timer = None

    def _no_first_byte(self) -> None:
        # Nothing was asked, so there is nothing to answer or audit: close.
        self._first_byte_timer = None
        log.info("connection_without_request_closed", port=self._guard.port,
                 remote=self._remote, after_s=self._guard.limits.first_byte_timeout_s)
        self.force_close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.transport is None or self._current_request is not None:
            return
        error = RequestTimeout(
            f"the request head was not received within {self._guard.limits.header_timeout_s:g} s"
        )
        self._guard.record(
            Refusal(self._guard.port, error.code, error.status, error.message, remote=self._remote)
        )
        self.transport.write(_raw_refusal(error, self._guard.limits))
        self.force_close()  # closes the transport too

    def _make_error_handler(
        self, err_info: Any
    ) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
        # aiohttp answers parse errors with plain text; we answer with a code
        # and an audit row. tests/unit/gateway/test_guard.py pins this hook.
        error = _parse_error(err_info.exc)
        guard = self._guard
        remote = self._remote

        async def handler(_: web.BaseRequest) -> web.StreamResponse:
            await guard.sink(Refusal(guard.port, error.code, error.status, error.message,
                                     remote=remote))
            body, content_type = error_body(error.code, error.message, str(uuid.uuid4()),
                                            xml=False)
            response = web.Response(
                status=error.status,
                body=body,
                headers={"X-Road-Error": error.code, "Content-Type": content_type},
            )
            response.force_close()
            return response

        return handler


class _GuardedServer(web.Server):
    def __init__(
        self,
        handler: Any,
        *,
        port: Port,
        limits: HttpLimits,
        sink: RefusalSink,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.port: Port = port
        self.limits = limits
        self.sink = sink
        self.open_total = 0
        self.open_per_ip: Counter[str] = Counter()
        self._handlers: dict[str, set[_GuardedHandler]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def count(self, handler: _GuardedHandler) -> None:
        self.open_total += 1
        self.open_per_ip[handler.remote] += 1
        self._handlers.setdefault(handler.remote, set()).add(handler)

    def uncount(self, handler: _GuardedHandler) -> None:
        self.open_total -= 1
        self.open_per_ip[handler.remote] -= 1
        if self.open_per_ip[handler.remote] <= 0:
            del self.open_per_ip[handler.remote]
        handlers = self._handlers.get(handler.remote)
        if handlers is not None:
            handlers.discard(handler)
            if not handlers:
                del self._handlers[handler.remote]

    def make_room_for(self, remote: str) -> bool:
        """At the global cap: close an idle connection of an address holding more.

        The global cap must not let a few addresses lock every other one out,
        so a newcomer may take the place of an idle connection (one that sent
        nothing yet, or waits between requests) of the address holding the
        most connections, as long as that address holds more than the
        newcomer would after it. An address that holds as many as any other
        gets no room this way, and nothing in progress is ever cut.
        """
        own = self.open_per_ip[remote]
        for address, held in self.open_per_ip.most_common():
            if held <= own + 1:
                return False
            for handler in list(self._handlers.get(address, ())):
                if handler.is_idle():
                    log.info("idle_connection_evicted", port=self.port, remote=address,
                             held=held, for_remote=remote)
                    handler.evict()
                    return True
        return False

    def record(self, refusal: Refusal) -> None:
        """Log a refusal made outside any request task (e.g. at connect)."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self.sink(refusal))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __call__(self) -> web_protocol.RequestHandler:
        return _GuardedHandler(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An ``AppRunner`` whose connections go through the guard.

    Bodies are never decompressed by the node: they pass byte for byte, so
    a compressed body costs what it weighs on the wire.
    """

    def __init__(
        self,
        app: web.Application,
        *,
        port: Port,
        limits: HttpLimits,
        max_body_bytes: int,
        sink: RefusalSink,
        **kwargs: Any,
    ) -> None:
        app.middlewares.insert(
            0, guard_middleware(port, limits, max_body_bytes=max_body_bytes, sink=sink)
        )
        super().__init__(
            app,
            max_line_size=limits.max_uri_bytes + 64,
            max_field_size=(
                limits.max_peer_field_bytes if port == "peer" else limits.max_field_bytes
            ),
            max_headers=limits.max_headers,
            keepalive_timeout=limits.idle_timeout_s,
            auto_decompress=False,
            **kwargs,
        )
        self._guard_port: Port = port
        self._guard_limits = limits
        self._guard_sink = sink
        self._guard_max_body = max_body_bytes

    async def _make_server(self) -> web.Server:
        # AppRunner._make_server and Application._make_handler, with our server class.
        loop = asyncio.get_running_loop()
        app = self._app
        app._set_loop(loop)
        app.on_startup.freeze()
        await app.startup()
        app.freeze()
        return _GuardedServer(
            _expect_checked(
                app._handle, self._guard_port, self._guard_sink, self._guard_limits,
                self._guard_max_body,
            ),
            request_factory=app._make_request,
            loop=loop,
            port=self._guard_port,
            limits=self._guard_limits,
            sink=self._guard_sink,
            debug=app._debug,
            **self._kwargs,
        )


class GuardedSite(web.TCPSite):
    """A ``TCPSite`` whose TLS handshakes must finish within a deadline.

    asyncio gives a handshake 60 s by default, and a connection is handed to
    the guard only once its handshake is done, so a peer-port connection that
    never says hello would be held that long. aiohttp's ``TCPSite`` does not
    pass the deadline on, so ``start`` is its own, with it. ``sock`` is a socket
    bound before the node wrote anything (gateway/preflight.py); without one the
    site binds ``host:port`` itself.
    """

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, *, handshake_timeout_s: float,
        sock: Any = None, **kwargs: Any,
    ) -> None:
        super().__init__(runner, host, port, **kwargs)
        self._handshake_timeout_s = handshake_timeout_s
        self._sock = sock

    async def start(self) -> None:
        self._runner._reg_site(self)
        server = self._runner.server
        assert server is not None
        handshake = self._handshake_timeout_s if self._ssl_context else None
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            self._server = await loop.create_server(
                server, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog,
                ssl_handshake_timeout=handshake,
            )
        else:
            self._server = await loop.create_server(
                server,
                self._host,
                self._port,
                ssl=self._ssl_context,
                backlog=self._backlog,
                reuse_address=self._reuse_address,
                reuse_port=self._reuse_port,
                ssl_handshake_timeout=handshake,
            )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port

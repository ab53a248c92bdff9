"""The client port's gate: who is calling, proven before anything else runs.

A middleware on the client application (behind the HTTP guard) reads what
the connection and the request head prove (TLS, the TLS client certificate,
a client token, a loopback address), checks it against the subsystem named
in ``X-Road-Client`` (``gateway/client_auth.py``) and only then takes one of
that subsystem's in-flight slots, so the per-client caps count proven
callers: nobody can fill a subsystem's slots by naming it. A refusal gets
``client.authentication_failed`` (401) and an audit row.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from certs.identifiers import ClientId
from gateway.client_auth import (
    TOKEN_HEADER,
    CallerCredentials,
    Proof,
    authenticate_client,
    is_loopback,
)
from gateway.context import NodeContext
from gateway.errors import (
    ClientAuthenticationFailed,
    ClientError,
    GatewayError,
    TooManyRequests,
)
from gateway.guard import InFlightLimiter, Refusal, RefusalSink
from gateway.protocol import NGSI_LD_ROOT, parse_client_header, parse_exchange_request
from gateway.responses import error_response
from gateway.tls import peer_certificate_der

__all__ = ["caller_credentials", "client_auth_middleware"]

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _claimed(request: web.Request) -> ClientId | None:
    """The subsystem a well-formed request names.

    A request the protocol refuses anyway (ambiguous path, repeated or
    malformed ``X-Road-Client``, node-set headers) is left to the exchange
    handler, which refuses it with its own code before anything is sent.
    """
    if request.path.startswith(NGSI_LD_ROOT + "/"):
        try:
            return parse_client_header(request.headers.items())
        except ClientError:
            return None
    try:
        return parse_exchange_request(
            request.method, request.raw_path, request.headers.items()
        ).client
    except ClientError:
        return None


def caller_credentials(request: web.Request) -> CallerCredentials:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = peer_certificate_der(ssl_object)
    tokens = request.headers.getall(TOKEN_HEADER, [])
    if len(tokens) > 1:
        raise ClientAuthenticationFailed(f"{TOKEN_HEADER} must appear at most once")
    remote = request.remote or ""
    return CallerCredentials(
        tls=ssl_object is not None,
        loopback=is_loopback(remote),
        certificate_sha256=hashlib.sha256(der).hexdigest() if der else None,
        token=tokens[0].strip() if tokens else None,
    )


def client_auth_middleware(ctx: NodeContext, sink: RefusalSink) -> Middleware:
    """Authenticate the caller, then hold one of its subsystem's in-flight slots."""
    limiter = InFlightLimiter()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = _claimed(request)
        if client is None or client.member not in ctx.signers:
            # Not a client this node serves: the handler refuses it with its own code.
            return await handler(request)
        try:
            proof = _authenticate(ctx, request, client)
        except ClientAuthenticationFailed as exc:
            await sink(_refusal(request, exc))
            log.info("client_not_authenticated", client=str(client), error=exc.message)
            return error_response(
                exc.code, exc.message, exc.status, accept=request.headers.get("Accept"),
                headers={"WWW-Authenticate": f'{TOKEN_HEADER} realm="{ctx.node_id}"'},
            )
        limits = ctx.settings.limits
        with contextlib.ExitStack() as slot:
            try:
                slot.enter_context(
                    limiter.hold([("client", str(client), limits.max_in_flight_per_client)])
                )
            except TooManyRequests as exc:
                await sink(_refusal(request, exc))
                return error_response(
                    exc.code, exc.message, exc.status, accept=request.headers.get("Accept"),
                    headers={"Retry-After": str(limits.retry_after_s)},
                )
            log.debug("client_authenticated", client=str(client), proof=proof)
            return await handler(request)

    return authenticate


def _authenticate(ctx: NodeContext, request: web.Request, client: ClientId) -> Proof:
    state, tokens = ctx.client_auth, ctx.client_tokens
    if state is None or tokens is None:
        # Fail closed: a node without its client authentication state proves nobody.
        raise ClientAuthenticationFailed("client authentication is not available on this node")
    credentials = caller_credentials(request)
    now = ctx.clock()
    return authenticate_client(
        client,
        credentials,
        snapshot=state.current,
        default=ctx.client_default,
        verify_token=lambda token: tokens.verify(token, now=now),
    )


def _refusal(request: web.Request, exc: GatewayError) -> Refusal:
    return Refusal(
        port="client",
        code=exc.code,
        status=exc.status,
        message=exc.message,
        method=request.method[:16],
        path=request.raw_path[:2048],
        remote=request.remote,
        client=request.headers.get("X-Road-Client"),
        message_id=request.headers.get("X-Road-Id"),
    )

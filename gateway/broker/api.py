"""The NGSI-LD API on the node's client port: ``/ngsi-ld/v1/...`` for information systems.

The caller names its subsystem in ``X-Road-Client`` and proves it as on ``/r1/``
(``gateway/client_port.py`` authenticates before this runs); the subsystem must
be a client registered on this node. Its writes go to its own entities in this
node's store: that is how a provider's systems publish what the node then serves
to the federation.
"""

from __future__ import annotations

import uuid

import structlog
from aiohttp import web

from gateway.broker.views import API_ROOT, NgsiLdApi, NgsiRequest, NgsiResponse
from gateway.context import NodeContext
from gateway.errors import BodyTooLarge, GatewayError, UnknownClient
from gateway.protocol import parse_client_header
from gateway.responses import error_response

__all__ = ["add_ngsi_ld_routes", "client_of"]

log = structlog.get_logger(__name__)

MAX_BODY = 8 * 1024 * 1024
# What a distributed read's legs carry for the caller, checked there as on /r1/.
LEG_HEADERS = ("X-Road-Id", "X-Road-UserId", "X-Road-Issue", "Renkei-Purpose")


def client_of(ctx: NodeContext, request: web.Request) -> str:
    """The calling subsystem, registered on this node; GatewayError otherwise."""
    client = parse_client_header(request.headers.items())
    conf = ctx.conf.current()
    if not conf.has_subsystem(client) or not conf.is_hosted_on(client, ctx.settings.node_id):
        raise UnknownClient(f"{client} is not a client registered on this node")
    if client.member not in ctx.signers:
        raise UnknownClient(f"this node holds no sign key for {client.member}")
    return str(client)


async def read_ngsi_request(request: web.Request) -> NgsiRequest:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BodyTooLarge(f"an NGSI-LD body is limited to {MAX_BODY} bytes")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise BodyTooLarge(f"an NGSI-LD body is limited to {MAX_BODY} bytes")
    raw = request.raw_path
    path, _, query = raw.partition("?")
    return NgsiRequest(
        method=request.method,
        path=path[len(API_ROOT):],
        query=query,
        headers={name: request.headers[name] for name in ("Content-Type", "Accept")
                 if name in request.headers},
        link_headers=tuple(request.headers.getall("Link", ())),
        body=body,
        exchange_headers=tuple(
            (name, value) for name in LEG_HEADERS for value in request.headers.getall(name, ())
        ),
    )


def to_web(response: NgsiResponse) -> web.Response:
    reply = web.Response(status=response.status, body=response.body or None)
    for name, value in response.headers:
        reply.headers.add(name, value)
    return reply


def add_ngsi_ld_routes(app: web.Application, ctx: NodeContext, api: NgsiLdApi) -> None:
    async def serve(request: web.Request) -> web.StreamResponse:
        try:
            owner = client_of(ctx, request)
            ngsi = await read_ngsi_request(request)
        except GatewayError as exc:
            detail = str(uuid.uuid4())
            log.info("ngsi_ld_refused", code=exc.code, error=exc.message, detail=detail)
            return error_response(exc.code, exc.message, exc.status,
                                  accept=request.headers.get("Accept"), detail=detail)
        response = await api.handle(owner, ngsi)
        if ngsi.method != "GET" and response.status < 300:
            for listener in ctx.entity_listeners:
                listener()
        return to_web(response)

    app.router.add_route("*", API_ROOT + "/{tail:.*}", serve)

"""One hop of the reference chain: a bare aiohttp reverse proxy, nothing else.

Two of these make the reference a gateway is compared with: hop 1 takes plain
HTTP from the client and forwards over mutual TLS 1.3 (pooled, reused
connections) to hop 2, which requires a client certificate and forwards plain
HTTP to the backend. Bodies stream both ways; hop-by-hop headers are dropped.

``python -m bench.bare_proxy --upstream URL [--cert C --key K --ca CA] [--listen-tls]``
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web
from yarl import URL

from bench._serve import serve_forever, use_uvloop
from gateway.tls import client_context, server_context

__all__ = ["proxy_app"]

_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length",
    }
)
_CHUNK = 256 * 1024


def _forwardable(headers: object) -> list[tuple[str, str]]:
    assert hasattr(headers, "items")
    return [(k, v) for k, v in headers.items() if k.lower() not in _HOP_BY_HOP]


def proxy_app(upstream: str, connector: aiohttp.TCPConnector | None) -> web.Application:
    app = web.Application(client_max_size=1024**4)
    sessions: list[aiohttp.ClientSession] = []

    async def open_session(_: web.Application) -> AsyncIterator[None]:
        pool = connector or aiohttp.TCPConnector(limit=0, limit_per_host=256)
        sessions.append(
            aiohttp.ClientSession(
                connector=pool,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        )
        yield
        await sessions[0].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        url = URL(upstream + request.raw_path, encoded=True)
        headers = _forwardable(request.headers)
        if request.content_length:
            headers.append(("Content-Length", str(request.content_length)))
        data = request.content.iter_chunked(_CHUNK) if request.body_exists else None
        async with sessions[0].request(
            request.method,
            url,
            headers=headers,
            data=data,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Content-Type", "Accept", "Accept-Encoding"),
        ) as response:
            reply = web.StreamResponse(status=response.status)
            for name, value in _forwardable(response.headers):
                reply.headers.add(name, value)
            if response.content_length is not None:
                reply.content_length = response.content_length
            await reply.prepare(request)
            async for chunk in response.content.iter_chunked(_CHUNK):
                await reply.write(chunk)
            await reply.write_eof()
            return reply

    app.cleanup_ctx.append(open_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True, help="base URL of the next hop")
    parser.add_argument("--cert", help="this hop's certificate (PEM), for mutual TLS")
    parser.add_argument("--key", help="this hop's private key (PEM)")
    parser.add_argument("--ca", help="the CA certificate both hops trust (PEM)")
    parser.add_argument("--listen-tls", action="store_true", help="require client certificates")
    args = parser.parse_args()
    use_uvloop()
    cadata = Path(args.ca).read_text() if args.ca else ""
    server_ssl = None
    connector = None

    async def run() -> None:
        nonlocal server_ssl, connector
        if args.listen_tls:
            server_ssl = server_context(Path(args.cert), Path(args.key), cadata)
        if args.upstream.startswith("https:"):
            tls = client_context(Path(args.cert), Path(args.key), cadata)
            connector = aiohttp.TCPConnector(
                ssl=tls, limit=0, limit_per_host=256, keepalive_timeout=60
            )
        await serve_forever(proxy_app(args.upstream, connector), ssl_context=server_ssl)

    asyncio.run(run())


if __name__ == "__main__":
    main()

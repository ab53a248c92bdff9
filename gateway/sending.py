"""Sending a response body to a caller that may stop reading.

A client that stops reading a large response would hold its exchange slot
(and the spooled temporary file behind the body) for as long as the TCP
connection lives. Each write must complete within ``send_idle_timeout_s``,
and the body as a whole must leave at ``min_send_rate_bps`` or faster after
``send_grace_s``; otherwise the connection is aborted, which frees the slot
and lets the caller close the body's file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

import structlog
from aiohttp import web

from gateway.limits import HttpLimits

__all__ = ["send_body"]

log = structlog.get_logger(__name__)


async def send_body(
    http: web.BaseRequest,
    reply: web.StreamResponse,
    chunks: AsyncIterable[bytes],
    limits: HttpLimits,
) -> bool:
    """Write ``chunks`` to the prepared ``reply`` and finish it; False if the caller was cut off.

    The audit row is already written when a body is sent; a cut-off is logged
    here, and the client sees a connection that ends before ``Content-Length``.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    async for chunk in chunks:
        # This chunk must be out by the rate's deadline and within the idle deadline.
        by_rate = started + limits.send_grace_s + (sent + len(chunk)) / limits.min_send_rate_bps
        timeout = min(limits.send_idle_timeout_s, by_rate - loop.time())
        try:
            if timeout <= 0:
                raise TimeoutError
            await asyncio.wait_for(reply.write(chunk), timeout)
        except TimeoutError:
            log.warning(
                "response_send_too_slow", sent=sent, elapsed_s=round(loop.time() - started, 1),
                idle_timeout_s=limits.send_idle_timeout_s, min_rate_bps=limits.min_send_rate_bps,
            )
            if http.transport is not None:
                http.transport.abort()
            return False
        sent += len(chunk)
    await reply.write_eof()
    return True

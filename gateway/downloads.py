"""Reading what a node downloads (configuration, witness answers) with a size cap.

A server on the registry's address, or anything in between, can stream an
answer without end; a node reads at most ``limit`` bytes of it and gives up
on the rest, so its memory does not grow with what a server sends. A declared
``Content-Length`` over the cap is refused before a byte of the body is read.
OCSP and time-stamp answers are capped the same way in ``certs``.
"""

from __future__ import annotations

import aiohttp

__all__ = ["DownloadTooLarge", "read_capped"]

_CHUNK = 64 * 1024


class DownloadTooLarge(ValueError):
    """A download exceeded its cap; nothing of it is used."""

    code = "server.download_too_large"


async def read_capped(response: aiohttp.ClientResponse, limit: int, *, what: str) -> bytes:
    """The whole body of ``response``, or :class:`DownloadTooLarge` past ``limit`` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise DownloadTooLarge(f"{what} declares {declared} bytes, more than {limit}")
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            response.close()  # drop the connection: the rest is never read
            raise DownloadTooLarge(f"{what} sent more than {limit} bytes")
    return bytes(body)

"""Reading HTTP response bodies with a size limit (OCSP and TSA clients)."""

from __future__ import annotations

import aiohttp

from certs.errors import CertsError

__all__ = ["read_limited"]


async def read_limited(
    response: aiohttp.ClientResponse, limit: int, *, error: type[CertsError], what: str
) -> bytes:
    """The whole body; one longer than ``limit`` bytes raises ``error``."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(8192):
        body += chunk
        if len(body) > limit:
            raise error(f"{what} sent more than {limit} bytes")
    return bytes(body)

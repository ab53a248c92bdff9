"""Outgoing peer connections pinned to the certificates the configuration lists.

OpenSSL checks the provider node's chain to a trusted CA during the
handshake; right after it, before any byte of a request is sent, this
connector checks that the certificate's SHA-256 fingerprint is one the
global configuration registers for the node at that address. Pooled
connections were all checked when they were made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
from cryptography import x509

from certs.keys import fingerprint
from gateway.tls import peer_certificate_der

__all__ = ["PinMismatch", "PinnedConnector", "Pins"]

# (address, port) -> the fingerprints registered for the node listening there
Pins = Callable[[str, int], frozenset[str]]


class PinMismatch(aiohttp.ClientError):
    """The peer's TLS certificate is not the one registered for its address."""


class PinnedConnector(aiohttp.TCPConnector):
    def __init__(self, pins: Pins, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pins = pins

    async def _wrap_create_connection(
        self, *args: Any, req: aiohttp.ClientRequest, **kwargs: Any
    ) -> tuple[asyncio.Transport, Any]:
        transport, protocol = await super()._wrap_create_connection(*args, req=req, **kwargs)
        der = peer_certificate_der(transport.get_extra_info("ssl_object"))
        host, port = req.url.host or "", req.url.port or 443
        allowed = self._pins(host.strip("[]"), port)
        if der is None or fingerprint(x509.load_der_x509_certificate(der)) not in allowed:
            transport.abort()
            raise PinMismatch(
                f"the TLS certificate at {host}:{port} is not one registered for that node"
            )
        return transport, protocol

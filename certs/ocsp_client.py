"""Fetching OCSP responses over HTTP (RFC 6960 Appendix A.1, POST) for stapling.

Only transport happens here; the caller verifies what comes back with
:func:`certs.ocsp.verify_ocsp_response` before relying on it or stapling it.
"""

from __future__ import annotations

import aiohttp
from cryptography import x509

from certs._http import read_limited
from certs.errors import OcspUnavailable
from certs.ocsp import OCSP_REQUEST_TYPE, OCSP_RESPONSE_TYPE, build_ocsp_request

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_RESPONSE_BYTES", "fetch_ocsp_response"]

DEFAULT_TIMEOUT_S = 10.0
# A response with the responder's certificate is a couple of KiB.
MAX_RESPONSE_BYTES = 64 * 1024


async def fetch_ocsp_response(
    session: aiohttp.ClientSession,
    url: str,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> bytes:
    """POST an OCSP request for ``cert`` to ``url``; the DER response, unverified."""
    body = build_ocsp_request(cert, issuer)
    try:
        async with session.post(
            url,
            data=body,
            headers={"Content-Type": OCSP_REQUEST_TYPE, "Accept": OCSP_RESPONSE_TYPE},
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            if response.status != 200:
                raise OcspUnavailable(f"OCSP responder {url} answered HTTP {response.status}")
            if response.content_type != OCSP_RESPONSE_TYPE:
                raise OcspUnavailable(
                    f"OCSP responder {url} answered {response.content_type!r}, "
                    f"not {OCSP_RESPONSE_TYPE}"
                )
            return await read_limited(
                response, MAX_RESPONSE_BYTES, error=OcspUnavailable, what=f"OCSP responder {url}"
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OcspUnavailable(f"cannot reach OCSP responder {url}: {exc!r}") from exc

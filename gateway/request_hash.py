"""``X-Road-Request-Hash`` as PR-REST §4.3 defines it, so a client can check it.

PR-REST 1.0.4 §4.3: the header "SHALL contain the base-64 encoded
SHA512(SHA512(headers)+SHA512(body)). If there is no body, then only the
headers are included in the calculation i.e. the field contains the base-64
encoded SHA512(headers)". The specification does not say how "headers" are
written; Renkei writes them as X-Road serialises a REST request
(``RestRequest.toByteArray``: the method, the request target, then one
``name:value`` line per header, each line ended by CRLF), with fixed choices
that a client can reproduce from what it sent and what the response says:

1. ``METHOD`` CRLF
2. the request target as the consumer node forwards it: ``/r1/`` + the
   service identifier (its parts decoded, ``?`` written ``%3F``) + the path
   after the service code exactly as sent + ``?query`` when there is one, CRLF
3. each end-to-end request header in the order sent, name in lower case:
   ``name:value`` CRLF (hop-by-hop headers, those ``Connection`` names,
   ``Host``, ``User-Agent``, ``Server``, ``Content-Length``,
   ``Renkei-Client-Token``, X-Road's
   response-only headers and the identity headers are not among them)
4. the identity headers in this order, those present: ``x-road-client``
   (decoded, ``INSTANCE/CLASS/CODE[/SUB]``), ``x-road-id`` (the generated
   one when the client sent none), ``x-road-userid``, ``x-road-issue``, ``x-road-security-server``,
   ``x-road-represented-party``, ``renkei-purpose``, ``renkei-subject``
5. ``x-road-request-id:`` the id the response carries, CRLF

"+" is the concatenation of the two binary digests, and a body of zero bytes
counts as no body. The response's signature binds the signed request, which
covers every input here, so the value is also what the provider answered to.
"""

from __future__ import annotations

import base64
import hashlib

from gateway.protocol import ExchangeRequest

__all__ = ["request_head", "xroad_request_hash"]

_CRLF = "\r\n"


def request_head(request: ExchangeRequest, request_id: str) -> bytes:
    """The "headers" part of the hash: request line and headers, as above."""
    security_server = str(request.security_server) if request.security_server else None
    identity = (
        ("x-road-client", str(request.client)),
        ("x-road-id", request.message_id),
        ("x-road-userid", request.user_id),
        ("x-road-issue", request.issue),
        ("x-road-security-server", security_server),
        ("x-road-represented-party", request.represented_party),
        ("renkei-purpose", request.purpose),
        ("renkei-subject", request.subject),
    )
    lines = [request.method, request.target]
    lines += [f"{name}:{value}" for name, value in request.headers]
    lines += [f"{name}:{value}" for name, value in identity if value is not None]
    lines.append(f"x-road-request-id:{request_id}")
    # surrogateescape gives back the bytes of a header value that was not UTF-8.
    return (_CRLF.join(lines) + _CRLF).encode("utf-8", "surrogateescape")


def xroad_request_hash(head: bytes, body_sha512: bytes | None) -> str:
    """``base64(SHA512(SHA512(head) + SHA512(body)))``, or ``base64(SHA512(head))``."""
    if body_sha512 is None:
        digest = hashlib.sha512(head).digest()
    else:
        digest = hashlib.sha512(hashlib.sha512(head).digest() + body_sha512).digest()
    return base64.b64encode(digest).decode("ascii")

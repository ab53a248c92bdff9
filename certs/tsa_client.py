"""Asking a TSA for a time-stamp token over HTTP (RFC 3161 §3.4).

The request carries a random nonce and ``certReq``; the reply must be
``granted``, echo the nonce and stamp the digest that was sent, or
:class:`~certs.errors.TsaError` is raised. The token is returned unverified:
check it with :func:`certs.timestamps.verify_timestamp_token`.
"""

from __future__ import annotations

import secrets

import aiohttp
from asn1crypto import algos, tsp

from certs._http import read_limited
from certs.errors import TsaError
from certs.tsa import (
    ACCEPTED_DIGESTS,
    TIMESTAMP_QUERY_TYPE,
    TIMESTAMP_REPLY_TYPE,
    TimeStampReply,
)

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_REPLY_BYTES", "build_timestamp_request", "request_timestamp"]

DEFAULT_TIMEOUT_S = 10.0
MAX_REPLY_BYTES = 64 * 1024
_NONCE_BITS = 64


def build_timestamp_request(data_digest: bytes, *, nonce: int, hash_algorithm: str) -> bytes:
    """A DER TimeStampReq for ``data_digest`` asking for the TSA certificate."""
    if ACCEPTED_DIGESTS.get(hash_algorithm) != len(data_digest):
        raise TsaError(f"a {hash_algorithm} digest of {len(data_digest)} bytes is not accepted")
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": hash_algorithm}),
                "hashed_message": data_digest,
            },
            "nonce": nonce,
            "cert_req": True,
        }
    )
    return bytes(request.dump())


async def request_timestamp(
    session: aiohttp.ClientSession,
    url: str,
    data_digest: bytes,
    *,
    hash_algorithm: str = "sha256",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> bytes:
    """The DER time-stamp token (a CMS ContentInfo) the TSA at ``url`` gives for ``data_digest``."""
    nonce = secrets.randbits(_NONCE_BITS)
    body = build_timestamp_request(data_digest, nonce=nonce, hash_algorithm=hash_algorithm)
    try:
        async with session.post(
            url,
            data=body,
            headers={"Content-Type": TIMESTAMP_QUERY_TYPE},
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            if response.status != 200 or response.content_type != TIMESTAMP_REPLY_TYPE:
                raise TsaError(
                    f"TSA {url} answered HTTP {response.status} {response.content_type!r}"
                )
            reply = await read_limited(response, MAX_REPLY_BYTES, error=TsaError, what=f"TSA {url}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TsaError(f"cannot reach TSA {url}: {exc!r}") from exc
    return token_from_reply(reply, data_digest=data_digest, nonce=nonce)


def token_from_reply(reply: bytes, *, data_digest: bytes, nonce: int | None) -> bytes:
    """The token in a ``granted`` TimeStampResp that answers this digest and nonce.

    ``nonce=None`` means the request had none, so the token must have none either.
    """
    try:
        response = TimeStampReply.load(reply, strict=True)
        status = response["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            texts = response["status"]["status_string"].native or []
            raise TsaError(f"the TSA refused: {status} {'; '.join(texts)}".strip())
        token = response["time_stamp_token"]
        tst_info = token["content"]["encap_content_info"]["content"].parsed
        stamped = tst_info["message_imprint"]["hashed_message"].native
        echoed = tst_info["nonce"].native
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TsaError(f"malformed TimeStampResp: {exc}") from exc
    if stamped != data_digest:
        raise TsaError("the TSA stamped another digest")
    if echoed != nonce:
        raise TsaError("the TSA did not echo the request's nonce")
    return bytes(token.dump())

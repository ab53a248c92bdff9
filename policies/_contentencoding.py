"""Undo HTTP Content-Encoding (gzip, deflate, identity) within size and ratio caps."""

from __future__ import annotations

import zlib

from policies._jsonparse import FilterLimits
from policies.errors import BodyInvalid, BodyTooLarge, UnsupportedEncoding

__all__ = ["decode_content"]

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS


def _inflate(data: bytes, wbits: int, cap: int) -> bytes:
    output = bytearray()
    remaining = data
    while True:
        decompressor = zlib.decompressobj(wbits)
        try:
            # max_length stops a bomb before it is expanded in memory.
            output += decompressor.decompress(remaining, cap - len(output) + 1)
        except zlib.error as exc:
            raise BodyInvalid(f"the body is not valid compressed data: {exc}") from exc
        if len(output) > cap or decompressor.unconsumed_tail:
            raise BodyTooLarge(f"the body decompresses beyond {cap} bytes")
        if not decompressor.eof:
            raise BodyInvalid("the compressed body is truncated")
        remaining = decompressor.unused_data
        # gzip allows several members back to back; zlib streams do not.
        if not remaining or wbits != _GZIP_WBITS:
            if remaining:
                raise BodyInvalid("the compressed body has trailing data")
            return bytes(output)


def decode_content(body: bytes, encoding: str | None, limits: FilterLimits) -> bytes:
    """Decode ``body`` per its Content-Encoding header value (codings applied in order).

    The result may not exceed ``limits.max_bytes`` nor ``limits.max_compression_ratio``
    times the encoded size (BodyTooLarge); unknown codings raise UnsupportedEncoding.
    """
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    ratio_cap = max(len(body), 1) * limits.max_compression_ratio
    cap = min(limits.max_bytes, ratio_cap)
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, _GZIP_WBITS, cap)
        elif coding == "deflate":
            body = _inflate(body, _ZLIB_WBITS, cap)
        else:
            raise UnsupportedEncoding(f"content encoding {coding!r} is not supported")
    if len(body) > limits.max_bytes:
        raise BodyTooLarge(f"the body exceeds {limits.max_bytes} bytes")
    return body

from __future__ import annotations

import gzip
import zlib

import pytest

from policies.errors import BodyInvalid, BodyTooLarge, UnsupportedEncoding
from policies.filter import FilterLimits, decode_content

PAYLOAD = b'{"name": "Ann", "address": "Tartu"}' * 10


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (PAYLOAD, None),
        (PAYLOAD, ""),
        (PAYLOAD, "identity"),
        (gzip.compress(PAYLOAD), "gzip"),
        (gzip.compress(PAYLOAD), "X-GZIP"),
        (zlib.compress(PAYLOAD), "deflate"),
        (gzip.compress(zlib.compress(PAYLOAD)), "deflate, gzip"),
        (gzip.compress(PAYLOAD[:100]) + gzip.compress(PAYLOAD[100:]), "gzip"),
    ],
)
def test_supported_encodings_decode(encoded: bytes, encoding: str | None) -> None:
    assert decode_content(encoded, encoding, FilterLimits()) == PAYLOAD


@pytest.mark.parametrize("encoding", ["br", "compress", "zstd", "gzip, br"])
def test_unknown_encoding_is_refused(encoding: str) -> None:
    with pytest.raises(UnsupportedEncoding) as info:
        decode_content(gzip.compress(PAYLOAD), encoding, FilterLimits())
    assert info.value.code == "policies.unsupported_encoding"


def test_gzip_bomb_is_refused_by_ratio() -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)
    with pytest.raises(BodyTooLarge) as info:
        decode_content(bomb, "gzip", FilterLimits())
    assert info.value.code == "policies.body_too_large"


def test_decompressed_size_cap() -> None:
    data = bytes(range(256)) * 400  # barely compressible, so only the size cap applies
    with pytest.raises(BodyTooLarge):
        decode_content(gzip.compress(data), "gzip", FilterLimits(max_bytes=50_000))


def test_identity_body_above_size_cap() -> None:
    with pytest.raises(BodyTooLarge):
        decode_content(b"x" * 11, "identity", FilterLimits(max_bytes=10))


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (b"not gzip", "gzip"),
        (gzip.compress(PAYLOAD)[:-12], "gzip"),
        (zlib.compress(PAYLOAD) + b"junk", "deflate"),
        (gzip.compress(PAYLOAD) + b"junk", "gzip"),
        (zlib.compress(PAYLOAD)[:-3], "deflate"),
    ],
)
def test_corrupt_compressed_bodies_are_refused(encoded: bytes, encoding: str) -> None:
    with pytest.raises(BodyInvalid):
        decode_content(encoded, encoding, FilterLimits())

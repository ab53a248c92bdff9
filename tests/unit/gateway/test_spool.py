"""Bodies hashed as they arrive, in memory up to a limit and on disk beyond it."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator

import pytest

from gateway.errors import BodyTooLarge
from gateway.spool import spool


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


async def read(body: object) -> bytes:
    out = b""
    async for chunk in body.chunks():  # type: ignore[attr-defined]
        out += chunk
    return out


@pytest.mark.parametrize("size", [0, 1, 1000, 4096, 10_000, 300_000])
async def test_spooled_body_round_trips_with_its_digest(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    body = await spool(chunks(data, 777), memory_limit=4096, max_size=1_000_000)
    try:
        assert body.size == size
        assert body.sha256 == digest(data)
        assert body.in_memory == (size <= 4096)
        assert await read(body) == data
        assert await read(body) == data  # can be read twice (e.g. retried)
    finally:
        body.close()


async def test_refuses_past_the_limit() -> None:
    with pytest.raises(BodyTooLarge) as info:
        await spool(chunks(b"x" * 5000, 1000), memory_limit=100, max_size=4000)
    assert info.value.status == 413


async def test_content_of_a_spooled_body_is_not_loaded_into_memory() -> None:
    body = await spool(chunks(b"y" * 10_000, 1000), memory_limit=100, max_size=20_000)
    try:
        with pytest.raises(RuntimeError):
            body.content()
    finally:
        body.close()

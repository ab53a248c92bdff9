"""Bodies that must be hashed before they are signed or forwarded.

A body is read once, hashed as it arrives, and kept in memory up to a
threshold; beyond it the rest goes to an anonymous temporary file, so a
node's memory does not grow with the body size (DESIGN §4.2).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from typing import IO

from gateway.errors import BodyTooLarge

__all__ = ["SpooledBody", "spool"]

CHUNK = 256 * 1024


class SpooledBody:
    """A fully received body with its SHA-256, in memory or in a temporary file.

    With ``sha512`` it also keeps the body's SHA-512, which the client-facing
    ``X-Road-Request-Hash`` needs (``gateway/request_hash.py``).
    """

    def __init__(self, memory_limit: int, *, sha512: bool = False) -> None:
        self._memory_limit = memory_limit
        self._buffer = bytearray()
        self._file: IO[bytes] | None = None
        self._hash = hashlib.sha256()
        self._sha512 = hashlib.sha512() if sha512 else None
        self.size = 0

    @property
    def sha512_digest(self) -> bytes:
        """The raw SHA-512 digest; only for bodies spooled with ``sha512=True``."""
        if self._sha512 is None:
            raise RuntimeError("this body was not spooled with its SHA-512")
        return self._sha512.digest()

    @property
    def sha256(self) -> str:
        """URL-safe base64 of the SHA-256 digest, without padding."""
        return base64.urlsafe_b64encode(self._hash.digest()).rstrip(b"=").decode("ascii")

    @property
    def in_memory(self) -> bool:
        return self._file is None

    def feed(self, chunk: bytes) -> None:
        """Add ``chunk`` (in-memory bodies; large ones go through :func:`spool`)."""
        self._append(chunk)

    def _append(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        if self._sha512 is not None:
            self._sha512.update(chunk)
        self.size += len(chunk)
        if self._file is None and len(self._buffer) + len(chunk) <= self._memory_limit:
            self._buffer += chunk
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
            self._file.write(self._buffer)
            self._buffer = bytearray()
        self._file.write(chunk)

    def content(self) -> bytes:
        """The whole body; only for bodies that stayed in memory."""
        if self._file is not None:
            raise RuntimeError("body was spooled to disk; iterate it instead")
        return bytes(self._buffer)

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._file is None:
            if self._buffer:
                yield bytes(self._buffer)
            return
        file = self._file
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, file.seek, 0)
        while True:
            chunk = await loop.run_in_executor(None, file.read, CHUNK)
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buffer = bytearray()


async def spool(
    source: AsyncIterable[bytes], *, memory_limit: int, max_size: int, sha512: bool = False
) -> SpooledBody:
    """Read ``source`` to the end; refuse with 413 past ``max_size`` bytes."""
    body = SpooledBody(memory_limit, sha512=sha512)
    loop = asyncio.get_running_loop()
    try:
        async for chunk in source:
            if body.size + len(chunk) > max_size:
                raise BodyTooLarge(f"body exceeds the limit of {max_size} bytes")
            if body.in_memory and body.size + len(chunk) <= memory_limit:
                body._append(chunk)
            else:
                await loop.run_in_executor(None, body._append, chunk)
    except BaseException:
        body.close()
        raise
    return body

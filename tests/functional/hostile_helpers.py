"""Raw HTTP for hostile-input tests: bytes out, status and headers back, nothing fixed up."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    closed: bool = False


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(status=status, headers=headers, body=body)


async def send_raw(
    url: str,
    raw: bytes,
    *,
    timeout: float = 5.0,
    context: ssl.SSLContext | None = None,
) -> RawResponse:
    """Send ``raw`` as is and read until the server closes or ``timeout``."""
    host, port = host_port(url)
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        writer.write(raw)
        await writer.drain()
        data = b""
        closed = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), deadline - loop.time())
            except TimeoutError:
                break
            if not chunk:
                closed = True
                break
            data += chunk
            response = parse_response(data)
            length = response.headers.get("content-length")
            if length is not None and len(response.body) >= int(length):
                break
        response = parse_response(data)
        response.closed = closed
        return response
    finally:
        writer.close()


async def audit_rows_after(
    management_url: str, token: str, after_seq: int
) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{management_url}/api/audit/rows",
            params={"after_seq": str(after_seq)},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            assert response.status == 200, await response.text()
            return list((await response.json())["rows"])


async def last_seq(management_url: str, token: str) -> int:
    rows = await audit_rows_after(management_url, token, 0)
    return max((int(row["seq"]) for row in rows), default=0)

"""What an attacker can hold on a node: idle connections, slots, files; each is let go.

Caps and deadlines are set low for this federation, so every case shows
within seconds with tens of connections, never thousands.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import gateway.sandbox
from tests.functional.hostile_helpers import host_port, send_raw
from tests.functional.sandbox_helpers import node, sandbox_process
from tests.functional.test_hostile_http import _peer_tls, _proven, _request

HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"
CLIENT = "RENKEI/GOV/HOSP-A/EHR"
BIG = "/r1/RENKEI/GOV/HOSP-B/EHR/big/file"
BIG_BYTES = 24 * 1024 * 1024  # beyond the kernel buffers of both ends of a socket

LIMITS = {
    "RENKEI_NODE_MAX_BODY_BYTES": str(64 * 1024 * 1024),
    "RENKEI_NODE_LIMITS__FIRST_BYTE_TIMEOUT_S": "2",
    "RENKEI_NODE_LIMITS__TLS_HANDSHAKE_TIMEOUT_S": "2",
    "RENKEI_NODE_LIMITS__SEND_IDLE_TIMEOUT_S": "1",
    "RENKEI_NODE_LIMITS__SEND_GRACE_S": "1",
    "RENKEI_NODE_LIMITS__MAX_IN_FLIGHT_PER_CLIENT": "2",
    "RENKEI_NODE_LIMITS__MAX_CONNECTIONS": "24",
    "RENKEI_NODE_LIMITS__MAX_CONNECTIONS_PER_IP": "8",
}


class _Big(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(BIG_BYTES))
        self.end_headers()
        chunk = b"b" * (1024 * 1024)
        for _ in range(BIG_BYTES // len(chunk)):
            self.wfile.write(chunk)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Big)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("resources")
    default = Path(gateway.sandbox.__file__).parent / "default.toml"
    description = directory / "federation.toml"
    description.write_text(
        default.read_text("utf-8")
        + f'\n[[service]]\nid = "RENKEI/GOV/HOSP-B/EHR/big"\nbackend = "{backend}"\n'
        'allowed = ["RENKEI/GOV/HOSP-A/EHR"]\ndescription = "A large download"\n',
        "utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in LIMITS.items():
            patch.setenv(name, value)
        with sandbox_process(directory / "sandbox", description=description) as document:
            document["_dir"] = str(directory / "sandbox")
            yield document


async def _closed_within(
    reader: asyncio.StreamReader, seconds: float
) -> bool:
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(4096), seconds)
            if not chunk:
                return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


@pytest.mark.parametrize("port", ["client_url", "management_url"])
async def test_a_connection_that_sends_nothing_is_closed(
    federation: dict[str, Any], port: str
) -> None:
    reader, writer = await asyncio.open_connection(*host_port(node(federation, HOSP_A)[port]))
    try:
        # first_byte_timeout_s is 2 s here; the old idle deadline was 75 s.
        assert await _closed_within(reader, 8)
    finally:
        writer.close()


async def test_a_peer_connection_that_never_says_hello_is_closed(
    federation: dict[str, Any],
) -> None:
    reader, writer = await asyncio.open_connection(
        *host_port(node(federation, HOSP_B)["peer_url"])
    )
    try:
        assert await _closed_within(reader, 8)  # tls_handshake_timeout_s: 2 s
    finally:
        writer.close()


async def test_a_peer_connection_that_asks_nothing_after_tls_is_closed(
    federation: dict[str, Any],
) -> None:
    reader, writer = await asyncio.open_connection(
        *host_port(node(federation, HOSP_B)["peer_url"]), ssl=_peer_tls(federation)
    )
    try:
        assert await _closed_within(reader, 8)
    finally:
        writer.close()


async def test_idle_connections_from_a_few_addresses_do_not_lock_out_another(
    federation: dict[str, Any],
) -> None:
    """Three addresses fill the global cap (24) with idle connections; a fourth is served."""
    host, port = host_port(node(federation, HOSP_A)["client_url"])
    held = []
    try:
        for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            for _ in range(8):
                held.append(await asyncio.open_connection(host, port, local_addr=(address, 0)))
        reader, writer = await asyncio.open_connection(host, port, local_addr=("127.0.0.9", 0))
        try:
            writer.write(
                _request("/r1/RENKEI/GOV/HOSP-B/EHR/echo/items", headers=(_proven(federation),))
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        finally:
            writer.close()
        assert head.startswith(b"HTTP/1.1 200"), head
    finally:
        for _, held_writer in held:
            held_writer.close()


def _sandbox_pid(directory: str) -> int:
    """The sandbox process this module started (its command line names its directory)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"sandbox" in argv and directory.encode() in argv:
            return int(entry.name)
    raise LookupError(directory)


def _deleted_files(pid: int) -> int:
    """Open files that no longer have a name: spooled bodies (anonymous temporary files)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).endswith("(deleted)"):
                count += 1
        except OSError:
            continue
    return count


async def test_clients_that_stop_reading_lose_their_slots_and_files(
    federation: dict[str, Any],
) -> None:
    """Two clients take both of their subsystem's slots with large downloads and stop reading."""
    client_url = node(federation, HOSP_A)["client_url"]
    host, port = host_port(client_url)
    pid = _sandbox_pid(federation["_dir"])
    loop = asyncio.get_running_loop()
    stalled = []
    try:
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, _request(BIG, headers=(_proven(federation),)))
            stalled.append(sock)  # and never read
        # The subsystem is served again once the node has cut the stalled ones off.
        deadline = loop.time() + 40
        status = 0
        while loop.time() < deadline:
            await asyncio.sleep(0.5)
            response = await send_raw(
                client_url,
                _request("/r1/RENKEI/GOV/HOSP-B/EHR/echo/x", headers=(_proven(federation),)),
            )
            status = response.status
            if status != 429:
                break
        assert status == 200
        # ... and the spooled copies of the large response are gone.
        while _deleted_files(pid) and loop.time() < deadline:
            await asyncio.sleep(0.5)
        assert _deleted_files(pid) == 0
    finally:
        for sock in stalled:
            sock.close()

"""A new node joins a running federation: init → CA issue → register → approve → serve → exchange.

Everything goes through the commands and APIs an operator uses; no file is edited by
hand. The new node runs as its own process and is stopped by its pid.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from gateway.sandbox.build import free_port
from tests.functional.sandbox_helpers import node

CLINIC = "RENKEI/GOV/CLINIC"
CLINIC_NODE = f"{CLINIC}/ss1"
CLINIC_EHR = f"{CLINIC}/EHR"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"
ECHO = "RENKEI/GOV/HOSP-B/EHR/echo"
# Existing nodes learn about the new one at their next configuration refresh (60 s).
EXCHANGE_DEADLINE_S = 150.0


def _renkei(*argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *argv], capture_output=True, text=True,
        env=dict(os.environ), timeout=60, check=False,
    )
    assert result.returncode == 0, f"renkei {' '.join(argv)}: {result.stderr}"
    return result.stdout


@contextmanager
def _node_process(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "node", "serve", "--config", str(config)],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ),
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


async def _wait_ready(session: aiohttp.ClientSession, url: str,
                      process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text("utf-8", "replace")[-3000:]
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"the new node was not ready: {log.read_text('utf-8', 'replace')[-3000:]}")


async def test_new_node_joins_and_exchanges(federation: dict[str, Any], tmp_path: Path) -> None:
    sandbox = Path(federation["dir"])
    registry_url = federation["registry"]["url"]
    admin = {"Authorization": "Bearer "
             + (sandbox / "registry" / "admin-token").read_text("utf-8").strip()}
    provider = node(federation, HOSP_B)

    async with aiohttp.ClientSession() as session:
        # The registry operator admits the organisation; its node registers itself.
        async with session.post(f"{registry_url}/api/members", headers=admin,
                                json={"id": CLINIC, "name": "Clinic"}) as response:
            assert response.status == 201, await response.text()

        directory = tmp_path / "clinic"
        client_port, peer_port, management_port = free_port(), free_port(), free_port()
        _renkei("node", "init", "--dir", str(directory), "--id", CLINIC_NODE,
                "--member", CLINIC, "--subsystem", CLINIC_EHR,
                "--anchor", federation["registry"]["anchor"], "--address", "127.0.0.1",
                "--peer-port", str(peer_port), "--client-port", str(client_port),
                "--management-port", str(management_port))
        keys = directory / "keys"
        _renkei("ca", "issue", "--dir", str(sandbox / "ca"), "--csr", str(keys / "auth.csr"),
                "--profile", "auth", "--out", str(keys / "auth.pem"))
        _renkei("ca", "issue", "--dir", str(sandbox / "ca"), "--csr",
                str(keys / "sign-clinic.csr"), "--profile", "sign",
                "--out", str(keys / "sign-clinic.pem"))
        out = _renkei("node", "register", "--config", str(directory / "node.toml"),
                      "--registry", registry_url)
        match = re.search(r"registration (\d+) of node \S+: pending", out)
        assert match, out
        registration = match.group(1)

        async with session.get(f"{registry_url}/api/registrations?status=pending",
                               headers=admin) as response:
            assert [r["node"] for r in await response.json()] == [CLINIC_NODE]
        async with session.post(f"{registry_url}/api/registrations/{registration}/approve",
                                headers=admin) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["status"] == "approved"

        # The provider grants the new subsystem access to its echo service.
        async with session.post(
            f"{provider['management_url']}/api/access",
            headers={"Authorization": f"Bearer {provider['tokens']['admin']}"},
            json={"service": ECHO, "grantee": CLINIC_EHR, "method": "*", "path": "**"},
        ) as response:
            assert response.status == 201, await response.text()

        log = tmp_path / "clinic-node.log"
        with _node_process(directory / "node.toml", log) as process:
            await _wait_ready(session, f"http://127.0.0.1:{management_port}/readyz",
                              process, log)
            status, last = await _exchange_until_accepted(session, client_port)
            assert status == 200, last


async def _exchange_until_accepted(
    session: aiohttp.ClientSession, client_port: int
) -> tuple[int, str]:
    """Call the echo service through the new node until the provider knows it."""
    deadline = time.monotonic() + EXCHANGE_DEADLINE_S
    status, text = 0, ""
    while time.monotonic() < deadline:
        async with session.get(
            f"http://127.0.0.1:{client_port}/r1/{ECHO}/hello",
            headers={"X-Road-Client": CLINIC_EHR},
        ) as response:
            status, text = response.status, await response.text()
            if status == 200:
                assert response.headers["X-Road-Client"] == CLINIC_EHR
                return status, text
        await asyncio.sleep(1)
    return status, text

"""Scale-out: two processes serve one node identity over one PostgreSQL database.

A sandbox runs on PostgreSQL with every peer port opened with SO_REUSEPORT; a
second process of the consumer node (its own client and management ports) and
of the provider node (sharing the provider's peer port) are started from the
same node.toml with environment overrides. Traffic goes to both client ports;
the provider's peer port is shared by its two processes. Then: each node has
one audit chain that verifies, an X-Road-Id used on one process is refused on
the other, and both processes served. The registry likewise: a second
``registry serve`` on the same PostgreSQL database, both publishing, versions
strictly increasing and never duplicated.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.sandbox.build import free_port
from gateway.sandbox.postgres import create_databases, drop_databases
from tests.conftest import POSTGRES_SERVER, require_postgres
from tests.functional.sandbox_helpers import client_headers, node, sandbox_process

pytestmark = pytest.mark.postgres

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
ECHO = "RENKEI/GOV/HOSP-B/EHR/echo"
HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"
REQUESTS_PER_PORT = 12


@contextmanager
def _shared_environment(registry_database: str) -> Iterator[None]:
    # Inherited by every process the sandbox starts: peer ports a second process can
    # share, and the registry on PostgreSQL so a second registry process can join it.
    os.environ["RENKEI_NODE_PEER__REUSE_PORT"] = "true"
    os.environ["RENKEI_REGISTRY_DATABASE_URL"] = registry_database
    try:
        yield
    finally:
        del os.environ["RENKEI_NODE_PEER__REUSE_PORT"]
        del os.environ["RENKEI_REGISTRY_DATABASE_URL"]


@contextmanager
def _second_process(entry: dict[str, Any], log: Path) -> Iterator[dict[str, str]]:
    """Start another process of ``entry``'s node; yield its client and management URLs."""
    client_port, management_port = free_port(), free_port()
    env = {
        **os.environ,
        "RENKEI_NODE_CLIENT__PORT": str(client_port),
        "RENKEI_NODE_CLIENT_TLS__PORT": "0",
        "RENKEI_NODE_MANAGEMENT__PORT": str(management_port),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "node", "serve", "--config", entry["config"]],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )
    try:
        yield {
            "client_url": f"http://127.0.0.1:{client_port}",
            "management_url": f"http://127.0.0.1:{management_port}",
        }
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_ready(session: aiohttp.ClientSession, management_url: str) -> None:
    for _ in range(300):
        try:
            async with session.get(f"{management_url}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{management_url} never became ready")


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_postgres()
    directory = tmp_path_factory.mktemp("scale-out") / "sandbox"
    name = f"renkei_scale_registry_{uuid.uuid4().hex[:12]}"
    (registry_database,) = asyncio.run(create_databases(POSTGRES_SERVER, [name]))
    try:
        with (
            _shared_environment(registry_database),
            sandbox_process(directory, database=POSTGRES_SERVER) as document,
        ):
            yield document
    finally:
        asyncio.run(drop_databases(POSTGRES_SERVER, [registry_database]))


async def _echo(
    session: aiohttp.ClientSession,
    client_url: str,
    client: dict[str, str],
    message_id: str | None = None,
) -> tuple[int, str]:
    headers = dict(client)
    if message_id is not None:
        headers["X-Road-Id"] = message_id
        headers["Renkei-Deduplicate"] = "true"
    async with session.get(f"{client_url}/r1/{ECHO}/scale", headers=headers) as response:
        await response.read()
        return response.status, response.headers.get("X-Road-Error", "")


async def _peer_exchanges(session: aiohttp.ClientSession, management_url: str) -> float:
    async with session.get(f"{management_url}/metrics") as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("renkei_exchanges_total{") and 'role="peer"' in line
    )


async def _verify_chain(session: aiohttp.ClientSession, entry: dict[str, Any]) -> int:
    async with session.get(
        f"{entry['management_url']}/api/audit/verify",
        headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
    ) as response:
        body = await response.json()
    assert response.status == 200, body
    assert body["ok"] is True, body
    return int(body["rows"])


async def test_two_processes_per_node_share_one_database(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    consumer, provider = node(federation, HOSP_A), node(federation, HOSP_B)
    # A token recorded through one process proves the client to the other too.
    client = client_headers(federation, CONSUMER)
    async with aiohttp.ClientSession() as session:
        with (
            _second_process(consumer, tmp_path / "hosp-a-2.log") as consumer_2,
            _second_process(provider, tmp_path / "hosp-b-2.log") as provider_2,
        ):
            await _wait_ready(session, consumer_2["management_url"])
            await _wait_ready(session, provider_2["management_url"])
            rows_before = await _verify_chain(session, consumer)
            # Concurrent traffic to both client ports; the provider's peer port is shared.
            results = await asyncio.gather(
                *(
                    _echo(session, url, client)
                    for url in (consumer["client_url"], consumer_2["client_url"])
                    for _ in range(REQUESTS_PER_PORT)
                )
            )
            assert results == [(200, "")] * (2 * REQUESTS_PER_PORT)

            # A message id claimed (Renkei-Deduplicate) through one process is
            # refused by the other.
            message_id = str(uuid.uuid4())
            assert await _echo(session, consumer["client_url"], client, message_id) == (200, "")
            assert await _echo(session, consumer_2["client_url"], client, message_id) == (
                400,
                "client.duplicate_message_id",
            )

            # One chain per node, gapless across both processes, verifying.
            rows_after = await _verify_chain(session, consumer)
            assert rows_after - rows_before == 2 * REQUESTS_PER_PORT + 2
            await _verify_chain(session, provider)
            second = {**provider, "management_url": provider_2["management_url"]}
            await _verify_chain(session, second)

            # Every exchange reached one of the provider's two processes.
            served = [
                await _peer_exchanges(session, url)
                for url in (provider["metrics_url"].rsplit("/", 1)[0],
                            provider_2["management_url"])
            ]
            assert sum(served) >= 2 * REQUESTS_PER_PORT + 1
            assert served[1] > 0, "the second provider process got no connection"


SEQUENTIAL_EXCHANGES = 300


async def test_one_caller_in_sequence_reaches_both_provider_processes(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    """Requests, not only connections, are spread over processes sharing a peer port.

    A consumer node keeps its connections to a peer alive, so one caller asking
    in sequence used to reach one provider process only. A connection now serves
    at most ``max_requests_per_connection`` requests (default 25) and then
    closes; each new connection lands on either process (SO_REUSEPORT).
    """
    consumer, provider = node(federation, HOSP_A), node(federation, HOSP_B)
    async with aiohttp.ClientSession() as session:
        with _second_process(provider, tmp_path / "hosp-b-2.log") as provider_2:
            await _wait_ready(session, provider_2["management_url"])
            urls = (provider["metrics_url"].rsplit("/", 1)[0], provider_2["management_url"])
            before = [await _peer_exchanges(session, url) for url in urls]
            for _ in range(SEQUENTIAL_EXCHANGES):
                assert await _echo(
                    session, consumer["client_url"], client_headers(federation, CONSUMER)
                ) == (200, "")
            served = [
                await _peer_exchanges(session, url) - count
                for url, count in zip(urls, before, strict=True)
            ]
    assert sum(served) >= SEQUENTIAL_EXCHANGES
    assert min(served) > 0, f"one provider process served none: {served}"


@contextmanager
def _second_registry(directory: Path, log: Path) -> Iterator[str]:
    port = free_port()
    config = directory / "registry" / "registry.toml"
    env = {**os.environ, "RENKEI_REGISTRY_LISTEN_PORT": str(port)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "registry", "serve", "--config", str(config)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_two_registry_processes_publish_strictly_increasing_versions(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    directory = Path(federation["dir"])
    settings = tomllib.loads((directory / "registry" / "registry.toml").read_text("utf-8"))
    token_file = Path(settings["admin_token_file"])
    if not token_file.is_absolute():
        token_file = directory / "registry" / token_file
    admin = {"Authorization": f"Bearer {token_file.read_text('utf-8').strip()}"}
    first = federation["registry"]["url"]
    with _second_registry(directory, tmp_path / "registry-2.log") as second:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"{second}/globalconf") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

            async def publish(url: str) -> int:
                async with session.post(f"{url}/api/versions", headers=admin) as response:
                    assert response.status == 201, await response.text()
                    return int((await response.json())["version"])

            # Rounds of two racing publishers, one per process (the registry retries a
            # taken version number a bounded number of times, so no bigger crowds).
            versions: list[int] = []
            for _ in range(6):
                versions += await asyncio.gather(publish(first), publish(second))
            assert len(set(versions)) == len(versions)
            listed = []
            for url in (first, second):
                async with session.get(f"{url}/api/versions", headers=admin) as response:
                    body = await response.json()
                numbers = [v["version"] if isinstance(v, dict) else v for v in _versions(body)]
                assert numbers == sorted(set(numbers)), numbers
                assert set(versions) <= set(numbers)
                listed.append(numbers)
            assert listed[0] == listed[1]


def _versions(body: Any) -> list[Any]:
    return list(body["versions"] if isinstance(body, dict) else body)

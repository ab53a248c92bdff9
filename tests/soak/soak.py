"""Soak: steady traffic through a sandbox federation while its parts are killed.

Traffic: POSTs from hospital A's information system to hospital B's echo
service at a fixed rate, each with its own X-Road-Id. Faults, in turn:
SIGKILL of the provider node, SIGTERM of the consumer node, SIGKILL of the
registry (back within the configuration's validity), and (on PostgreSQL) a
node's database refusing connections for a few seconds. Afterwards every
acknowledged exchange (200 without ``X-Road-Error``) must have its row on
both nodes with the same request hash, and both chains must verify.

    python -m tests.soak.soak --duration 600 --rate 10 [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.functional.sandbox_helpers import client_headers
from tests.soak.federation import Federation, running_federation

HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"
CLIENT = "RENKEI/GOV/HOSP-A/EHR"
ECHO = "/r1/RENKEI/GOV/HOSP-B/EHR/echo/soak"


@dataclass
class SoakReport:
    duration_s: float = 0.0
    sent: int = 0
    acknowledged: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    chains: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            not self.lost
            and not self.mismatched
            and all(c.get("ok") for c in self.chains.values())
            and self.acknowledged > 0
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 1),
            "exchanges_sent": self.sent,
            "exchanges_acknowledged": self.acknowledged,
            "refusals": dict(self.refused),
            "faults_injected": dict(self.faults),
            "faults_total": sum(self.faults.values()),
            "exchanges_lost": len(self.lost),
            "rows_mismatched": len(self.mismatched),
            "chains": self.chains,
            "ok": self.ok,
        }


async def _one_exchange(
    session: aiohttp.ClientSession, url: str, client: dict[str, str], report: SoakReport,
    acked: list[str],
) -> None:
    message_id = str(uuid.uuid4())
    report.sent += 1
    try:
        async with session.post(
            url + ECHO,
            data=json.dumps({"n": report.sent}).encode(),
            headers={**client, "X-Road-Id": message_id,
                     "Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            await response.read()
            error = response.headers.get("X-Road-Error")
            if response.status == 200 and error is None:
                acked.append(message_id)
                report.acknowledged += 1
            else:
                report.refused[error or f"http_{response.status}"] += 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        report.refused[f"connection:{exc.__class__.__name__}"] += 1


async def _traffic(
    federation: Federation, rate: float, stop: asyncio.Event, report: SoakReport,
    acked: list[str],
) -> None:
    url = federation.node(HOSP_A)["client_url"]
    client = client_headers(federation.document, CLIENT)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession() as session:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            task = asyncio.create_task(_one_exchange(session, url, client, report, acked))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += 1 / rate
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - loop.time()))
        if tasks:
            await asyncio.gather(*tasks)


async def _block_database(admin_url: str, database_url: str, hold_s: float) -> None:
    import asyncpg

    name = database_url.rsplit("/", 1)[1].split("?")[0]
    connection = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    try:
        await connection.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await asyncio.sleep(hold_s)
    finally:
        await connection.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        await connection.close()


async def _restart_node(federation: Federation, node_id: str, sig: signal.Signals) -> bool:
    entry = federation.node(node_id)
    config = Path(entry["config"])
    if not federation.kill(config, sig):
        return False
    await federation.wait_gone(config)
    await asyncio.sleep(1)
    federation.start("node", config)
    return await federation.wait_ready(entry["management_url"] + "/readyz")


async def _faults(
    federation: Federation, interval_s: float, stop: asyncio.Event, report: SoakReport,
    postgres: str | None,
) -> None:
    schedule = ["kill_provider", "restart_consumer", "kill_registry"]
    if postgres:
        schedule += ["block_provider_db", "block_consumer_db"]
    turn = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if stop.is_set():
            return
        fault = schedule[turn % len(schedule)]
        turn += 1
        done = False
        if fault == "kill_provider":
            done = await _restart_node(federation, HOSP_B, signal.SIGKILL)
        elif fault == "restart_consumer":
            done = await _restart_node(federation, HOSP_A, signal.SIGTERM)
        elif fault == "kill_registry":
            config = federation.registry_config
            if federation.kill(config, signal.SIGKILL):
                await federation.wait_gone(config)
                await asyncio.sleep(5)
                federation.start("registry", config)
                done = await federation.wait_ready(federation.document["registry"]["url"]
                                                   + "/globalconf")
        elif postgres is not None:
            node_id = HOSP_B if fault == "block_provider_db" else HOSP_A
            await _block_database(postgres, federation.node(node_id)["database"], 3.0)
            done = True
        if done:
            report.faults[fault] += 1
        else:
            report.faults[f"{fault}_failed"] += 1


async def _rows(session: aiohttp.ClientSession, entry: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {entry['tokens']['auditor']}"}
    while True:
        after = rows[-1]["seq"] if rows else 0
        async with session.get(
            entry["management_url"] + "/api/audit/rows",
            params={"after_seq": str(after), "limit": "10000"}, headers=headers,
        ) as response:
            page = (await response.json())["rows"]
        if not page:
            return rows
        rows += page


async def _check(federation: Federation, report: SoakReport, acked: list[str]) -> None:
    a, b = federation.node(HOSP_A), federation.node(HOSP_B)
    async with aiohttp.ClientSession() as session:
        consumer = {r["message_id"]: r for r in await _rows(session, a) if r["role"] == "consumer"}
        provider = {r["message_id"]: r for r in await _rows(session, b) if r["role"] == "provider"}
        for entry in (a, b):
            async with session.get(
                entry["management_url"] + "/api/audit/verify",
                headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
            ) as response:
                report.chains[entry["id"]] = await response.json()
    for message_id in acked:
        mine, theirs = consumer.get(message_id), provider.get(message_id)
        if mine is None or theirs is None:
            report.lost.append(message_id)
        elif mine["request_hash"] != theirs["request_hash"] or theirs["status"] != 200:
            report.mismatched.append(message_id)


async def run_soak(
    directory: Path, *, duration_s: float, rate: float, fault_interval_s: float,
    postgres: str | None = None, min_faults: int = 0,
) -> SoakReport:
    """Traffic for ``duration_s`` with a fault every ``fault_interval_s``; then, until at
    least ``min_faults`` faults were injected (restarts are slow on a busy machine), more
    traffic and faults, bounded at three more times ``duration_s``."""
    report = SoakReport()
    acked: list[str] = []
    environ = {
        # Short validity: a registry outage is felt, but shorter than the validity.
        "RENKEI_REGISTRY_VALIDITY_S": "60",
        "RENKEI_REGISTRY_REFRESH_INTERVAL_S": "5",
    }
    with running_federation(directory, database=postgres, environ=environ) as federation:
        stop = asyncio.Event()
        started = time.monotonic()
        traffic = asyncio.create_task(_traffic(federation, rate, stop, report, acked))
        faults = asyncio.create_task(
            _faults(federation, fault_interval_s, stop, report, postgres)
        )
        await asyncio.sleep(duration_s)
        deadline = time.monotonic() + 3 * duration_s
        while sum(report.faults.values()) < min_faults and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        stop.set()
        await faults
        await traffic
        report.duration_s = time.monotonic() - started
        for node_id in (HOSP_A, HOSP_B):
            await federation.wait_ready(federation.node(node_id)["management_url"] + "/readyz")
        await _check(federation, report, acked)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (600)")
    parser.add_argument("--rate", type=float, default=10.0, help="exchanges per second (10)")
    parser.add_argument("--fault-interval", type=float, default=20.0, help="seconds (20)")
    parser.add_argument("--postgres", default=None, help="server URL for per-node databases")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="renkei-soak-"))
    report = asyncio.run(
        run_soak(directory / "sandbox", duration_s=args.duration, rate=args.rate,
                 fault_interval_s=args.fault_interval, postgres=args.postgres)
    )
    print(json.dumps(report.to_json(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

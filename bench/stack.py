"""Everything a bench run measures, started once: backend, bare chain, federation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.federation import (
    CLIENT,
    CONSUMER_NODE,
    DOC,
    PATIENT,
    PROVIDER_NODE,
    BenchFederation,
    start_federation,
)
from bench.procs import Child, start_child

__all__ = ["Scenario", "Stack", "running_stack"]


@dataclass(frozen=True)
class Scenario:
    name: str
    url: str
    headers: dict[str, str]
    processes: tuple[tuple[str, int], ...]  # (role, pid) whose CPU time it costs


@dataclass
class Stack:
    backend: Child
    hop1: Child
    hop2: Child
    federation: BenchFederation

    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.backend.port}"

    def scenarios(self) -> list[Scenario]:
        fed = self.federation
        r1 = f"{fed.consumer_client_url}/r1"
        client = {"X-Road-Client": CLIENT}
        bare = f"http://127.0.0.1:{self.hop1.port}"
        backend = ("backend", self.backend.pid)
        chain = (("hop 1", self.hop1.pid), ("hop 2", self.hop2.pid), backend)
        nodes = (("node A", fed.consumer_pid), ("node B", fed.provider_pid), backend)
        return [
            Scenario("direct", f"{self.backend_url}/doc", {}, (backend,)),
            Scenario("bare chain", f"{bare}/doc", {}, chain),
            Scenario("renkei", f"{r1}/{DOC}", client, nodes),
            Scenario("bare chain, FHIR", f"{bare}/fhir/Patient/example", {}, chain),
            Scenario(
                "renkei, FHIR consent",
                f"{r1}/{PATIENT}",
                {**client, "Renkei-Purpose": "treatment"},
                nodes,
            ),
        ]


@contextlib.contextmanager
def running_stack(work: Path) -> Iterator[Stack]:
    """Start every bench process under ``work``; stop them all (by pid) on exit."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started: list[Child] = []
    federation: BenchFederation | None = None
    try:
        backend = start_child("backend", "bench.backend", log_dir=logs)
        started.append(backend)
        federation = start_federation(
            work / "federation", f"http://127.0.0.1:{backend.port}", logs
        )
        cert_a, key_a = federation.auth_files(CONSUMER_NODE)
        cert_b, key_b = federation.auth_files(PROVIDER_NODE)
        ca = str(federation.ca_cert)
        hop2 = start_child(
            "bare-hop2", "bench.bare_proxy",
            "--upstream", f"http://127.0.0.1:{backend.port}",
            "--cert", str(cert_b), "--key", str(key_b),
            "--ca", ca, "--listen-tls",
            log_dir=logs,
        )
        started.append(hop2)
        hop1 = start_child(
            "bare-hop1", "bench.bare_proxy",
            "--upstream", f"https://127.0.0.1:{hop2.port}",
            "--cert", str(cert_a), "--key", str(key_a),
            "--ca", ca,
            log_dir=logs,
        )
        started.append(hop1)
        yield Stack(backend, hop1, hop2, federation)
    finally:
        if federation is not None:
            federation.stop()
        for child in reversed(started):
            child.stop()

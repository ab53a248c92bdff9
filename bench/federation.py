"""The two-node bench federation, run by ``renkei sandbox up`` with our own description.

``bench/federation.toml`` names the services; their backend is the bench
backend process (so its CPU time is measured apart from the nodes'). The
sandbox prints its JSON description once ready; the nodes' pids are found
from their listening ports, so the harness can read their CPU time.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import REPO, Child, descendants, pid_listening_on

__all__ = ["BLOB", "CLIENT", "DOC", "PATIENT", "BenchFederation", "start_federation"]

DESCRIPTION = Path(__file__).with_name("federation.toml")
CLIENT = "BENCH/GOV/A/CLIENT"
DOC = "BENCH/GOV/B/API/doc"
BLOB = "BENCH/GOV/B/API/blob"
PATIENT = "BENCH/GOV/B/API/patients/Patient/example"
CONSUMER_NODE = "BENCH/GOV/A/ss1"
PROVIDER_NODE = "BENCH/GOV/B/ss1"
_START_TIMEOUT_S = 120.0


@dataclass
class BenchFederation:
    sandbox: Child  # the ``renkei sandbox up`` process; it stops its own children
    document: dict[str, Any]
    consumer_pid: int
    provider_pid: int

    def node(self, node_id: str) -> dict[str, Any]:
        return next(n for n in self.document["nodes"] if n["id"] == node_id)

    @property
    def consumer_client_url(self) -> str:
        return str(self.node(CONSUMER_NODE)["client_url"])

    def auth_files(self, node_id: str) -> tuple[Path, Path]:
        keys = Path(self.node(node_id)["config"]).parent / "keys"
        return keys / "auth.pem", keys / "auth.key"

    @property
    def ca_cert(self) -> Path:
        return Path(self.document["trust"]["ca_cert"])

    def stop(self) -> None:
        self.sandbox.stop(timeout_s=60)


def _read_document(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + _START_TIMEOUT_S
    buffer = b""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited early with code {process.returncode}")
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if not ready:
            continue
        buffer += os.read(process.stdout.fileno(), 65536)
        try:
            document: dict[str, Any] = json.loads(buffer)
        except ValueError:
            continue
        return document
    raise RuntimeError(f"the sandbox was not ready within {_START_TIMEOUT_S:.0f} s")


def wait_until_serving(url: str, headers: dict[str, str], timeout_s: float = 60.0) -> None:
    """Retry one exchange until it succeeds (nodes fetch OCSP staples after start)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.headers.get('X-Road-Error')}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s: {last}")


def start_federation(directory: Path, backend_url: str, log_dir: Path) -> BenchFederation:
    """Start ``renkei sandbox up`` on the bench description, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    description = directory / "federation.toml"
    description.write_text(
        DESCRIPTION.read_text("utf-8").replace("{backend}", backend_url), "utf-8"
    )
    log = (log_dir / "sandbox.log").open("ab")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and command
        [sys.executable, "-m", "gateway.cli", "sandbox", "up", str(description),
         "--dir", str(directory / "sandbox")],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env=dict(os.environ),
        start_new_session=True,
    )
    log.close()
    sandbox = Child("sandbox", process)
    try:
        document = _read_document(process)
        ours = descendants(process.pid)
        pids = {
            node["id"]: pid_listening_on(int(node["client_url"].rsplit(":", 1)[1]), ours)
            for node in document["nodes"]
        }
        federation = BenchFederation(
            sandbox, document, pids[CONSUMER_NODE], pids[PROVIDER_NODE]
        )
        wait_until_serving(
            f"{federation.consumer_client_url}/r1/{DOC}", {"X-Road-Client": CLIENT}
        )
    except BaseException:
        sandbox.stop(timeout_s=60)
        raise
    return federation

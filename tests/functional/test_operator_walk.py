"""docs/operations.md, "From nothing to a FHIR service", step by step with the CLI only:
a sandbox node without services is given a FHIR service, its declaration, an access
right, the consumer's purpose and a patient's consent; the exchange releases what was
consented to; the node restarts and everything is still there."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import gateway.sandbox
from tests.conftest import POSTGRES_SERVER, require_postgres
from tests.functional.sandbox_helpers import client_headers, node, sandbox_process

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
OPENAPI = Path(gateway.sandbox.__file__).parent / "openapi" / "patients.json"
CONSUMER_NODE = "RENKEI/GOV/HOSP-A/ss1"
PROVIDER_NODE = "RENKEI/GOV/HOSP-C/ss1"
CLINIC = "RENKEI/GOV/HOSP-A/EHR"
PATIENTS = "RENKEI/GOV/HOSP-C/EHR/patients"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def federation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    database = None
    if request.param == "postgres":
        require_postgres()
        database = POSTGRES_SERVER
    directory = tmp_path_factory.mktemp("walk") / "sandbox"
    with sandbox_process(
        directory, description=EXAMPLES / "walk-sandbox.toml", database=database
    ) as document:
        yield document


def _renkei(entry: dict[str, Any], role: str, *argv: str, directory: Path) -> str:
    """One CLI command against ``entry``'s management API with its ``role`` token."""
    token = directory / f"{entry['id'].replace('/', '_')}-{role}.token"
    token.write_text(entry["tokens"][role], "ascii")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *argv, "--token-file", str(token)],
        capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "RENKEI_MANAGEMENT_URL": entry["management_url"]},
    )  # fmt: skip
    assert result.returncode == 0, f"renkei {' '.join(argv)}: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


async def _patient(federation: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    consumer = node(federation, CONSUMER_NODE)
    headers = {**client_headers(federation, CLINIC), "Renkei-Purpose": "treatment"}
    async with aiohttp.ClientSession() as session, session.get(
        f"{consumer['client_url']}/r1/{PATIENTS}/Patient/example", headers=headers
    ) as response:  # fmt: skip
        body = await response.json(content_type=None)
        return response.status, body, response.headers.get("Renkei-Withheld", "")


async def _until(url: str, predicate: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if predicate(response.status, await response.text()):
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
    return False


def _restart(
    federation: dict[str, Any], entry: dict[str, Any], log: Path
) -> subprocess.Popen[bytes]:
    """Stop the sandbox's process of the node by its pid; start the node again from its config."""
    pid = federation["processes"]["hosp-c-ss1"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "node", "serve", "--config", entry["config"]],
            stdout=output, stderr=output, stdin=subprocess.DEVNULL,
        )  # fmt: skip


async def test_from_nothing_to_a_fhir_service_and_through_a_restart(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    provider, consumer = node(federation, PROVIDER_NODE), node(federation, CONSUMER_NODE)
    admin = lambda *argv: _renkei(provider, "admin", *argv, directory=tmp_path)  # noqa: E731
    assert admin("service", "list").strip() == "no services"

    # 1. The service, from its OpenAPI description, served at once.
    added = admin("service", "add", PATIENTS, "--backend", federation["backends"]["fhir"],
                  "--openapi", str(OPENAPI), "--timeout", "20")  # fmt: skip
    assert added.startswith(f"added {PATIENTS}: OPENAPI -> ")
    shown = json.loads(admin("service", "show", PATIENTS, "--json"))
    assert {"method": "GET", "path": "/Patient/*"} in shown["endpoints"]
    # The provider's metaservices offer it at once (X-Road's listMethods).
    async with aiohttp.ClientSession() as session, session.get(
        f"{consumer['client_url']}/r1/RENKEI/GOV/HOSP-C/EHR/listMethods",
        headers=client_headers(federation, CLINIC),
    ) as response:  # fmt: skip
        listed = await response.json()
    assert [s["service_code"] for s in listed["service"]] == ["patients"]

    # 2. Its declaration, from a policy file: the dry run first, then applied.
    declaration = str(EXAMPLES / "hosp-c-patients.toml")
    planned = admin("policy", "apply", declaration, "--dry-run")
    assert "1 change(s) (dry run, nothing written)" in planned
    assert f"+ service     {PATIENTS}" in planned
    assert "(applied)" in admin("policy", "apply", declaration)

    # 3. The consumer's purpose, on its node and the data holder's; the access right;
    # the patient's consent.
    purposes = str(EXAMPLES / "hosp-a-purposes.toml")
    _renkei(consumer, "admin", "policy", "apply", purposes, directory=tmp_path)
    admin("policy", "apply", purposes)
    granted = admin("access", "grant", "--service", PATIENTS, "--grantee", CLINIC,
                    "--method", "GET", "--path", "/Patient/**")  # fmt: skip
    assert granted.startswith(f"granted {CLINIC} GET /Patient/** on {PATIENTS}")
    consent = _renkei(
        provider, "consent", "consent", "grant", "--subject", "example", "--consumer", CLINIC,
        "--service", PATIENTS, "--purpose", "treatment",
        "--field", "Patient.name", "--field", "Patient.birthDate", directory=tmp_path,
    )  # fmt: skip
    assert consent.startswith("granted consent ")
    assert len(consent.splitlines()) == 1  # one line; the receipt is in --json

    # 4. The exchange releases what was consented to, and nothing else.
    status, body, withheld = await _patient(federation)
    assert status == 200, body
    assert body["name"]
    assert body["birthDate"]
    assert "telecom" not in body
    assert "address" not in body
    assert "Patient.telecom" in withheld
    # The registry's catalogue learned the service (the change pushed it at once).
    assert await _until(
        f"{federation['registry']['url']}/catalogue?q=patient",
        lambda code, text: code == 200 and PATIENTS in text,
    )

    # 5. Maintenance drains it, and ends.
    assert "maintenance on" in admin("node", "maintenance", "on", "--reason", "restart")
    assert await _until(provider["management_url"] + "/readyz", lambda code, _: code == 503)
    assert "maintenance off" in admin("node", "maintenance", "off")

    # 6. A restart keeps everything the CLI did.
    restarted = _restart(federation, provider, tmp_path / "restarted.log")
    try:
        ready = await _until(provider["management_url"] + "/readyz", lambda code, _: code == 200)
        assert ready, (tmp_path / "restarted.log").read_text("utf-8", "replace")[-3000:]
        services = json.loads(admin("service", "list", "--json"))["services"]
        assert [s["id"] for s in services] == [PATIENTS]
        rights = json.loads(admin("access", "list", "--json"))["access"]
        assert [(r["grantee"], r["path"]) for r in rights] == [(CLINIC, "/Patient/**")]
        consents = json.loads(_renkei(provider, "consent", "consent", "list", "--json",
                                      directory=tmp_path))["consents"]  # fmt: skip
        assert [(c["subject"], c["fields"]) for c in consents] == [
            ("example", ["Patient.name", "Patient.birthDate"])
        ]
        status, body, withheld = await _patient(federation)
        assert status == 200, body
        assert "telecom" not in body
        assert "Patient.telecom" in withheld
    finally:
        restarted.send_signal(signal.SIGTERM)
        try:
            restarted.wait(timeout=30)
        except subprocess.TimeoutExpired:
            restarted.kill()
            restarted.wait()

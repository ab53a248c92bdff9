"""An auditor's whole path on a real sandbox federation, per database backend.

Exchanges between the hospitals, an on-demand checkpoint on both nodes
(time-stamped by the sandbox TSA, cosigned by the registry's witness), both
bundles exported through the auditor API and verified offline with
``renkei audit verify`` against the sandbox anchor, reconciled, and the
patient's "who looked at my data" report. Then the consumer's rows archived
with ``renkei audit archive`` and verified in sequence, encrypted bodies and their
erasure on an in-process node, and last (it stops the sandbox's TSA, so it
must stay last in this module) a time-stamping outage: checkpoints go on
unstamped, /readyz reports it and, past a tiny grace period, exchanges stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import signal
import tarfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from gateway.audit.bodies import body_vault_for, read_bodies, write_body_key
from gateway.audit.models import EncryptedBody
from gateway.cli import main as renkei_main
from gateway.db import create_engine
from gateway.serve import running_node
from gateway.settings import NodeSettings, load_node_settings
from tests.functional.sandbox_helpers import node

HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"
CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
PATIENTS = "RENKEI/GOV/HOSP-B/EHR/patients"
PATIENT = "example"


async def _renkei(*argv: str) -> tuple[int, Any]:
    """Run a ``renkei`` command in this process (a thread: it runs its own event loop)."""

    def run() -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = renkei_main(list(argv))
        return code, out.getvalue()

    code, text = await asyncio.to_thread(run)
    try:
        return code, json.loads(text)
    except ValueError:
        return code, text


async def _read_patient(
    session: aiohttp.ClientSession, client_url: str, token: str | None = None
) -> aiohttp.ClientResponse:
    """``token``: the consumer's client token on its shared sandbox node."""
    proof = {"Renkei-Client-Token": token} if token is not None else {}
    headers = {"X-Road-Client": CONSUMER, "X-Road-Id": str(uuid.uuid4()), **proof,
               "Renkei-Purpose": "treatment", "Renkei-Subject": PATIENT,
               "Accept": "application/fhir+json"}  # fmt: skip
    async with session.get(
        f"{client_url}/r1/{PATIENTS}/Patient/{PATIENT}", headers=headers
    ) as response:
        await response.read()
        return response


async def _export(session: aiohttp.ClientSession, entry: dict[str, Any], out: Path) -> Path:
    headers = {"Authorization": f"Bearer {entry['tokens']['auditor']}"}
    async with session.get(f"{entry['management_url']}/api/audit/export", headers=headers) as r:
        assert r.status == 200, await r.text()
        out.write_bytes(await r.read())
    return out


async def test_export_verify_reconcile_and_subject_report(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    anchor = federation["registry"]["anchor"]
    consumer, provider = node(federation, HOSP_A), node(federation, HOSP_B)
    bundles: dict[str, Path] = {}
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            response = await _read_patient(
                session, consumer["client_url"], consumer["clients"][CONSUMER]["token"]
            )
            assert response.status == 200
            assert "X-Road-Error" not in response.headers
        for name, entry in (("consumer", consumer), ("provider", provider)):
            code, made = await _renkei("audit", "checkpoint", "--config", entry["config"])
            assert code == 0, made
            assert made["timestamped"] is True, made
            assert made["cosigned"] is True, made
            bundles[name] = await _export(session, entry, tmp_path / f"{name}.tar.gz")
    # Offline from here: only the bundles and the anchor.
    for name, bundle in bundles.items():
        code, report = await _renkei("audit", "verify", str(bundle), "--anchor", anchor)
        assert code == 0, (name, report)
        assert report["ok"] is True
        assert report["timestamped_until"] is not None
        assert report["rows"] >= 3
        assert not [w for w in report["warnings"] if "cosign" in w or "time-stamp" in w]
    code, reconciled = await _renkei(
        "audit", "reconcile", str(bundles["consumer"]), str(bundles["provider"])
    )
    assert code == 0, reconciled
    code, report = await _renkei("audit", "subject", PATIENT, "--bundle", str(bundles["provider"]))
    assert code == 0, report
    exchanges = report["exchanges"]
    assert len(exchanges) >= 3
    for exchange in exchanges:
        assert exchange["consumer"] == CONSUMER
        assert exchange["service"] == PATIENTS
        assert exchange["purpose"] == "treatment"
        assert "Patient.name" in exchange["released"]
    # Tampering with the exported provider log is caught offline.
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    with tarfile.open(bundles["provider"], "r:gz") as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            (tampered / member.name).write_bytes(data)
    rows = (tampered / "rows.jsonl").read_text().splitlines()
    (tampered / "rows.jsonl").write_text("\n".join(rows[:1] + rows[2:]) + "\n")
    # Whoever deletes a row also fixes the manifest digest: the chain still tells.
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["files"]["rows.jsonl"] = hashlib.sha256(
        (tampered / "rows.jsonl").read_bytes()).hexdigest()
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    code, report = await _renkei("audit", "verify", str(tampered), "--anchor", anchor)
    assert code == 2
    assert report["code"] == "auditor.chain_broken", report
    assert report["seq"] == 3, report


async def test_archive_then_verify_in_sequence(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    """The consumer node's checkpointed rows move to an archive; archive + export verify."""
    anchor = federation["registry"]["anchor"]
    consumer = node(federation, HOSP_A)
    before = datetime.now(UTC).isoformat()
    code, made = await _renkei("audit", "archive", "--config", consumer["config"],
                               "--before", before, "--out", str(tmp_path / "archives"))
    assert code == 0, made
    assert made["first_seq"] == 1, made
    assert made["previous_archive_sha256"] is None
    archive = made["archive"]
    async with aiohttp.ClientSession() as session:
        response = await _read_patient(  # a row after it
            session, consumer["client_url"], consumer["clients"][CONSUMER]["token"]
        )
        assert response.status == 200
        code, _ = await _renkei("audit", "checkpoint", "--config", consumer["config"])
        assert code == 0
        export = await _export(session, consumer, tmp_path / "after-archive.tar.gz")
        headers = {"Authorization": f"Bearer {consumer['tokens']['auditor']}"}
        async with session.get(f"{consumer['management_url']}/api/audit/verify",
                               headers=headers) as verified:
            assert (await verified.json())["ok"] is True
    code, report = await _renkei("audit", "verify", archive, str(export), "--anchor", anchor)
    assert code == 0, report
    assert report["first_seq"] == 1
    code, report = await _renkei("audit", "verify", str(export), "--anchor", anchor)
    assert code == 2
    assert report["code"] == "auditor.archive_sequence"  # the archive was left out


def _in_process_settings(
    federation: dict[str, Any], directory: Path, **overrides: str
) -> NodeSettings:
    """Hospital A's identity on its own database and ports (like test_globalconf_expiry)."""
    config = Path(node(federation, HOSP_A)["config"])
    environ = {
        "RENKEI_NODE_DATA_DIR": str(directory),
        "RENKEI_NODE_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'node.db'}",
        "RENKEI_NODE_CLIENT__PORT": "0",
        "RENKEI_NODE_CLIENT_TLS__PORT": "0",
        # A fresh database has none of the sandbox's client tokens.
        "RENKEI_NODE_CLIENT__ALLOW_UNAUTHENTICATED": "true",
        "RENKEI_NODE_PEER__PORT": "0",
        "RENKEI_NODE_MANAGEMENT__PORT": "0",
        "RENKEI_NODE_POLICY_FILE": str(config.parent / "policy.toml"),
        # This is a second chain under Hospital A's identity. The registry's witness holds
        # the sandbox node's state for it, so the start-up chain check would rightly refuse
        # to serve; this node gets a witness nobody listens on (port 1) instead.
        "RENKEI_NODE_AUDIT__WITNESS_URL": "http://127.0.0.1:1/witness/checkpoints",
        **overrides,
    }
    return load_node_settings(config, environ=environ)


async def test_bodies_are_logged_encrypted_and_erased_by_subject(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    key = tmp_path / "body.key"
    write_body_key(key)
    settings = dataclasses.replace(
        _in_process_settings(federation, tmp_path),
        audit_body_services=(PATIENTS,), audit_body_key=key,
    )  # fmt: skip
    admin = {"Authorization": f"Bearer {node(federation, HOSP_A)['tokens']['admin']}"}
    async with running_node(settings) as run, aiohttp.ClientSession() as session:
        management = f"http://127.0.0.1:{run.management_port}"
        response = await _read_patient(session, f"http://127.0.0.1:{run.client_port}")
        assert response.status == 200
        engine = create_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                stored = (await conn.execute(select(EncryptedBody.message_id))).scalars().all()
            assert stored
            vault = body_vault_for(settings)
            assert vault is not None
            bodies = await read_bodies(engine, vault, str(settings.node_id), stored[0])
            assert {b.kind for b in bodies} == {"consumer-req", "consumer-resp"}
            assert any(b"Patient" in (b.body or b"") for b in bodies)
        finally:
            await engine.dispose()
        url = f"{management}/api/audit/subject/{PATIENT}/bodies"
        auditor = {"Authorization": f"Bearer {node(federation, HOSP_A)['tokens']['auditor']}"}
        async with session.delete(url, headers=auditor) as refused:
            assert refused.status == 403  # erasure is the owner's act, not the auditor's
        async with session.delete(url, headers=admin) as erased:
            assert erased.status == 200, await erased.text()
            erasure = await erased.json()
            assert (erasure["bodies_erased"], erasure["keys_destroyed"]) == (2, 1)
            assert erasure["storage_released"] is True  # the write-ahead file was truncated
        async with session.get(f"{management}/api/audit/verify", headers=admin) as verified:
            assert (await verified.json())["ok"] is True
        # The chain and checkpoints still verify after the erasure.
        checkpointer = run.context.checkpointer
        assert checkpointer is not None
        made = await checkpointer.checkpoint()
        assert made is not None
        assert made["timestamp_token"] is not None
        async with session.get(f"{management}/api/audit/export", headers=admin) as exported:
            assert exported.status == 200
            bundle = tmp_path / "after-erasure.tar.gz"
            bundle.write_bytes(await exported.read())
    # This log is a second chain under Hospital A's identity, so the witness (which
    # cosigned the sandbox node's chain) rightly refuses it: verify without cosignature.
    code, report = await _renkei("audit", "verify", str(bundle), "--anchor",
                                 federation["registry"]["anchor"], "--allow-uncosigned")
    assert code == 0, report


def _stop_tsa(federation: dict[str, Any]) -> None:
    pid = int(federation["processes"]["tsa"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


async def test_tsa_down_checkpoints_unstamped_then_exchanges_stop(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    """Keep last: stops the sandbox's TSA for the rest of the module."""
    anchor = federation["registry"]["anchor"]
    provider = node(federation, HOSP_B)
    _stop_tsa(federation)
    async with aiohttp.ClientSession() as session:
        # Within the grace period (sandbox default) exchanges go on.
        consumer = node(federation, HOSP_A)
        response = await _read_patient(
            session, consumer["client_url"], consumer["clients"][CONSUMER]["token"]
        )
        assert response.status == 200
        code, made = await _renkei("audit", "checkpoint", "--config", provider["config"])
        assert code == 0, made
        assert made["timestamped"] is False, made
        assert made["cosigned"] is True, made
        bundle = await _export(session, provider, tmp_path / "unstamped.tar.gz")
    code, report = await _renkei("audit", "verify", str(bundle), "--anchor", anchor)
    assert code == 2
    assert report["code"] == "auditor.not_timestamped"
    code, report = await _renkei("audit", "verify", str(bundle), "--anchor", anchor,
                                 "--allow-unstamped")
    assert code == 0, report
    assert any("not time-stamped" in w for w in report["warnings"])

    settings = _in_process_settings(
        federation, tmp_path,
        RENKEI_NODE_AUDIT__TIMESTAMP_GRACE_S="1",
        RENKEI_NODE_AUDIT__CHECKPOINT_INTERVAL_S="0.3",
    )  # fmt: skip
    async with running_node(settings) as run, aiohttp.ClientSession() as session:
        client = f"http://127.0.0.1:{run.client_port}"
        ready = f"http://127.0.0.1:{run.management_port}/readyz"
        response = await _read_patient(session, client)  # a row to checkpoint
        assert response.status == 200
        deadline = time.monotonic() + 15
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            async with session.get(ready) as answer:
                state = (await answer.json())["checks"]["timestamping"]
                if answer.status == 503 and state["ok"] is False:
                    break
            await asyncio.sleep(0.3)
        assert state["ok"] is False, state
        assert state["grace_s"] == 1
        response = await _read_patient(session, client)
        assert response.status == 500  # r1: X-Road's 500 for server.* (docs/protocol.md)
        assert response.headers["X-Road-Error"] == "server.timestamping_failed"

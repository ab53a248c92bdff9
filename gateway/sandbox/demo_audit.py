"""``make demo-audit``: an auditor's day, offline, on a real federation's logs.

Starts the default sandbox, has Hospital A fetch a patient's record from
Hospital B a few times, then for both nodes: builds a checkpoint (signed,
time-stamped by the sandbox TSA, cosigned by the registry's witness when it
serves one), exports the log, verifies the bundle with nothing but the bundle
and the anchor, reconciles the two nodes' bundles exchange by exchange and
prints the patient's "who looked at my data" report. Every step runs the
``renkei audit`` command an auditor would run. Exits 0 only if all succeed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from gateway.sandbox.description import default_description
from gateway.sandbox.run import sandbox_running

__all__ = ["main"]

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
PATIENTS = "RENKEI/GOV/HOSP-B/EHR/patients"
PATIENT = "example"
NODES = {"hospital-a": "RENKEI/GOV/HOSP-A/ss1", "hospital-b": "RENKEI/GOV/HOSP-B/ss1"}


def _say(text: str = "") -> None:
    print(text, flush=True)


def _renkei(*argv: str) -> tuple[int, Any]:
    shown = " ".join(a if " " not in a else repr(a) for a in argv)
    _say(f"   $ renkei {shown}")
    done = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "gateway.cli", *argv], capture_output=True, text=True, check=False
    )
    if done.stderr.strip():
        _say("     " + done.stderr.strip().replace("\n", "\n     "))
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        return done.returncode, done.stdout


async def _exchanges(document: dict[str, Any], count: int) -> None:
    node = next(n for n in document["nodes"] if n["id"] == NODES["hospital-a"])
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            token = node["clients"][CONSUMER]["token"]
            headers = {"X-Road-Client": CONSUMER, "Renkei-Client-Token": token,
                       "X-Road-Id": str(uuid.uuid4()),
                       "Renkei-Purpose": "treatment", "Renkei-Subject": PATIENT,
                       "Accept": "application/fhir+json"}
            url = f"{node['client_url']}/r1/{PATIENTS}/Patient/{PATIENT}"
            async with session.get(url, headers=headers) as response:
                await response.read()
                _say(f"   GET …/Patient/{PATIENT} → HTTP {response.status}")


async def _run() -> int:
    work = Path(tempfile.mkdtemp(prefix="renkei-demo-audit-"))
    failed = False
    try:
        _say("1. Starting a local federation")
        async with sandbox_running(default_description(), work / "sandbox") as (built, text):
            document = json.loads(text)
            anchor = document["registry"]["anchor"]
            _say("2. Hospital A's system reads patient 'example' at Hospital B three times")
            await _exchanges(document, 3)
            bundles = {}
            configs = {str(node.spec.id): str(node.config) for node in built.nodes}
            for slug, node_id in NODES.items():
                config = configs[node_id]
                _say(f"3. {slug}: checkpoint (sign, time-stamp, witness) and export")
                code, result = await asyncio.to_thread(_renkei, "audit", "checkpoint",
                                                       "--config", config)
                _say(f"     {result}")
                failed |= code != 0
                bundle = work / f"{slug}.tar.gz"
                code, result = await asyncio.to_thread(_renkei, "audit", "export", "--config",
                                                       config, "--out", str(bundle))
                failed |= code != 0
                bundles[slug] = (bundle, config, result)
        _say("   (the federation has stopped: everything below is offline)")
        for slug, (bundle, _, _) in bundles.items():
            _say(f"4. Verify {slug}'s bundle with only the bundle and the anchor")
            code, report = _renkei("audit", "verify", str(bundle), "--anchor", anchor)
            if code != 0 and isinstance(report, dict) and report.get("code") == \
                    "auditor.not_cosigned":
                _say("     (no witness cosignature: the registry serves no witness here)")
                code, report = _renkei("audit", "verify", str(bundle), "--anchor", anchor,
                                       "--allow-uncosigned")
            _say("     " + json.dumps(report, indent=1).replace("\n", "\n     "))
            failed |= code != 0
        _say("5. Reconcile the consumer's and the provider's logs")
        code, report = _renkei("audit", "reconcile", str(bundles["hospital-a"][0]),
                               str(bundles["hospital-b"][0]))
        _say("     " + json.dumps(report, indent=1).replace("\n", "\n     "))
        failed |= code != 0
        _say(f"6. Who looked at patient '{PATIENT}'s data?")
        code, report = _renkei("audit", "subject", PATIENT, "--bundle",
                               str(bundles["hospital-b"][0]))
        for entry in report.get("exchanges", []) if isinstance(report, dict) else []:
            _say(f"     {entry['when']}  {entry['consumer']}  {entry['service']}  "
                 f"purpose={entry['purpose']}  released={entry['released']}  {entry['outcome']}")
        failed |= code != 0
        _say()
        _say("Audit demo failed." if failed else "Audit demo complete: all steps succeeded.")
        return 1 if failed else 0
    finally:
        if not failed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            _say(f"   (files kept in {work})")


def main() -> int:
    return asyncio.run(_run())


if __name__ == "__main__":
    sys.exit(main())

"""``make demo``: a real exchange through a local federation, explained as it happens.

Starts the default sandbox (registry, CA, three nodes, sample backends),
has Hospital A's information system fetch a patient record from Hospital B,
shows an exchange refused for lack of an access right, prints both nodes'
audit rows of the exchange, checks both audit chains and stops everything.
Exits 0 only if every step behaved as described.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from gateway.sandbox.description import default_description
from gateway.sandbox.run import sandbox_running

__all__ = ["main"]

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
OUTSIDER = "RENKEI/COM/INSURER/CLAIMS"
PATIENTS = "RENKEI/GOV/HOSP-B/EHR/patients"


class DemoFailed(Exception):
    pass


def _say(text: str = "") -> None:
    print(text, flush=True)


def _step(number: int, title: str) -> None:
    _say()
    _say(f"── {number}. {title} " + "─" * max(0, 66 - len(title)))


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)
    _say(f"   ✓ {message}")


def _node(document: dict[str, Any], node_id: str) -> dict[str, Any]:
    for node in document["nodes"]:
        if node["id"] == node_id:
            return dict(node)
    raise DemoFailed(f"the sandbox has no node {node_id}")


async def _audit_rows(
    session: aiohttp.ClientSession, node: dict[str, Any], message_id: str
) -> list[dict[str, Any]]:
    async with session.get(
        f"{node['management_url']}/api/audit/rows",
        params={"message_id": message_id},
        headers={"Authorization": f"Bearer {node['tokens']['auditor']}"},
    ) as response:
        _expect(response.status == 200, f"{node['id']}: auditor API answers")
        return list((await response.json())["rows"])


async def _verify_chain(session: aiohttp.ClientSession, node: dict[str, Any]) -> None:
    async with session.get(
        f"{node['management_url']}/api/audit/verify",
        headers={"Authorization": f"Bearer {node['tokens']['auditor']}"},
    ) as response:
        result = await response.json()
        _expect(
            response.status == 200 and result.get("ok") is True,
            f"{node['id']}: audit chain verifies ({result.get('rows')} rows)",
        )


def _show_row(row: dict[str, Any]) -> None:
    shown = {
        key: row[key]
        for key in (
            "seq", "logged_at", "role", "message_id", "client", "service", "method",
            "path", "peer_node", "purpose", "subject", "status", "error_code",
            "request_body_sha256", "response_body_sha256", "prev_hash", "entry_hash",
        )
    }
    shown["request_signature"] = (row["request_signature"] or "")[:40] + "…"
    shown["response_signature"] = (row["response_signature"] or "")[:40] + "…"
    _say(textwrap.indent(json.dumps(shown, indent=2, ensure_ascii=False), "      "))


async def _demo(document: dict[str, Any]) -> None:
    hospital_a = _node(document, "RENKEI/GOV/HOSP-A/ss1")
    hospital_b = _node(document, "RENKEI/GOV/HOSP-B/ss1")
    async with aiohttp.ClientSession() as session:
        _step(2, "Hospital A asks Hospital B for patient pat1's record")
        message_id = str(uuid.uuid4())
        url = f"{hospital_a['client_url']}/r1/{PATIENTS}/Patient/pat1"
        headers = {
            "X-Road-Client": CONSUMER,
            "X-Road-Id": message_id,
            "X-Road-UserId": "dr.tanaka",
            "Renkei-Purpose": "treatment",
            "Renkei-Subject": "pat1",
            "Accept": "application/fhir+json",
        }
        _say(f"   GET {url}")
        for name, value in headers.items():
            _say(f"       {name}: {value}")
        started = time.perf_counter()
        async with session.get(url, headers=headers) as response:
            body = await response.read()
            elapsed_ms = (time.perf_counter() - started) * 1000
            _say(f"   → HTTP {response.status} in {elapsed_ms:.1f} ms")
            for name, value in response.headers.items():
                if name.lower().startswith(("x-road-", "renkei-", "content-type")):
                    _say(f"       {name}: {value}")
            _expect(response.status == 200, "the record came back through both nodes")
            _expect("X-Road-Error" not in response.headers, "no node refused it")
            _expect(
                bool(response.headers.get("X-Road-Request-Hash")),
                "the provider bound its signed response to the request (X-Road-Request-Hash)",
            )
        record = json.loads(body)
        preview = json.dumps(
            {k: record[k] for k in ("resourceType", "id", "name", "birthDate") if k in record},
            indent=2,
        )
        _say("   Response body (excerpt):")
        _say(textwrap.indent(preview, "      "))

        _step(3, "The insurer, which has no access right, tries the same")
        async with session.get(
            url, headers={"X-Road-Client": OUTSIDER, "Renkei-Purpose": "treatment"}
        ) as response:
            refusal = await response.json()
            code = response.headers.get("X-Road-Error")
            _say(f"   → HTTP {response.status}  X-Road-Error: {code}")
            _say(textwrap.indent(json.dumps(refusal, indent=2), "      "))
            _expect(
                response.headers.get("X-Road-Error") == "server.serverproxy.access_denied",
                "Hospital B's node refused it: server.serverproxy.access_denied",
            )

        _step(4, "Both nodes logged the exchange (read through the auditor API)")
        for node in (hospital_a, hospital_b):
            rows = await _audit_rows(session, node, message_id)
            _expect(len(rows) == 1, f"{node['id']} has the exchange's row")
            _show_row(rows[0])
        consumer_row = (await _audit_rows(session, hospital_a, message_id))[0]
        provider_row = (await _audit_rows(session, hospital_b, message_id))[0]
        _expect(
            consumer_row["request_hash"] == provider_row["request_hash"]
            and consumer_row["response_body_sha256"] == provider_row["response_body_sha256"],
            "both sides recorded the same request hash and response digest",
        )

        _step(5, "Both audit chains verify")
        for node in (hospital_a, hospital_b):
            await _verify_chain(session, node)


async def _run() -> int:
    work = Path(tempfile.mkdtemp(prefix="renkei-demo-"))
    try:
        _step(1, "Starting a local federation (CA, registry, 3 nodes, sample backends)")
        started = time.perf_counter()
        async with sandbox_running(default_description(), work) as (_, text):
            document = json.loads(text)
            elapsed = time.perf_counter() - started
            _say(f"   ready in {elapsed:.1f} s; instance {document['instance']}")
            for node in document["nodes"]:
                _say(f"   node {node['id']:<28} client {node['client_url']}")
            await _demo(document)
        _say()
        _say("Demo complete: every step behaved as described. The federation has stopped.")
        return 0
    except DemoFailed as exc:
        _say(f"\n   ✗ {exc}")
        _say(f"   (logs of the processes are in {work / 'logs'})")
        return 1
    finally:
        if sys.exc_info()[0] is None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    return asyncio.run(_run())


if __name__ == "__main__":
    sys.exit(main())

"""``make demo``: a real exchange through a local federation, explained as it happens.

Starts the default sandbox (registry, CA, three nodes, sample backends),
has Hospital A's information system fetch a patient record from Hospital B
with only the fields the patient consented to, revokes the consent and shows
the next response shrink, imports a patient's FHIR Consent and shows it
enforced (and an official example refused, naming the element), shows an
undeclared purpose, the insurer posing as Hospital A on their shared node and
a missing access right refused, prints both nodes' audit rows of the
exchange, checks both audit chains, prints the web console's URLs with login
tokens and a citizen link, and stops everything (``--keep``: keeps it running
until Ctrl-C, to explore the console).
Exits 0 only if every step behaved as described.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp

from gateway.sandbox.demo_console import print_console_links
from gateway.sandbox.description import default_description
from gateway.sandbox.run import sandbox_running

__all__ = ["main"]

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
OUTSIDER = "RENKEI/COM/INSURER/CLAIMS"
PATIENTS = "RENKEI/GOV/HOSP-B/EHR/patients"
PATIENT = "example"


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
            "seq",
            "logged_at",
            "role",
            "message_id",
            "client",
            "service",
            "method",
            "path",
            "peer_node",
            "purpose",
            "subject",
            "status",
            "error_code",
            "consent",
            "request_body_sha256",
            "response_body_sha256",
            "prev_hash",
            "entry_hash",
        )
    }
    shown["request_signature"] = (row["request_signature"] or "")[:40] + "…"
    shown["response_signature"] = (row["response_signature"] or "")[:40] + "…"
    _say(textwrap.indent(json.dumps(shown, indent=2, ensure_ascii=False), "      "))


def _fhir_summary(bundle: dict[str, Any]) -> str:
    """What a clinician would see: resource types and their fields."""
    lines = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        fields = sorted(k for k in resource if k not in ("resourceType", "id"))
        lines.append(f"{resource.get('resourceType')}/{resource.get('id')}: {', '.join(fields)}")
    return "\n".join(lines)


async def _fetch_record(
    session: aiohttp.ClientSession, hospital_a: dict[str, Any], message_id: str, purpose: str
) -> tuple[int, dict[str, str], Any]:
    url = f"{hospital_a['client_url']}/r1/{PATIENTS}/Patient/{PATIENT}/$everything"
    headers = {
        "X-Road-Client": CONSUMER,
        # Hospital A's node also hosts the insurer: each system proves who it is.
        "Renkei-Client-Token": hospital_a["clients"][CONSUMER]["token"],
        "X-Road-Id": message_id,
        "X-Road-UserId": "dr.tanaka",
        "Renkei-Purpose": purpose,
        "Renkei-Subject": PATIENT,
        "Accept": "application/fhir+json",
    }
    _say(f"   GET {url}")
    for name, value in headers.items():
        shown = f"{value[:24]}…" if name == "Renkei-Client-Token" else value
        _say(f"       {name}: {shown}")
    started = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        body = await response.json(content_type=None)
        elapsed_ms = (time.perf_counter() - started) * 1000
        _say(f"   → HTTP {response.status} in {elapsed_ms:.1f} ms")
        for name, value in response.headers.items():
            if name.lower().startswith(("x-road-", "renkei-", "content-type")):
                _say(f"       {name}: {value}")
        return response.status, dict(response.headers), body


# A consent as a hospital records it in FHIR R4: nothing shared for treatment, except
# the patient's observations with Hospital A (root deny, nested permit).
_FHIR_CONSENT: dict[str, Any] = {
    "resourceType": "Consent",
    "id": "pat2-observations",
    "status": "active",
    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                          "code": "patient-privacy"}]},
    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
    "patient": {"reference": "Patient/pat2"},
    "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                               "code": "OPTIN"}]},
    "provision": {
        "type": "deny",
        "provision": [
            {
                "type": "permit",
                "actor": [{
                    "role": {"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": "PRCP",
                    }]},
                    "reference": {"reference": "Organization/hosp-a"},
                }],
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                             "code": "TREAT"}],
                "class": [{"system": "http://hl7.org/fhir/resource-types",
                           "code": "Observation"}],
            }
        ],
    },
}  # fmt: skip


async def _management(
    session: aiohttp.ClientSession,
    node: dict[str, Any],
    method: str,
    path: str,
    *,
    role: str,
    body: Any = None,
    fhir: Any = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {node['tokens'][role]}"}
    data = None
    if fhir is not None:
        headers["Content-Type"] = "application/fhir+json"
        data = json.dumps(fhir).encode()
    async with session.request(
        method, node["management_url"] + path, json=body, data=data, headers=headers
    ) as response:
        return response.status, await response.json(content_type=None)


async def _fhir_consent(
    session: aiohttp.ClientSession, hospital_a: dict[str, Any], hospital_b: dict[str, Any]
) -> None:
    _step(5, "A FHIR Consent imported at Hospital B, and enforced")
    _say("   Hospital B's operator maps FHIR codes onto the federation (renkei consent map):")
    for kind, code, target in (
        ("actor", "Organization/hosp-a", CONSUMER),
        ("purpose", "http://terminology.hl7.org/CodeSystem/v3-ActReason|TREAT", "treatment"),
    ):
        status, _ = await _management(
            session, hospital_b, "PUT", "/api/fhir-codes", role="admin",
            body={"kind": kind, "code": code, "target": target},
        )  # fmt: skip
        _expect(status == 200, f"{kind} {code} -> {target}")
    query = f"/api/consents?service={PATIENTS}"
    official = json.loads(
        resources.files("gateway.sandbox")
        .joinpath("data", "fhir", "Consent-consent-example-basic.json")
        .read_text("utf-8")
    )
    status, refused = await _management(
        session, hospital_b, "POST", query + "&root_type=permit", role="consent", fhir=official
    )
    problems = [f"{p['element']}: {p['why']}" for p in refused.get("problems", [])]
    _say(f"   The official example consent-example-basic → HTTP {status}")
    _say(textwrap.indent("\n".join(problems), "      "))
    _expect(
        status == 400 and problems[0].startswith("Consent.provision.period"),
        "refused whole, naming the element it cannot enforce (its period ended in 2016)",
    )
    status, imported = await _management(
        session, hospital_b, "POST", query, role="consent", fhir=_FHIR_CONSENT
    )
    _say("   Patient pat2's consent: deny everything, except observations for Hospital A's")
    _say(f"   treatment → HTTP {status}, rules:")
    for rule in imported.get("consents", []):
        _say(
            f"      {rule['decision']} (depth {rule['depth']}) {rule['consumer']} "
            f"{rule['purpose']} {','.join(rule['resource_types']) or 'all data'}"
        )
    _expect(status == 201, "imported as two rules, the nested one the more specific")
    url = f"{hospital_a['client_url']}/r1/{PATIENTS}/Patient/pat2/$everything"
    async with session.get(
        url,
        headers={
            "X-Road-Client": CONSUMER,
            "Renkei-Client-Token": hospital_a["clients"][CONSUMER]["token"],
            "X-Road-Id": str(uuid.uuid4()),
            "Renkei-Purpose": "treatment",
            "Accept": "application/fhir+json",
        },
    ) as response:
        bundle = await response.json(content_type=None)
        withheld = response.headers.get("Renkei-Withheld", "")
        _say(f"   GET {url} → HTTP {response.status}")
        _say(f"       Renkei-Withheld: {withheld}")
    _say(textwrap.indent(_fhir_summary(bundle), "      "))
    types = [e["resource"]["resourceType"] for e in bundle.get("entry", [])]
    _expect(types == ["Observation"], "only the observation was released")
    _expect(
        "Bundle.entry[*](Patient):denied" in withheld.split(","),
        "the patient and allergy resources were withheld by the deny, and listed",
    )
    async with session.get(
        f"{hospital_b['management_url']}/api/consents/{_FHIR_CONSENT['id']}",
        headers={
            "Authorization": f"Bearer {hospital_b['tokens']['auditor']}",
            "Accept": "application/fhir+json",
        },
    ) as response:
        exported = await response.json(content_type=None)
    _expect(
        response.status == 200 and exported["provision"]["provision"][0]["type"] == "permit",
        "GET with Accept: application/fhir+json gives it back as a FHIR Consent",
    )


async def _demo(document: dict[str, Any]) -> None:
    hospital_a = _node(document, "RENKEI/GOV/HOSP-A/ss1")
    hospital_b = _node(document, "RENKEI/GOV/HOSP-B/ss1")
    consent_id = document["consents"][0]["id"]
    async with aiohttp.ClientSession() as session:
        _step(2, f"Hospital A asks Hospital B for patient {PATIENT!r}'s record (treatment)")
        _say(f"   The patient consented to share {', '.join(document['consents'][0]['fields'])}")
        _say("   with Hospital A for 'treatment' (consent " + consent_id + ").")
        message_id = str(uuid.uuid4())
        status, headers, bundle = await _fetch_record(session, hospital_a, message_id, "treatment")
        _expect(status == 200, "the record came back through both nodes")
        _expect("X-Road-Error" not in headers, "no node refused it")
        _expect(
            bool(headers.get("X-Road-Request-Hash")),
            "the provider bound its signed response to the request (X-Road-Request-Hash)",
        )
        _say("   What Hospital A received:")
        _say(textwrap.indent(_fhir_summary(bundle), "      "))
        patient = bundle["entry"][0]["resource"]
        _expect(
            "name" in patient and "birthDate" in patient,
            "name and birth date were released",
        )
        _expect(
            "address" not in patient and "telecom" not in patient,
            "address and telecom were withheld (no consent)",
        )
        types = {e["resource"]["resourceType"] for e in bundle["entry"]}
        _expect("AllergyIntolerance" in types, "allergies were released")
        _expect(headers.get("Renkei-Consent") == consent_id, "Renkei-Consent names the consent")

        _step(3, "Hospital B's backend answers with a Bundle about two patients")
        _say("   A careless search mixes in another patient's records and someone's consent.")
        _say("   Whose data each resource is comes from the resource, not from the request:")
        mixed_url = f"{hospital_a['client_url']}/r1/{PATIENTS}/Patient/{PATIENT}/$mixed"
        async with session.get(
            mixed_url,
            headers={
                "X-Road-Client": CONSUMER,
                "Renkei-Client-Token": hospital_a["clients"][CONSUMER]["token"],
                "X-Road-Id": str(uuid.uuid4()),
                "Renkei-Purpose": "treatment",
                "Accept": "application/fhir+json",
            },
        ) as response:
            mixed = await response.json(content_type=None)
            mixed_withheld = response.headers.get("Renkei-Withheld", "").split(",")
            _say(f"   GET {mixed_url} → HTTP {response.status}")
        _say(textwrap.indent(_fhir_summary(mixed), "      "))
        subjects = {
            e["resource"]["id"]
            if e["resource"]["resourceType"] == "Patient"
            else e["resource"].get("patient", e["resource"].get("subject", {})).get("reference")
            for e in mixed.get("entry", [])
        }
        _expect(
            subjects <= {PATIENT, f"Patient/{PATIENT}", None},
            f"only {PATIENT!r}'s resources (and the hospital's Organization) were released",
        )
        _expect(
            "Bundle.entry[*](Patient):other-subject" in mixed_withheld,
            "the other patient's resources were withheld and listed, without saying whose",
        )

        _step(4, "The patient revokes the consent at Hospital B's consent desk")
        async with session.delete(
            f"{hospital_b['management_url']}/api/consents/{consent_id}",
            headers={"Authorization": f"Bearer {hospital_b['tokens']['consent']}"},
        ) as response:
            revoked = await response.json()
            _expect(response.status == 200 and revoked["revoked_at"], "consent revoked")
        status, headers, bundle = await _fetch_record(
            session, hospital_a, str(uuid.uuid4()), "treatment"
        )
        _say("   What Hospital A receives now:")
        _say(textwrap.indent(_fhir_summary(bundle), "      "))
        patient = bundle["entry"][0]["resource"]
        _expect(
            status == 200 and "name" not in patient and len(bundle["entry"]) == 1,
            "the very next response shrank to the public fields",
        )

        await _fhir_consent(session, hospital_a, hospital_b)

        _step(6, "A request for a purpose Hospital A never declared")
        status, headers, refusal = await _fetch_record(
            session, hospital_a, str(uuid.uuid4()), "marketing"
        )
        _expect(
            headers.get("X-Road-Error") == "client.purpose_undeclared",
            "Hospital A's own node refused it: client.purpose_undeclared",
        )

        _step(7, "The insurer, which has no access right, asks for the same record")
        url = f"{hospital_a['client_url']}/r1/{PATIENTS}/Patient/{PATIENT}"
        insurer = hospital_a["clients"][OUTSIDER]["token"]
        # It shares Hospital A's node, but cannot pass itself off as Hospital A.
        async with session.get(
            url, headers={"X-Road-Client": CONSUMER, "Renkei-Client-Token": insurer}
        ) as response:
            code = response.headers.get("X-Road-Error")
            _say(f"   as Hospital A → HTTP {response.status}  X-Road-Error: {code}")
            _expect(
                code == "client.authentication_failed",
                "the shared node refused the insurer's token for Hospital A's subsystem",
            )
        async with session.get(
            url, headers={"X-Road-Client": OUTSIDER, "Renkei-Client-Token": insurer}
        ) as response:
            refusal = await response.json()
            code = response.headers.get("X-Road-Error")
            _say(f"   → HTTP {response.status}  X-Road-Error: {code}")
            _say(textwrap.indent(json.dumps(refusal, indent=2), "      "))
            _expect(
                code == "server.serverproxy.access_denied",
                "Hospital B's node refused it: server.serverproxy.access_denied",
            )

        _step(8, "Both nodes logged the first exchange (read through the auditor API)")
        rows = {}
        for node in (hospital_a, hospital_b):
            found = await _audit_rows(session, node, message_id)
            _expect(len(found) == 1, f"{node['id']} has the exchange's row")
            _show_row(found[0])
            rows[node["id"]] = found[0]
        consumer_row, provider_row = rows[hospital_a["id"]], rows[hospital_b["id"]]
        _expect(
            consumer_row["request_hash"] == provider_row["request_hash"]
            and consumer_row["response_body_sha256"] == provider_row["response_body_sha256"],
            "both sides recorded the same request hash and response digest",
        )

        _step(9, "Both audit chains verify")
        for node in (hospital_a, hospital_b):
            await _verify_chain(session, node)


async def _wait_for_interrupt() -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()


async def _run(*, keep: bool = False) -> int:
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
            await print_console_links(
                document, citizen_node="RENKEI/GOV/HOSP-B/ss1", subject=PATIENT, say=_say
            )
            if keep:
                _say()
                _say("Demo complete. The federation keeps running (--keep); Ctrl-C stops it.")
                await _wait_for_interrupt()
                return 0
        _say()
        _say("Demo complete: every step behaved as described. The federation has stopped.")
        _say("(make demo DEMO_ARGS=--keep leaves it running, to explore the console.)")
        return 0
    except DemoFailed as exc:
        _say(f"\n   ✗ {exc}")
        _say(f"   (logs of the processes are in {work / 'logs'})")
        return 1
    finally:
        if sys.exc_info()[0] is None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    keep = "--keep" in sys.argv[1:]
    try:
        return asyncio.run(_run(keep=keep))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

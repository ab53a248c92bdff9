"""Per-field consent through two real nodes: release, withhold, revoke, fail closed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from certs.keys import load_certificates
from policies.receipts import verify_receipt, verify_record
from tests.functional.sandbox_helpers import client_headers, node
from tests.unit.policies.fhir_validation import assert_valid_r4

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
PATIENTS = "RENKEI/GOV/HOSP-B/EHR/patients"
HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"
REDACTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "REDACTED",
    "display": "redacted",
}
SSN = "123-45-6789"


async def fetch(
    federation: dict[str, Any],
    path: str,
    *,
    purpose: str | None = "treatment",
    subject: str | None = None,
    message_id: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    headers = {
        **client_headers(federation, CONSUMER),
        "X-Road-Id": message_id or str(uuid.uuid4()),
    }
    if purpose:
        headers["Renkei-Purpose"] = purpose
    if subject:
        headers["Renkei-Subject"] = subject
    url = f"{node(federation, HOSP_A)['client_url']}/r1/{PATIENTS}{path}"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers) as response:
            text = await response.text()
            return response.status, dict(response.headers), json.loads(text) if text else None


async def management(
    federation: dict[str, Any],
    method: str,
    path: str,
    *,
    role: str = "consent",
    body: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    entry = node(federation, HOSP_B)
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method,
            entry["management_url"] + path,
            json=body,
            headers={"Authorization": f"Bearer {entry['tokens'][role]}"},
        ) as response:
            return response.status, await response.json()


async def grant(federation: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "subject": "mom",
        "consumer": CONSUMER,
        "service": PATIENTS,
        "purpose": "treatment",
        "fields": ["Patient.name", "Patient.telecom"],
    }
    body.update(overrides)
    status, document = await management(federation, "POST", "/api/consents", body=body)
    assert status == 201, document
    return dict(document)


async def test_consented_fields_only(federation: dict[str, Any]) -> None:
    message_id = str(uuid.uuid4())
    status, headers, patient = await fetch(
        federation, "/Patient/example", subject="example", message_id=message_id
    )
    assert status == 200
    assert {"name", "birthDate", "active"} <= set(patient)
    assert not {"address", "telecom", "gender", "identifier"} & set(patient)
    withheld = headers["Renkei-Withheld"].split(",")
    assert "Patient.address" in withheld
    assert "Patient.telecom" in withheld
    consent_id = federation["consents"][0]["id"]
    assert headers["Renkei-Consent"] == consent_id
    entry = node(federation, HOSP_B)
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{entry['management_url']}/api/audit/rows",
            params={"message_id": message_id},
            headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
        ) as response:
            row = (await response.json())["rows"][0]
    decision = json.loads(row["consent"])
    assert decision["consent_ids"] == [consent_id]
    assert "Patient.name" in decision["released"]
    assert "Patient.address" in decision["withheld"]


async def test_no_consent_means_public_fields_only(federation: dict[str, Any]) -> None:
    status, headers, patient = await fetch(federation, "/Patient/pat3")
    assert status == 200
    assert set(patient) == {"resourceType", "id", "active", "meta"}
    assert patient["meta"] == {"security": [REDACTED]}
    assert "Renkei-Consent" not in headers
    assert_valid_r4(patient)


async def test_grant_with_receipt_then_revoke_applies_to_the_next_request(
    federation: dict[str, Any],
) -> None:
    document = await grant(federation)
    holder = load_certificates(
        Path(node(federation, HOSP_B)["config"]).parent / "keys" / "sign-hosp-b.pem"
    )[0]
    receipt = verify_receipt(document["receipt_jws"], holder, datetime.now(UTC))
    assert receipt["piiPrincipalId"] == "mom"
    assert receipt["piiControllers"][0]["email"] == "consent@hosp-b.example"
    record = verify_record(document["record_jws"], holder, datetime.now(UTC))
    assert record["dpv:hasDataSubject"]["dct:identifier"] == "mom"
    status, _, patient = await fetch(federation, "/Patient/mom")
    assert status == 200
    assert {"name", "telecom"} <= set(patient)
    assert "address" not in patient
    status, revoked = await management(
        federation, "DELETE", f"/api/consents/{document['consent']['id']}"
    )
    assert status == 200
    assert revoked["revoked_at"]
    status, _, patient = await fetch(federation, "/Patient/mom")
    assert status == 200
    assert "name" not in patient
    assert "telecom" not in patient


async def test_consent_for_another_purpose_or_expired_releases_nothing(
    federation: dict[str, Any],
) -> None:
    await grant(federation, subject="pat4", purpose="research", fields=["Patient.name"])
    until = datetime.now(UTC) + timedelta(seconds=2)
    await grant(
        federation,
        subject="pat4",
        fields=["Patient.birthDate"],
        valid_from=(until - timedelta(days=1)).isoformat(),
        valid_until=until.isoformat(),
    )
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.2)
    status, _, patient = await fetch(federation, "/Patient/pat4")
    assert status == 200
    assert "name" not in patient
    assert "birthDate" not in patient


# -- the consent desk refuses consents that can never apply -----------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"consumer": "Organization/f001"}, "not a global group of the current"),
        ({"consumer": "RENKEI/GOV/NOBODY/EHR"}, "not a subsystem of the current"),
        ({"purpose": "marketing"}, "declared: research, treatment"),
        ({"consumer": "RENKEI/COM/INSURER/CLAIMS"}, "declared: none"),
        (
            {
                "valid_from": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
                "valid_until": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            },
            "entirely in the past",
        ),
        ({"fields": ["Patient.secret"]}, "declared: Patient.identifier, Patient.active"),
        ({"fields": ["*", "Patient.name"]}, "stands alone"),
    ],
)
async def test_the_consent_desk_refuses_consents_that_can_never_apply(
    federation: dict[str, Any], changes: dict[str, Any], message: str
) -> None:
    body = {
        "subject": "pat1",
        "consumer": CONSUMER,
        "service": PATIENTS,
        "purpose": "treatment",
        "fields": ["Patient.name"],
        **changes,
    }
    status, document = await management(federation, "POST", "/api/consents", body=body)
    assert status == 400, document
    assert document["type"] == "policies.consent_invalid"
    assert message in document["message"]


async def test_all_declared_fields_and_the_purpose_text(federation: dict[str, Any]) -> None:
    document = await grant(federation, subject="pat1", fields=["*"])
    assert "Patient.telecom" in document["consent"]["fields"]
    assert "*" not in document["consent"]["fields"]
    purposes = document["receipt"]["services"][0]["purposes"][0]
    assert purposes["purpose"] == "Treatment of the patient by Hospital A's clinicians"
    assert purposes["purposeCode"] == "treatment"
    status, _, patient = await fetch(federation, "/Patient/pat1")
    assert status == 200
    assert "meta" not in patient  # nothing withheld: no redaction label
    assert {"photo", "contact", "link"} <= set(patient)


async def test_consent_to_a_global_group(federation: dict[str, Any]) -> None:
    await grant(
        federation, subject="pat2", consumer="RENKEI/transit-partners", fields=["Patient.gender"]
    )
    status, _, patient = await fetch(federation, "/Patient/pat2")
    assert status == 200
    assert "gender" in patient


async def test_consent_for_an_undeclared_field_is_refused(federation: dict[str, Any]) -> None:
    status, document = await management(
        federation,
        "POST",
        "/api/consents",
        body={
            "subject": "mom",
            "consumer": CONSUMER,
            "service": PATIENTS,
            "purpose": "treatment",
            "fields": ["Patient.secretField"],
        },
    )
    assert status == 400
    assert document["type"].startswith("policies.")


async def test_a_body_with_duplicate_keys_is_refused(federation: dict[str, Any]) -> None:
    # Which "subject" would count is parser-dependent: the node refuses both.
    entry = node(federation, HOSP_B)
    rest = json.dumps({"consumer": CONSUMER, "service": PATIENTS, "purpose": "treatment",
                       "fields": ["Patient.name"]})
    raw = '{"subject": "mom", "subject": "eve", ' + rest[1:]
    async with aiohttp.ClientSession() as session:
        async with session.post(
            entry["management_url"] + "/api/consents",
            data=raw.encode(),
            headers={"Authorization": f"Bearer {entry['tokens']['consent']}",
                     "Content-Type": "application/json"},
        ) as response:
            status, document = response.status, await response.json()
    assert status == 400, document
    assert document["type"].startswith("policies."), document
    assert "duplicate" in document["message"]
    _, listed = await management(federation, "GET", "/api/consents?subject=eve")
    assert not [c for c in listed["consents"] if c["subject"] == "eve"]


async def test_consent_role_is_required(federation: dict[str, Any]) -> None:
    status, _ = await management(federation, "GET", "/api/consents", role="auditor")
    assert status == 200
    status, _ = await management(
        federation, "POST", "/api/consents", role="auditor", body={"subject": "x"}
    )
    assert status == 403


@pytest.mark.parametrize(
    ("purpose", "subject", "path", "code"),
    [
        (None, None, "/Patient/example", "server.serverproxy.purpose_required"),
        ("marketing", None, "/Patient/example", "client.purpose_undeclared"),
        ("treatment", "pat1", "/Patient/example", "server.serverproxy.subject_mismatch"),
        ("treatment", None, "/metadata", "server.serverproxy.subject_required"),
    ],
)
async def test_requests_that_cannot_be_decided_are_refused(
    federation: dict[str, Any], purpose: str | None, subject: str | None, path: str, code: str
) -> None:
    status, headers, _ = await fetch(federation, path, purpose=purpose, subject=subject)
    assert headers.get("X-Road-Error") == code
    assert status in (400, 500)


@pytest.mark.parametrize("kind", ["duplicate-keys", "html", "latin1", "deep", "gzip-bomb"])
async def test_unfilterable_bodies_are_never_forwarded(
    federation: dict[str, Any], kind: str
) -> None:
    status, headers, body = await fetch(federation, f"/Patient/example/$malformed?kind={kind}")
    assert status == 500
    assert headers["X-Road-Error"] == "server.serverproxy.response_unfilterable"
    assert "Chalmers" not in json.dumps(body)
    assert body["type"] == "server.serverproxy.response_unfilterable"


def test_consent_cli(federation: dict[str, Any], tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(node(federation, HOSP_B)["tokens"]["consent"])
    base = [
        sys.executable,
        "-m",
        "gateway.cli",
        "consent",
    ]
    common = [
        "--url", node(federation, HOSP_B)["management_url"], "--token-file", str(token), "--json"
    ]  # fmt: skip
    granted = subprocess.run(
        [
            *base,
            "grant",
            *common,
            "--subject",
            "pat3",
            "--consumer",
            CONSUMER,
            "--service",
            PATIENTS,
            "--purpose",
            "treatment",
            "--field",
            "Patient.name",
            "--field",
            "Patient.birthDate",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    consent_id = json.loads(granted.stdout)["consent"]["id"]
    listed = subprocess.run(
        [*base, "list", *common, "--subject", "pat3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert consent_id in [c["id"] for c in json.loads(listed.stdout)["consents"]]
    revoked = subprocess.run(
        [*base, "revoke", *common, consent_id], capture_output=True, text=True, check=True
    )
    assert json.loads(revoked.stdout)["revoked_at"]
    missing = subprocess.run(
        [*base, "revoke", *common, str(uuid.uuid4())], capture_output=True, text=True
    )
    assert missing.returncode == 1
    assert "policies.consent_not_found" in missing.stderr


# -- whose data it is comes from the data (mixed-patient Bundles) ----------------------


async def audited(federation: dict[str, Any], path: str) -> Any:
    entry = node(federation, HOSP_B)
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{entry['management_url']}{path}",
            headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
        ) as response:
            assert response.status == 200
            return await response.json()


@pytest.mark.parametrize("kind", ["searchset", "transaction", "collection"])
async def test_a_mixed_patient_bundle_releases_only_the_named_patients_resources(
    federation: dict[str, Any], kind: str
) -> None:
    message_id = str(uuid.uuid4())
    status, headers, bundle = await fetch(
        federation, f"/Patient/example/$mixed?type={kind}", message_id=message_id
    )
    assert status == 200, bundle
    released = [
        (e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
    ]
    # The consent of "example" covers name, birth date and allergies; Organization
    # is declared impersonal; the other patient's records and f001's consent go.
    assert released == [
        ("Patient", "example"),
        ("AllergyIntolerance", "example-example"),
        ("Organization", "hosp-b"),
    ]
    text = json.dumps(bundle)
    assert "pat1" not in text
    assert "f001" not in text
    withheld = headers["Renkei-Withheld"].split(",")
    assert "Bundle.entry[*](Patient):other-subject" in withheld
    assert "Bundle.entry[*](Consent):other-subject" in withheld
    assert_valid_r4(bundle)
    rows = (await audited(federation, f"/api/audit/rows?message_id={message_id}"))["rows"]
    decision = json.loads(rows[0]["consent"])
    assert decision["subjects"] == ["example"]
    assert decision["withheld_subjects"] == ["f001", "pat1"]
    # Each person the exchange touched finds it in their data-subject report.
    for subject, relation in (("example", "released"), ("pat1", "withheld"),
                              ("f001", "withheld")):
        report = await audited(federation, f"/api/audit/subject/{subject}")
        found = [e for e in report["exchanges"] if e["message_id"] == message_id]
        assert [e["relation"] for e in found] == [relation], subject
        if relation == "withheld":
            assert found[0]["released"] == []


async def test_a_document_about_two_patients_is_refused_not_cut(
    federation: dict[str, Any],
) -> None:
    status, headers, body = await fetch(federation, "/Patient/example/$mixed?type=document")
    assert status == 500
    assert headers["X-Road-Error"] == "server.serverproxy.document_withheld"
    assert "Chalmers" not in json.dumps(body)


async def test_a_patient_other_than_the_path_names_is_withheld(
    federation: dict[str, Any],
) -> None:
    status, headers, body = await fetch(federation, "/Patient/example/$other")
    assert status == 500
    assert headers["X-Road-Error"] == "server.serverproxy.resource_withheld"
    assert "pat1" not in json.dumps(body)


async def test_the_backend_gets_the_subject_named_in_the_path(
    federation: dict[str, Any],
) -> None:
    # The sandbox backend answers only requests whose Renkei-Subject names the path's
    # patient; the consumer named the subject in the path alone.
    status, _, patient = await fetch(federation, "/Patient/example")
    assert status == 200
    assert patient["id"] == "example"


# -- other channels: meta, extensions, URLs, headers ------------------------------------


@pytest.mark.parametrize("backend_status", [200, 204])
async def test_nothing_leaves_in_meta_urls_or_headers(
    federation: dict[str, Any], backend_status: int
) -> None:
    query = "?status=204" if backend_status == 204 else ""
    status, headers, bundle = await fetch(federation, f"/Patient/example/$leaky{query}")
    assert status == backend_status
    for name in ("Set-Cookie", "Link", "Location", "Content-Disposition", "X-Patient-SSN"):
        assert name not in headers, name
    assert SSN not in json.dumps(headers)
    assert headers["Last-Modified"] == "Mon, 01 Jan 2024 00:00:00 GMT"  # declared
    if backend_status == 204:
        return
    text = json.dumps(bundle)
    assert SSN not in text
    assert "HIV" not in text
    assert "link" not in bundle
    assert bundle["entry"][0]["fullUrl"].startswith("urn:uuid:")
    assert bundle["entry"][0]["resource"]["meta"] == {"security": [REDACTED]}
    assert_valid_r4(bundle)


async def test_set_cookie_never_crosses_the_federation(federation: dict[str, Any]) -> None:
    url = f"{node(federation, HOSP_A)['client_url']}/r1/RENKEI/GOV/HOSP-B/EHR/echo/x?set-cookie=1"
    async with aiohttp.ClientSession() as session:
        async with session.get(
            url, headers={**client_headers(federation, CONSUMER), "X-Road-Id": str(uuid.uuid4())}
        ) as response:
            assert response.status == 200
            assert response.headers["X-Echo"] == "yes"
            assert "Set-Cookie" not in response.headers

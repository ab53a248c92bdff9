"""The worked example of docs/policies.md, end to end through the library."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certs.identifiers import ServiceId, SubsystemId
from policies.consent import released_fields
from policies.errors import UnsupportedMediaType
from policies.files import apply_policy_file, load_policy_file
from policies.filter import filter_body
from policies.store import PolicyStore

ROOT = Path(__file__).parents[3]
DATA = ROOT / "tests" / "data" / "fhir"
NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
SERVICE = ServiceId.parse("RENKEI/GOV/HOSPB/records/patients")
CLINIC = SubsystemId.parse("RENKEI/GOV/HOSPA/clinic")
PATIENT = "38001010000"


def backend_bundle() -> bytes:
    entries = [
        json.loads((DATA / name).read_text())
        for name in (
            "Patient-example.json",
            "AllergyIntolerance-example.json",
            "Observation-example.json",
        )
    ]
    # The backend's records of the patient, who has the id PATIENT there.
    entries[0]["id"] = PATIENT
    entries[1]["patient"] = {"reference": f"Patient/{PATIENT}"}
    entries[2]["subject"] = {"reference": f"Patient/{PATIENT}"}
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r,
             "search": {"mode": "match"}}
            for r in entries
        ],
    }
    return json.dumps(bundle).encode()


async def test_patient_consents_to_name_birth_date_and_allergies(store: PolicyStore) -> None:
    await apply_policy_file(
        store, load_policy_file(ROOT / "docs/examples/hospital-b-policy.toml"), now=NOW
    )
    declaration = await store.service_declaration(SERVICE)
    assert declaration is not None
    path = f"/Patient/{PATIENT}/$everything"
    (await store.access_policy()).check_query(CLINIC, frozenset(), SERVICE, "GET", path)
    subject = declaration.subject.locate(headers=lambda _: [], path=path, query=lambda _: [])
    assert subject == PATIENT
    assert await store.purpose(CLINIC, "treatment") is not None

    consent = await store.grant_consent(
        PATIENT,
        CLINIC,
        SERVICE,
        "treatment",
        ["Patient.name", "Patient.birthDate", "AllergyIntolerance"],
        NOW,
        None,
        NOW,
    )
    consents = await store.active_consents(PATIENT, CLINIC, frozenset(), SERVICE, "treatment", NOW)
    fields, ids = released_fields(declaration, consents, NOW)
    assert ids == (str(consent.id),)

    result = filter_body(
        backend_bundle(),
        content_type="application/fhir+json",
        declaration=declaration,
        subject=subject,
        released_fields=fields,
    )
    kept = json.loads(result.body)
    patient = kept["entry"][0]["resource"]
    assert {"name", "birthDate"} <= set(patient)
    assert not {"telecom", "address", "gender"} & set(patient)
    assert kept["entry"][1]["resource"]["resourceType"] == "AllergyIntolerance"
    assert len(kept["entry"]) == 2
    for withheld in (
        "Bundle.entry[*](Observation)",
        "Patient.address",
        "Patient.gender",
        "Patient.telecom",
    ):
        assert withheld in result.withheld

    # Revocation applies to the next request: only the public name remains.
    await store.revoke_consent(consent.id, NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=2)
    consents = await store.active_consents(
        PATIENT, CLINIC, frozenset(), SERVICE, "treatment", later
    )
    fields, ids = released_fields(declaration, consents, later)
    assert ids == ()
    result = filter_body(
        backend_bundle(),
        content_type="application/fhir+json",
        declaration=declaration,
        subject=subject,
        released_fields=fields,
    )
    kept = json.loads(result.body)
    assert [e["resource"]["resourceType"] for e in kept["entry"]] == ["Patient"]
    assert set(kept["entry"][0]["resource"]) == {"resourceType", "id", "meta", "name"}

    with pytest.raises(UnsupportedMediaType):
        filter_body(
            b"<Bundle/>",
            content_type="application/fhir+xml",
            declaration=declaration,
            subject="s",
            released_fields=fields,
        )

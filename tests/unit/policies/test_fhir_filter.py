"""FHIR mode of the filter: per-type field paths, structure, contained resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from certs.identifiers import ServiceId
from policies.declarations import ServiceDeclaration
from policies.errors import BodyInvalid
from policies.filter import FhirPath, SubjectRules, filter_body, filter_fhir_json
from tests.unit.policies.fhir_validation import assert_valid_r4

DATA = Path(__file__).parents[2] / "data" / "fhir"
PATIENT_FIELDS = (
    "Patient.name",
    "Patient.birthDate",
    "Patient.telecom",
    "Patient.address",
    "Patient.gender",
    "AllergyIntolerance",
    "Observation.valueQuantity",
    "Bundle.entry[*].search",
)
DECLARATION = ServiceDeclaration(
    ServiceId.parse("EE/GOV/B/records/patients"),
    media_types=("application/fhir+json", "application/json"),
    fields=PATIENT_FIELDS,
    public_fields=("Bundle.entry[*].search",),
)
CONSENTED = ("Patient.name", "Patient.birthDate", "AllergyIntolerance")
REDACTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "REDACTED",
    "display": "redacted",
}


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def fhir(
    document: object, *released: str, subject: str = "example", impersonal: tuple[str, ...] = ()
) -> Any:
    return filter_fhir_json(
        document,
        [FhirPath.parse(text) for text in released],
        subject=subject,
        subject_rules=SubjectRules(impersonal=impersonal),
    )


@pytest.mark.parametrize(
    "name", ["Patient-example.json", "Patient-mom.json", "Patient-pat1.json", "Patient-pat3.json"]
)
def test_patient_keeps_only_consented_fields_and_structure(name: str) -> None:
    patient = load(name)
    outcome = fhir(patient, *CONSENTED, subject=patient["id"])
    kept = outcome.document
    assert set(kept) <= {"resourceType", "id", "meta", "name", "birthDate", "_birthDate"}
    assert kept["name"] == patient["name"]
    assert kept["resourceType"] == "Patient"
    assert kept["id"] == patient["id"]
    # meta is a field like any other: only the redaction label is the node's own.
    assert kept["meta"] == {"security": [REDACTED]}
    for removed in ("telecom", "address", "text", "identifier", "contact", "gender", "meta"):
        if removed != "meta":
            assert removed not in kept
        if removed in patient:
            assert f"Patient.{removed}" in outcome.withheld
    assert outcome.subjects == (patient["id"],)
    assert_valid_r4(kept)


def test_primitive_extension_follows_its_element() -> None:
    patient = load("Patient-example.json")
    kept = fhir(patient, "Patient.birthDate").document
    assert kept["_birthDate"] == patient["_birthDate"]
    assert "_birthDate" not in fhir(patient, "Patient.name").document


def test_sub_field_paths_step_through_arrays() -> None:
    patient = load("Patient-example.json")
    outcome = fhir(patient, "Patient.name.family")
    # A name without a family name is left out whole: FHIR has no empty objects.
    assert outcome.document["name"] == [{"family": "Chalmers"}, {"family": "Windsor"}]
    assert "Patient.name.given" in outcome.withheld
    assert "Patient.name.use" in outcome.withheld


def test_meds_allergies_bundle() -> None:
    bundle = load("Bundle-bundle-response-medsallergies.json")
    outcome = fhir(bundle, *CONSENTED)
    kept = outcome.document
    assert kept["type"] == "batch-response"
    patient = kept["entry"][0]["resource"]
    assert set(patient) == {"resourceType", "id", "meta", "name", "birthDate", "_birthDate"} & set(
        bundle["entry"][0]["resource"]
    )
    assert_valid_r4(kept)
    # nested searchset bundles keep their structure
    assert all(entry["resource"]["resourceType"] == "Bundle" for entry in kept["entry"][1:])
    assert "Bundle.entry[*].response" in outcome.withheld
    assert "Patient.telecom" in outcome.withheld
    assert "Patient.address" in outcome.withheld
    assert "telecom" not in json.dumps(kept)


def test_f001_bundle_removes_entries_of_unreleased_types() -> None:
    bundle = load("Bundle-f001.json")
    outcome = fhir(bundle, *CONSENTED, subject="f001")
    assert "entry" not in outcome.document  # FHIR has no empty arrays
    assert outcome.document["meta"] == {"security": [REDACTED]}
    assert "Bundle.entry[*](DiagnosticReport)" in outcome.withheld
    assert "Bundle.entry[*](ServiceRequest)" in outcome.withheld


def test_mixed_bundle_applies_each_types_rules() -> None:
    base = "https://b.example/fhir/"
    entries = [
        {
            "fullUrl": base + "Patient/example",
            "resource": load("Patient-example.json"),
            "search": {"mode": "match"},
        },
        {"fullUrl": base + "AllergyIntolerance/example",
         "resource": load("AllergyIntolerance-example.json")},
        {"fullUrl": base + "Observation/example", "resource": load("Observation-example.json")},
        {"fullUrl": base + "Condition/example", "resource": load("Condition-example.json")},
    ]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": 4, "entry": entries}
    outcome = fhir(
        bundle,
        *CONSENTED,
        "Observation.status",
        "Observation.code",
        "Observation.valueQuantity",
        "Bundle.entry[*].search",
    )
    kept = outcome.document
    assert [entry["fullUrl"] for entry in kept["entry"]] == [e["fullUrl"] for e in entries[:3]]
    assert kept["entry"][0]["search"] == {"mode": "match"}
    assert kept["entry"][1]["resource"] == entries[1]["resource"]
    observation = kept["entry"][2]["resource"]
    assert set(observation) == {
        "resourceType", "id", "meta", "status", "code", "valueQuantity", "subject"
    }
    assert observation["subject"] == {"reference": "Patient/example"}
    assert kept["total"] == 3  # the withheld Condition is not counted
    assert "Bundle.entry[*](Condition)" in outcome.withheld
    assert "Observation.category" in outcome.withheld
    assert outcome.released == (
        "AllergyIntolerance",
        "Bundle.entry[*].search",
        "Observation.code",
        "Observation.status",
        "Observation.valueQuantity",
        "Patient.birthDate",
        "Patient.name",
    )
    assert_valid_r4(kept)


def test_entry_members_are_an_allow_list_too() -> None:
    patient = {"resourceType": "Patient", "id": "example"}
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "fullUrl": "Patient/example",
                "resource": patient,
                "search": {"mode": "match"},
                "request": {"url": "x"},
            }
        ],
    }
    outcome = fhir(bundle, "Patient.name")
    assert outcome.document["entry"] == [{"fullUrl": "Patient/example", "resource": patient}]
    assert outcome.withheld == ("Bundle.entry[*].request", "Bundle.entry[*].search")


def test_contained_resources_follow_their_own_rules() -> None:
    request = load("MedicationRequest-medrx0301.json")
    outcome = fhir(
        request,
        "MedicationRequest.status",
        "MedicationRequest.intent",
        "MedicationRequest.medicationReference",
        "Medication.code",
        subject="pat1",
        impersonal=("Medication", "Provenance"),
    )
    kept = outcome.document
    assert set(kept) == {
        "resourceType", "id", "meta", "contained", "status", "intent", "medicationReference",
        "subject",
    }
    assert kept["contained"] == [
        {"resourceType": "Medication", "id": "med0310", "code": request["contained"][0]["code"]}
    ]
    assert "MedicationRequest.contained[*](Provenance)" in outcome.withheld
    assert_valid_r4(kept)


def test_contained_resource_inside_a_whole_resource_is_still_filtered() -> None:
    resource = {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": "Patient/example"},
        "note": [{"text": "x"}],
        "contained": [{"resourceType": "Patient", "id": "p", "telecom": [{"value": "1"}]}],
    }
    resource["contained"].append(
        {"resourceType": "Medication", "id": "m", "code": {"text": "x"}, "status": "active"}
    )
    outcome = fhir(
        resource, "AllergyIntolerance", "Medication.code", impersonal=("Medication",)
    )
    # A contained Patient's id is local: whose data it is cannot be established.
    assert outcome.document["contained"] == [
        {"resourceType": "Medication", "id": "m", "code": {"text": "x"},
         "meta": {"security": [REDACTED]}}
    ]
    assert outcome.document["note"] == [{"text": "x"}]
    assert "AllergyIntolerance.contained[*](Patient):unknown-subject" in outcome.withheld
    assert "Medication.status" in outcome.withheld


def test_top_level_resource_of_unreleased_type_keeps_structure_only() -> None:
    outcome = fhir(load("Condition-example.json"), "Patient.name")
    # The subject reference is what Condition requires; it names the requested subject.
    assert outcome.document == {
        "resourceType": "Condition",
        "id": "example",
        "subject": {"reference": "Patient/example"},
        "meta": {"security": [REDACTED]},
    }
    assert "Condition.code" in outcome.withheld
    assert_valid_r4(outcome.document)


@pytest.mark.parametrize(
    "entry",
    [
        "not an object",
        {"resource": "x"},
        {"resource": {"id": "no type"}},
        {"resource": {"resourceType": 7}},
        {"resource": {"resourceType": "Patient, X\r\nSet-Cookie: a"}},
        {"resource": {"resourceType": "patient"}},
    ],
)
def test_malformed_entries_are_removed(entry: object) -> None:
    bundle = {"resourceType": "Bundle", "entry": [entry]}
    outcome = fhir(bundle, "Patient")
    assert "entry" not in outcome.document
    assert outcome.withheld == ("Bundle.entry[*]",)


def test_malformed_contained_is_removed() -> None:
    resource = {
        "resourceType": "Patient",
        "id": "example",
        "contained": [1, {"resourceType": "Bundle"}],
    }
    outcome = fhir(resource, "Patient", "Bundle")
    assert "contained" not in outcome.document
    assert outcome.withheld == ("Patient.contained[*]",)


@pytest.mark.parametrize(
    "document", [[], {}, {"resourceType": 1}, "Patient", {"resourceType": "Bad Type"}]
)
def test_fhir_body_must_be_a_resource(document: object) -> None:
    with pytest.raises(BodyInvalid):
        fhir(document, "Patient")


@pytest.mark.parametrize("content_type", ["application/fhir+json", "application/json"])
def test_filter_body_uses_fhir_mode_for_fhir_declarations(content_type: str) -> None:
    body = (DATA / "Patient-example.json").read_bytes()
    result = filter_body(
        body,
        content_type=content_type,
        declaration=DECLARATION,
        subject="example",
        released_fields=CONSENTED,
    )
    kept = json.loads(result.body)
    assert "telecom" not in kept
    assert "address" not in kept
    assert kept["name"] == json.loads(body)["name"]
    assert "Patient.telecom" in result.withheld

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from certs.identifiers import ServiceId
from policies.declarations import ServiceDeclaration
from policies.errors import BodyInvalid
from policies.filter import FhirPath, filter_body, filter_fhir_json

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


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def fhir(document: object, *released: str) -> Any:
    return filter_fhir_json(document, [FhirPath.parse(text) for text in released])


@pytest.mark.parametrize(
    "name", ["Patient-example.json", "Patient-mom.json", "Patient-pat1.json", "Patient-pat3.json"]
)
def test_patient_keeps_only_consented_fields_and_structure(name: str) -> None:
    patient = load(name)
    outcome = fhir(patient, *CONSENTED)
    kept = outcome.document
    assert set(kept) <= {"resourceType", "id", "meta", "name", "birthDate", "_birthDate"}
    assert kept["name"] == patient["name"]
    assert kept["resourceType"] == "Patient"
    assert kept["id"] == patient["id"]
    for removed in ("telecom", "address", "text", "identifier", "contact", "gender"):
        assert removed not in kept
        if removed in patient:
            assert f"Patient.{removed}" in outcome.withheld


def test_primitive_extension_follows_its_element() -> None:
    patient = load("Patient-example.json")
    kept = fhir(patient, "Patient.birthDate").document
    assert kept["_birthDate"] == patient["_birthDate"]
    assert "_birthDate" not in fhir(patient, "Patient.name").document


def test_sub_field_paths_step_through_arrays() -> None:
    patient = load("Patient-example.json")
    outcome = fhir(patient, "Patient.name.family")
    assert outcome.document["name"] == [{"family": "Chalmers"}, {}, {"family": "Windsor"}]
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
    # nested searchset bundles keep their structure
    assert all(entry["resource"]["resourceType"] == "Bundle" for entry in kept["entry"][1:])
    assert "Bundle.entry[*].response" in outcome.withheld
    assert "Patient.telecom" in outcome.withheld
    assert "Patient.address" in outcome.withheld
    assert "telecom" not in json.dumps(kept)


def test_f001_bundle_removes_entries_of_unreleased_types() -> None:
    bundle = load("Bundle-f001.json")
    outcome = fhir(bundle, *CONSENTED)
    assert outcome.document["entry"] == []
    assert "Bundle.entry[*](DiagnosticReport)" in outcome.withheld
    assert "Bundle.entry[*](ServiceRequest)" in outcome.withheld


def test_mixed_bundle_applies_each_types_rules() -> None:
    entries = [
        {"fullUrl": "urn:1", "resource": load("Patient-example.json"), "search": {"mode": "match"}},
        {"fullUrl": "urn:2", "resource": load("AllergyIntolerance-example.json")},
        {"fullUrl": "urn:3", "resource": load("Observation-example.json")},
        {"fullUrl": "urn:4", "resource": load("Condition-example.json")},
    ]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": 4, "entry": entries}
    outcome = fhir(bundle, *CONSENTED, "Observation.valueQuantity", "Bundle.entry[*].search")
    kept = outcome.document
    assert [entry["fullUrl"] for entry in kept["entry"]] == ["urn:1", "urn:2", "urn:3"]
    assert kept["entry"][0]["search"] == {"mode": "match"}
    assert kept["entry"][1]["resource"] == entries[1]["resource"]
    observation = kept["entry"][2]["resource"]
    assert set(observation) == {"resourceType", "id", "valueQuantity"}
    assert kept["total"] == 4
    assert "Bundle.entry[*](Condition)" in outcome.withheld
    assert "Observation.code" in outcome.withheld
    assert outcome.released == (
        "AllergyIntolerance",
        "Bundle.entry[*].search",
        "Observation.valueQuantity",
        "Patient.birthDate",
        "Patient.name",
    )


def test_entry_members_are_an_allow_list_too() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"fullUrl": "u", "search": {"mode": "match"}, "request": {"url": "x"}}],
    }
    outcome = fhir(bundle, "Patient.name")
    assert outcome.document["entry"] == [{"fullUrl": "u"}]
    assert outcome.withheld == ("Bundle.entry[*].request", "Bundle.entry[*].search")


def test_contained_resources_follow_their_own_rules() -> None:
    request = load("MedicationRequest-medrx0301.json")
    outcome = fhir(request, "MedicationRequest.status", "Medication.code")
    kept = outcome.document
    assert set(kept) == {"resourceType", "id", "contained", "status"}
    assert kept["contained"] == [
        {"resourceType": "Medication", "id": "med0310", "code": request["contained"][0]["code"]}
    ]
    assert "MedicationRequest.contained[*](Provenance)" in outcome.withheld


def test_contained_resource_inside_a_whole_resource_is_still_filtered() -> None:
    resource = {
        "resourceType": "AllergyIntolerance",
        "note": [{"text": "x"}],
        "contained": [{"resourceType": "Patient", "id": "p", "telecom": [{"value": "1"}]}],
    }
    outcome = fhir(resource, "AllergyIntolerance", "Patient.name")
    assert outcome.document["contained"] == [{"resourceType": "Patient", "id": "p"}]
    assert outcome.document["note"] == [{"text": "x"}]
    assert "Patient.telecom" in outcome.withheld


def test_top_level_resource_of_unreleased_type_keeps_structure_only() -> None:
    outcome = fhir(load("Condition-example.json"), "Patient.name")
    assert outcome.document == {"resourceType": "Condition", "id": "example"}
    assert "Condition.code" in outcome.withheld


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
    assert outcome.document["entry"] == []
    assert outcome.withheld == ("Bundle.entry[*]",)


def test_malformed_contained_is_removed() -> None:
    resource = {"resourceType": "Patient", "contained": [1, {"resourceType": "Bundle"}]}
    outcome = fhir(resource, "Patient", "Bundle")
    assert outcome.document["contained"] == []
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
        body, content_type=content_type, declaration=DECLARATION, released_fields=CONSENTED
    )
    kept = json.loads(result.body)
    assert "telecom" not in kept
    assert "address" not in kept
    assert kept["name"] == json.loads(body)["name"]
    assert "Patient.telecom" in result.withheld

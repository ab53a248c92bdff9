"""Whose data a FHIR resource holds comes from the resource, and only the named subject's
data is released: mixed-patient Bundles, every usual patient element, no subject."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from certs.identifiers import ServiceId
from policies.declarations import ServiceDeclaration
from policies.errors import DocumentWithheld, ReleaseRefused, ResourceWithheld
from policies.filter import FhirPath, SubjectRules, filter_body, filter_fhir_json
from tests.unit.policies.fhir_validation import assert_valid_r4

DATA = Path(__file__).parents[2] / "data" / "fhir"
WHOLE = ("Patient", "Observation", "AllergyIntolerance", "Consent", "Condition", "Encounter")


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def fhir(
    document: object,
    *released: str,
    subject: str = "example",
    impersonal: tuple[str, ...] = (),
    declared: tuple[str, ...] = (),
) -> Any:
    return filter_fhir_json(
        document,
        [FhirPath.parse(text) for text in released],
        subject=subject,
        subject_rules=SubjectRules([FhirPath.parse(d) for d in declared], impersonal),
    )


def about(name: str, patient: str, element: str = "subject") -> dict[str, Any]:
    resource = load(name)
    resource[element] = {"reference": f"Patient/{patient}"}
    resource["id"] = f"{resource['id']}-{patient}"
    return dict(resource)


def mixed_resources() -> list[dict[str, Any]]:
    """Two patients' records and a third person's consent, as a careless backend mixes them."""
    return [
        load("Patient-example.json"),
        load("Patient-pat1.json"),
        about("Observation-example.json", "example"),
        about("Observation-example.json", "pat1"),
        about("AllergyIntolerance-example.json", "example", "patient"),
        about("AllergyIntolerance-example.json", "pat1", "patient"),
        load("Consent-consent-example-basic.json"),  # about Patient/f001
    ]


def bundle(kind: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for resource in resources:
        entry: dict[str, Any] = {
            "fullUrl": f"https://b.example/fhir/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
        }
        if kind == "transaction":
            url = f"{resource['resourceType']}/{resource['id']}"
            entry["request"] = {"method": "PUT", "url": url}
        if kind == "searchset":
            entry["search"] = {"mode": "match"}
        entries.append(entry)
    document: dict[str, Any] = {"resourceType": "Bundle", "type": kind, "entry": entries}
    if kind == "searchset":
        document["total"] = len(entries)
    return document


@pytest.mark.parametrize("kind", ["searchset", "transaction", "collection", "batch-response"])
def test_a_mixed_bundle_releases_only_the_named_subjects_resources(kind: str) -> None:
    original = bundle(kind, mixed_resources())
    outcome = fhir(
        original, *WHOLE, "Bundle.entry[*].search", "Bundle.entry[*].request"
    )
    kept = outcome.document
    released = [entry["resource"] for entry in kept["entry"]]
    assert [(r["resourceType"], r["id"]) for r in released] == [
        ("Patient", "example"),
        ("Observation", "example-example"),
        ("AllergyIntolerance", "example-example"),
    ]
    text = json.dumps(kept)
    assert "pat1" not in text
    assert "f001" not in text
    assert "Pat1" not in text
    assert "Bundle.entry[*](Patient):other-subject" in outcome.withheld
    assert "Bundle.entry[*](Observation):other-subject" in outcome.withheld
    assert "Bundle.entry[*](Consent):other-subject" in outcome.withheld
    # Whose data was withheld is known to the node (audit), not shown in paths.
    assert outcome.subjects == ("example",)
    assert outcome.withheld_subjects == ("f001", "pat1")
    assert not any("pat1" in path or "f001" in path for path in outcome.withheld)
    if kind == "searchset":
        assert kept["total"] == 3
    assert_valid_r4(kept)


def test_the_named_subject_only_narrows() -> None:
    """Another subject named gets the other patient's resources only, never more."""
    original = bundle("searchset", mixed_resources())
    outcome = fhir(original, *WHOLE, subject="pat1")
    ids = [entry["resource"]["id"] for entry in outcome.document["entry"]]
    assert ids == ["pat1", "example-pat1", "example-pat1"]
    assert outcome.withheld_subjects == ("example", "f001")
    outcome = fhir(original, *WHOLE, subject="nobody")
    assert "entry" not in outcome.document
    assert outcome.document["total"] == 0


def test_transaction_references_resolve_through_urn_full_urls() -> None:
    patient_a = {"resourceType": "Patient", "id": "example", "name": [{"family": "A"}]}
    patient_b = {"resourceType": "Patient", "id": "pat1", "name": [{"family": "B"}]}
    unnamed = {"resourceType": "Patient", "name": [{"family": "C"}]}  # POST: no id yet
    urn = "urn:uuid:00000000-0000-4000-8000-0000000000{}".format
    urn_a, urn_b, urn_c = urn("0a"), urn("0b"), urn("0c")

    def observation(urn: str) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "weight"},
            "subject": {"reference": urn},
        }

    entries = [
        {"fullUrl": urn_a, "resource": patient_a},
        {"fullUrl": urn_b, "resource": patient_b},
        {"fullUrl": urn_c, "resource": unnamed},
        {"fullUrl": urn("1a"), "resource": observation(urn_a)},
        {"fullUrl": urn("1b"), "resource": observation(urn_b)},
        {"fullUrl": urn("1c"), "resource": observation(urn_c)},
    ]
    for entry in entries:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    document = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    outcome = fhir(document, *WHOLE, "Bundle.entry[*].request")
    kept = outcome.document["entry"]
    assert [e["fullUrl"] for e in kept] == [urn_a, entries[3]["fullUrl"]]
    assert kept[1]["resource"]["subject"] == {"reference": urn_a}
    assert "Bundle.entry[*](Patient):unknown-subject" in outcome.withheld
    assert "Bundle.entry[*](Observation):unknown-subject" in outcome.withheld
    assert "Bundle.entry[*](Observation):other-subject" in outcome.withheld
    assert_valid_r4(outcome.document)


def test_a_document_about_several_people_is_refused_never_cut() -> None:
    document = bundle("document", mixed_resources())
    with pytest.raises(DocumentWithheld):
        fhir(document, *WHOLE)


def test_a_document_released_in_full_is_unchanged() -> None:
    composition = {
        "resourceType": "Composition",
        "id": "doc",
        "status": "final",
        "type": {"text": "summary"},
        "subject": {"reference": "Patient/example"},
        "date": "2024-01-01",
        "author": [{"display": "Dr B"}],
        "title": "Summary",
    }
    document = bundle("document", [composition, load("Patient-example.json")])
    document["identifier"] = {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:1"}
    document["timestamp"] = "2024-01-01T00:00:00Z"
    document["id"] = "doc-bundle"
    released = ("Composition", "Patient", "Bundle.identifier", "Bundle.timestamp")
    outcome = fhir(copy.deepcopy(document), *released)
    assert outcome.document == document
    assert outcome.withheld == ()
    assert_valid_r4(outcome.document)
    # One element short of whole, and nothing is released.
    with pytest.raises(DocumentWithheld):
        fhir(copy.deepcopy(document), *released[:-1])
    # Nested in a collection, the document goes as one entry.
    outer = bundle("collection", [document, load("Patient-example.json")])
    outcome = fhir(outer, *released[:-1])
    assert [e["resource"]["resourceType"] for e in outcome.document["entry"]] == ["Patient"]
    assert "Bundle.entry[*](Bundle):document" in outcome.withheld


USUAL_ELEMENTS = [
    ("Observation", "subject", {"status": "final", "code": {"text": "x"}}),
    ("Condition", "subject", {}),
    ("Encounter", "subject", {"status": "finished", "class": {"code": "AMB"}}),
    ("AllergyIntolerance", "patient", {}),
    ("Consent", "patient",
     {"status": "active", "scope": {"text": "x"}, "category": [{"text": "x"}]}),
    ("Coverage", "beneficiary", {"status": "active", "payor": [{"display": "Insurer"}]}),
    ("Immunization", "patient", {"status": "completed", "vaccineCode": {"text": "x"},
                                 "occurrenceString": "2020"}),
    ("MedicationRequest", "subject", {"status": "active", "intent": "order",
                                      "medicationCodeableConcept": {"text": "x"}}),
    ("DiagnosticReport", "subject", {"status": "final", "code": {"text": "x"}}),
    ("Procedure", "subject", {"status": "completed"}),
    ("EpisodeOfCare", "patient", {"status": "active"}),
    ("Flag", "subject", {"status": "active", "code": {"text": "x"}}),
]


@pytest.mark.parametrize(("resource_type", "element", "required"), USUAL_ELEMENTS)
@pytest.mark.parametrize(
    "reference",
    [
        "Patient/{p}",
        "https://b.example/fhir/Patient/{p}",
        "https://b.example/fhir/Patient/{p}/_history/3",
    ],
)
def test_each_usual_patient_element_names_the_subject(
    resource_type: str, element: str, required: dict[str, Any], reference: str
) -> None:
    def resource(patient: str) -> dict[str, Any]:
        return {
            "resourceType": resource_type,
            "id": "r1",
            element: {"reference": reference.format(p=patient), "display": "Name of patient"},
            "text": {
                "status": "generated",
                "div": f'<div xmlns="http://www.w3.org/1999/xhtml">about {patient}</div>',
            },
            **required,
        }

    outcome = fhir(resource("example"), resource_type)
    assert outcome.document == resource("example")
    assert outcome.subjects == ("example",)
    assert_valid_r4(outcome.document)
    with pytest.raises(ResourceWithheld, match="another data subject"):
        fhir(resource("pat1"), resource_type)
    # Without consent for the element, it stays as the reference the consumer named.
    reduced = fhir(resource("example"), *(f"{resource_type}.{k}" for k in required))
    assert reduced.document[element] == {"reference": "Patient/example"}
    assert f"{resource_type}.{element}" in reduced.withheld
    assert "Name of patient" not in json.dumps(reduced.document)


@pytest.mark.parametrize(
    "subject",
    [
        {"reference": "Group/g1"},
        {"reference": "Patient?identifier=http://ssn|123-45-6789"},
        {"reference": "#contained-patient"},
        {"identifier": {"system": "http://ssn", "value": "123-45-6789"}},
        {"display": "example"},
        [],
    ],
)
def test_a_subject_that_names_no_patient_is_unknown(subject: object) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": subject,
    }
    with pytest.raises(ResourceWithheld, match="cannot be established"):
        fhir(observation, "Observation")
    outcome = fhir(bundle("collection", [dict(observation, id="o")]), "Observation")
    assert "entry" not in outcome.document
    assert outcome.withheld == ("Bundle.entry[*](Observation):unknown-subject",)


def test_a_resource_without_a_subject_needs_an_impersonal_declaration() -> None:
    organization = {"resourceType": "Organization", "id": "o1", "name": "Hospital B"}
    contents = bundle("collection", [load("Patient-example.json"), organization])
    outcome = fhir(contents, "Patient", "Organization")
    assert [e["resource"]["resourceType"] for e in outcome.document["entry"]] == ["Patient"]
    assert "Bundle.entry[*](Organization):unknown-subject" in outcome.withheld
    outcome = fhir(contents, "Patient", "Organization", impersonal=("Organization",))
    assert outcome.document["entry"][1]["resource"] == organization
    # An impersonal type is still filtered by consent.
    outcome = fhir(contents, "Patient", impersonal=("Organization",))
    assert "Bundle.entry[*](Organization)" in outcome.withheld
    with pytest.raises(ResourceWithheld):
        fhir(organization, "Organization")
    assert fhir(organization, "Organization", impersonal=("*",)).document == organization


def test_an_impersonal_type_that_names_a_patient_is_still_theirs() -> None:
    observation = about("Observation-example.json", "pat1")
    with pytest.raises(ResourceWithheld, match="another data subject"):
        fhir(observation, "Observation", impersonal=("Observation",))


def test_a_declaration_replaces_a_types_subject_elements() -> None:
    observation = about("Observation-example.json", "pat1")
    observation["focus"] = [{"reference": "Patient/example"}]
    outcome = fhir(observation, "Observation", declared=("Observation.focus",))
    assert outcome.subjects == ("example",)
    with pytest.raises(ResourceWithheld):
        fhir(observation, "Observation")


def test_a_patient_other_than_the_one_in_the_path_is_refused() -> None:
    declaration = ServiceDeclaration(
        ServiceId.parse("EE/GOV/B/records/patients"),
        media_types=("application/fhir+json",),
        fields=("Patient.name",),
    )
    body = (DATA / "Patient-pat1.json").read_bytes()
    with pytest.raises(ReleaseRefused) as info:
        filter_body(
            body,
            content_type="application/fhir+json",
            declaration=declaration,
            subject="pat2",
            released_fields=("Patient.name",),
        )
    assert info.value.code == "server.serverproxy.resource_withheld"
    assert "pat1" not in str(info.value)


def test_contained_resources_have_their_own_subject() -> None:
    observation = about("Observation-example.json", "example")
    observation["contained"] = [
        about("Observation-example.json", "pat1") | {"id": "c1"},
        about("Observation-example.json", "example") | {"id": "c2"},
        {"resourceType": "Medication", "id": "m", "code": {"text": "x"}},
    ]
    outcome = fhir(observation, "Observation", "Medication", impersonal=("Medication",))
    assert [c["id"] for c in outcome.document["contained"]] == ["c2", "m"]
    assert "Observation.contained[*](Observation):other-subject" in outcome.withheld
    assert outcome.withheld_subjects == ("pat1",)

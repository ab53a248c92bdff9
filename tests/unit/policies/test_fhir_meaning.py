"""What the filter releases still means what FHIR says: totals, redaction labels,
required and modifier elements, valid R4; and nothing leaves through meta, extensions
or URLs without consent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policies._fhir import FhirRules, filter_fhir
from policies.errors import ResourceWithheld
from policies.filter import FhirPath, SubjectRules, filter_fhir_json
from tests.unit.policies.fhir_validation import assert_valid_r4

DATA = Path(__file__).parents[2] / "data" / "fhir"
SHARED = Path(__file__).parents[4] / "shared" / "data" / "fhir"
REDACTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "REDACTED",
    "display": "redacted",
}
SSN = "123-45-6789"


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


def searchset(resources: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "entry": [
            {
                "fullUrl": f"Patient/{r['id']}" if r["resourceType"] == "Patient" else
                f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "include" if r["resourceType"] == "Organization" else "match"},
            }
            for r in resources
        ],
    }


# -- Bundle.total ---------------------------------------------------------------------


def test_total_counts_only_released_matches() -> None:
    patients = [load("Patient-example.json"), load("Patient-pat1.json"), load("Patient-pat2.json")]
    organization = {"resourceType": "Organization", "id": "o", "name": "B"}
    outcome = fhir(
        searchset([*patients, organization], total=3),
        "Patient",
        "Organization",
        "Bundle.entry[*].search",
        impersonal=("Organization",),
    )
    assert outcome.document["total"] == 1  # includes are not counted, before or after
    assert len(outcome.document["entry"]) == 2
    assert outcome.document["meta"]["security"] == [REDACTED]
    assert_valid_r4(outcome.document)


def test_total_of_a_page_is_removed_not_guessed() -> None:
    page = searchset([load("Patient-example.json"), load("Patient-pat1.json")], total=40)
    outcome = fhir(page, "Patient", "Bundle.entry[*].search")
    assert "total" not in outcome.document
    assert "Bundle.total" in outcome.withheld
    # Even a page on which nothing was withheld: other pages may hold others' matches.
    page = searchset([load("Patient-example.json")], total=40)
    assert "total" not in fhir(page, "Patient").document


def test_total_with_nothing_withheld_is_kept() -> None:
    complete = searchset([load("Patient-example.json")], total=1)
    outcome = fhir(complete, "Patient", "Bundle.entry[*].search")
    assert outcome.document == complete
    assert outcome.withheld == ()


# -- REDACTED ---------------------------------------------------------------------------


def test_redaction_label_marks_only_incomplete_resources() -> None:
    patient = load("Patient-mom.json")
    patient["id"] = "example"
    whole = fhir(patient, "Patient")
    assert whole.document == patient
    partial = fhir(patient, "Patient.name", "Patient.meta")
    labels = partial.document["meta"]["security"]
    assert labels.count(REDACTED) == 1
    assert partial.document["meta"]["lastUpdated"] == patient["meta"]["lastUpdated"]
    # A label already there is not added twice.
    again = fhir(partial.document, "Patient.name", "Patient.meta")
    assert again.document["meta"]["security"].count(REDACTED) == 1


# -- meta, extensions, modifiers --------------------------------------------------------


def hostile_patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "example",
        "meta": {
            "lastUpdated": "2024-01-01T00:00:00Z",
            "tag": [{"system": "http://example.org/diagnosis", "code": "HIV"}],
            "extension": [{"url": "http://example.org/ssn", "valueString": SSN}],
        },
        "extension": [{"url": "http://example.org/ssn", "valueString": SSN}],
        "name": [{"family": "Chalmers"}],
    }


def test_meta_and_extensions_are_fields_like_any_other() -> None:
    outcome = fhir(hostile_patient(), "Patient.name")
    text = json.dumps(outcome.document)
    assert "HIV" not in text
    assert SSN not in text
    assert "lastUpdated" not in text
    assert outcome.document["meta"] == {"security": [REDACTED]}
    assert {"Patient.meta", "Patient.extension"} <= set(outcome.withheld)
    declared = fhir(hostile_patient(), "Patient.name", "Patient.meta.lastUpdated")
    assert declared.document["meta"] == {
        "lastUpdated": "2024-01-01T00:00:00Z",
        "security": [REDACTED],
    }
    assert "Patient.meta.tag" in declared.withheld


def test_meta_of_bundles_and_entries_is_filtered_too() -> None:
    patient = hostile_patient()
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "meta": {"tag": [{"code": "HIV"}]},
        "entry": [{"fullUrl": "Patient/example", "resource": patient}],
    }
    text = json.dumps(fhir(bundle, "Patient.name").document)
    assert "HIV" not in text
    assert SSN not in text


@pytest.mark.parametrize(
    "modifier",
    [
        {"modifierExtension": [{"url": "http://example.org/not-him", "valueBoolean": True}]},
        {"implicitRules": "http://example.org/rules"},
    ],
)
def test_a_withheld_modifier_withholds_the_resource(modifier: dict[str, Any]) -> None:
    patient = {**hostile_patient(), **modifier}
    with pytest.raises(ResourceWithheld, match="modifier"):
        fhir(patient, "Patient.name")
    outcome = fhir(
        {"resourceType": "Bundle", "type": "collection",
         "entry": [{"fullUrl": "Patient/example", "resource": patient}]},
        "Patient.name",
    )
    assert outcome.withheld == ("Bundle.entry[*](Patient):modifier",)
    released = fhir(patient, "Patient.name", "Patient." + next(iter(modifier)))
    assert next(iter(modifier)) in released.document


def test_a_resource_missing_a_required_element_is_withheld() -> None:
    observation = load("Observation-example.json")
    with pytest.raises(ResourceWithheld, match="requires"):
        fhir(observation, "Observation.valueQuantity")
    outcome = fhir(
        {"resourceType": "Bundle", "type": "collection",
         "entry": [{"fullUrl": "Observation/example", "resource": observation}]},
        "Observation.valueQuantity",
    )
    assert outcome.withheld == ("Bundle.entry[*](Observation):incomplete",)
    kept = fhir(observation, "Observation.valueQuantity", "Observation.status", "Observation.code")
    assert_valid_r4(kept.document)


# -- URLs -------------------------------------------------------------------------------


def test_bundle_links_are_consent_governed() -> None:
    bundle = searchset([load("Patient-example.json")], total=1)
    bundle["link"] = [{"relation": "self", "url": f"https://b.example/Patient?identifier={SSN}"}]
    outcome = fhir(bundle, "Patient")
    assert "link" not in outcome.document
    assert "Bundle.link" in outcome.withheld
    assert fhir(bundle, "Patient", "Bundle.link").document["link"] == bundle["link"]


@pytest.mark.parametrize(
    "full_url",
    [
        f"https://b.example/fhir/Patient?identifier={SSN}",
        f"https://b.example/fhir/Patient/example?ssn={SSN}",
        f"https://b.example/fhir/Patient/{SSN}",  # not the entry's own id
        "urn:uuid:not-a-uuid",
        7,
    ],
)
def test_full_urls_carrying_data_are_replaced(full_url: object) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": full_url, "resource": load("Patient-example.json")}],
    }
    rules = FhirRules([FhirPath.parse("Patient")])
    first = filter_fhir(bundle, rules, subject="example", url_key=b"k" * 32)
    replaced = first.document["entry"][0]["fullUrl"]  # type: ignore[index]
    assert isinstance(replaced, str)
    assert replaced.startswith("urn:uuid:")
    assert SSN not in json.dumps(first.document)
    assert "Bundle.entry[*].fullUrl" in first.withheld
    # Stable within a response, unlinkable across responses (a fresh key each time).
    again = filter_fhir(bundle, rules, subject="example", url_key=b"k" * 32)
    assert again.document == first.document
    other = fhir(bundle, "Patient").document["entry"][0]["fullUrl"]
    assert other != replaced
    assert_valid_r4(first.document)


@pytest.mark.parametrize(
    "full_url",
    [
        "https://b.example/fhir/Patient/example",
        "Patient/example",
        "urn:uuid:9a7b1c2e-0d3f-4e5a-8b6c-7d8e9f0a1b2c",
        "urn:oid:1.2.3.4",
    ],
)
def test_own_addresses_and_urns_are_kept(full_url: str) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": full_url, "resource": load("Patient-example.json")}],
    }
    assert fhir(bundle, "Patient").document == bundle


# -- valid R4 for every example ---------------------------------------------------------


def _subject_of(resource: dict[str, Any]) -> str:
    """The patient an example is about (the first one, for a Bundle)."""
    if resource["resourceType"] == "Patient":
        return str(resource["id"])
    for key in ("subject", "patient", "beneficiary"):
        value = resource.get(key)
        if isinstance(value, dict) and "reference" in value:
            return str(value["reference"]).rsplit("/", 1)[-1]
    for entry in resource.get("entry", ()):
        if "resource" in entry:
            return _subject_of(entry["resource"])
    return "nobody"


def _examples() -> list[Path]:
    found = {path.name: path for path in sorted(DATA.glob("*.json"))}
    if SHARED.is_dir():
        for path in sorted(SHARED.glob("*.json")):
            found.setdefault(path.name, path)
    return list(found.values())


CONSENT_SETS = [
    (),
    ("Patient.name", "Patient.birthDate", "AllergyIntolerance"),
    ("Patient", "Observation", "Condition", "Encounter", "MedicationRequest", "Consent",
     "AllergyIntolerance", "DiagnosticReport", "ServiceRequest", "Medication",
     "Bundle.entry[*].search", "Bundle.entry[*].response"),
    ("Patient.name", "Patient.meta", "Observation.status", "Observation.code",
     "Consent.status", "Consent.scope", "Consent.category"),
]


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
@pytest.mark.parametrize("released", CONSENT_SETS, ids=["public", "consented", "all", "some"])
def test_every_example_filters_to_valid_r4(path: Path, released: tuple[str, ...]) -> None:
    document = json.loads(path.read_text())
    assert_valid_r4(document)
    try:
        outcome = fhir(
            document, *released, subject=_subject_of(document), impersonal=("Medication",)
        )
    except ResourceWithheld:
        return  # nothing is released: nothing to be invalid
    assert_valid_r4(outcome.document)
    if not outcome.withheld:
        assert outcome.document == document

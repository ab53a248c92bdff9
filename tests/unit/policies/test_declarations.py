from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import quote

import pytest

from certs.identifiers import ServiceId, SubsystemId
from policies.declarations import PurposeDeclaration, ServiceDeclaration, SubjectLocator
from policies.errors import DeclarationError, SubjectRequired

SERVICE = ServiceId.parse("EE/GOV/B/records/patients")


def values(mapping: dict[str, list[str]]) -> Callable[[str], Sequence[str]]:
    def get(name: str) -> Sequence[str]:
        return mapping.get(name, [])

    return get


def locate(
    locator: SubjectLocator,
    *,
    headers: dict[str, list[str]] | None = None,
    segments: Sequence[str] = (),
    query: dict[str, list[str]] | None = None,
) -> str:
    path = "".join(f"/{quote(segment, safe='')}" for segment in segments)
    return locator.locate(headers=values(headers or {}), path=path, query=values(query or {}))


def test_header_locator_default_name() -> None:
    locator = SubjectLocator.header()
    assert locator.name == "Renkei-Subject"
    assert locate(locator, headers={"Renkei-Subject": ["p1"]}) == "p1"


@pytest.mark.parametrize("given", [[], ["a", "b"], [""], ["a\r\nb"], ["x" * 256]])
def test_header_locator_refuses_missing_ambiguous_or_bad(given: list[str]) -> None:
    with pytest.raises(SubjectRequired) as info:
        locate(SubjectLocator.header(), headers={"Renkei-Subject": given})
    assert info.value.code == "server.serverproxy.subject_required"


def test_path_locator() -> None:
    locator = SubjectLocator.path("/Patient/{subject}")
    assert locate(locator, segments=("Patient", "p1")) == "p1"
    for segments in [("Patient",), ("Patient", "p1", "x"), ("Observation", "p1"), ("Patient", "")]:
        with pytest.raises(SubjectRequired):
            locate(locator, segments=segments)


def test_path_locator_decodes_and_refuses_ambiguous_paths() -> None:
    locator = SubjectLocator.path("/Patient/{subject}")
    assert locator.locate(headers=values({}), path="/Patient/a%20b", query=values({})) == "a b"
    for path in ["/Patient/a%2Fb", "/Patient/..", "Patient/x", "/Patient/%0a"]:
        with pytest.raises(SubjectRequired):
            locator.locate(headers=values({}), path=path, query=values({}))


def test_path_locator_with_rest() -> None:
    locator = SubjectLocator.path("/Patient/{subject}/**")
    assert locate(locator, segments=("Patient", "p1")) == "p1"
    assert locate(locator, segments=("Patient", "p1", "$everything")) == "p1"
    with pytest.raises(SubjectRequired):
        locate(locator, segments=("Patient",))


def test_query_locator() -> None:
    locator = SubjectLocator.query("patient")
    assert locate(locator, query={"patient": ["p1"]}) == "p1"
    with pytest.raises(SubjectRequired):
        locate(locator, query={"patient": ["p1", "p2"]})


@pytest.mark.parametrize(
    "make",
    [
        lambda: SubjectLocator.header("bad name"),
        lambda: SubjectLocator.query("a&b"),
        lambda: SubjectLocator.path("Patient/{subject}"),
        lambda: SubjectLocator.path("/Patient/x{subject}"),
        lambda: SubjectLocator.path("/{subject}/{subject}"),
        lambda: SubjectLocator.path("/Patient"),
        lambda: SubjectLocator.path("/a//{subject}"),
        lambda: SubjectLocator.path("/**/{subject}"),
        lambda: SubjectLocator.path("/{subject}/x*"),
        lambda: SubjectLocator("cookie", "x"),  # type: ignore[arg-type]
    ],
)
def test_malformed_locators_are_refused(make: object) -> None:
    with pytest.raises(DeclarationError):
        make()  # type: ignore[operator]


def test_valid_declaration() -> None:
    declaration = ServiceDeclaration(
        SERVICE,
        media_types=("application/fhir+json",),
        fields=("Patient.name", "AllergyIntolerance"),
        public_fields=("Patient.name",),
        subject=SubjectLocator.path("/Patient/{subject}"),
    )
    assert declaration.is_fhir


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"public_fields": ("telecom",)}, "not among its fields"),
        ({"media_types": ()}, "no media type"),
        ({"media_types": ("application/json; charset=utf-8",)}, "without parameters"),
        ({"media_types": ("Application/JSON",)}, "lower-case"),
        ({"fields": ("name", "name")}, "twice"),
        ({"fields": ("name..x",)}, "malformed"),
        ({"fields": (), "public_fields": ()}, "declares no fields"),
        ({"fields": ["name"]}, "tuple of strings"),
        ({"media_types": ("application/fhir+json",)}, "resource type"),
    ],
)
def test_invalid_declarations(changes: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "service": SERVICE,
        "media_types": ("application/json",),
        "fields": ("name", "address"),
        "public_fields": ("name",),
    }
    values.update(changes)
    with pytest.raises(DeclarationError, match=message):
        ServiceDeclaration(**values)  # type: ignore[arg-type]


def test_purpose_declaration() -> None:
    client = SubsystemId.parse("EE/GOV/A/clinic")
    assert PurposeDeclaration(client, "treatment", "Treating the patient").code == "treatment"
    with pytest.raises(DeclarationError):
        PurposeDeclaration(client, "bad code", "x")
    with pytest.raises(DeclarationError):
        PurposeDeclaration(client, "treatment", "  ")


def fhir_declaration(**changes: object) -> ServiceDeclaration:
    values: dict[str, object] = {
        "media_types": ("application/fhir+json",),
        "fields": ("Patient.name",),
    }
    values.update(changes)
    return ServiceDeclaration(SERVICE, **values)  # type: ignore[arg-type]


def test_subject_rules_are_declared() -> None:
    declaration = fhir_declaration(
        subject_fields=("Observation.focus",), impersonal=("Organization",),
        response_headers=("Last-Modified",),
    )
    assert declaration.carries_personal_data
    assert not fhir_declaration(impersonal=("*",)).carries_personal_data


@pytest.mark.parametrize(
    "changes",
    [
        {"subject_fields": ("Patient.id",)},  # a Patient's subject is its id, always
        {"subject_fields": ("Observation",)},  # an element must be named
        {"subject_fields": ("Bundle.entry",)},
        {"subject_fields": ("Observation.subject", "Observation.subject")},
        {"impersonal": ("Patient",)},
        {"impersonal": ("Bundle",)},
        {"impersonal": ("organization",)},
        {"response_headers": ("Set-Cookie",)},
        {"response_headers": ("set-cookie2",)},
        {"response_headers": ("Bad Header",)},
    ],
)
def test_subject_rules_that_would_widen_or_confuse_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(DeclarationError):
        fhir_declaration(**changes)


@pytest.mark.parametrize(
    "changes", [{"impersonal": ("Organization",)}, {"subject_fields": ("*",)}]
)
def test_plain_json_subject_rules(changes: dict[str, object]) -> None:
    with pytest.raises(DeclarationError):
        ServiceDeclaration(
            SERVICE, media_types=("application/json",), fields=("name",), **changes  # type: ignore[arg-type]
        )

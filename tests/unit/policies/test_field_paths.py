from __future__ import annotations

import pytest

from policies.errors import DeclarationError
from policies.filter import FhirPath, FieldPath


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("*", ()),
        ("name", ("name",)),
        ("telecom[*]", ("telecom", "[*]")),
        ("entry[*].resource.code", ("entry", "[*]", "resource", "code")),
        ("a.b[*][*].c", ("a", "b", "[*]", "[*]", "c")),
        ("[*].id", ("[*]", "id")),
        ("_birthDate", ("_birthDate",)),
        ("x-y:z$@", ("x-y:z$@",)),
    ],
)
def test_valid_paths_parse_and_round_trip(text: str, steps: tuple[str, ...]) -> None:
    path = FieldPath.parse(text)
    assert path.steps == steps
    assert str(path) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "a.",
        ".a",
        "a..b",
        "a.*",
        "a[*]b",
        "a[0]",
        "a[]",
        "a.[*]",
        "**",
        "a b",
        "a,b",
        "a\n",
        "a*",
        "é",
        "a" * 1025,
    ],
)
def test_malformed_paths_are_refused(text: str) -> None:
    with pytest.raises(DeclarationError) as info:
        FieldPath.parse(text)
    assert info.value.code == "policies.declaration_invalid"


def test_non_string_path_is_refused() -> None:
    with pytest.raises(DeclarationError):
        FieldPath.parse(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "resource_type", "path"),
    [
        ("Patient", "Patient", None),
        ("Patient.name", "Patient", "name"),
        ("Bundle.entry[*].search", "Bundle", "entry[*].search"),
    ],
)
def test_fhir_paths(text: str, resource_type: str, path: str | None) -> None:
    parsed = FhirPath.parse(text)
    assert parsed.resource_type == resource_type
    assert (str(parsed.path) if parsed.path else None) == path
    assert str(parsed) == text


@pytest.mark.parametrize("text", ["", "patient.name", "Patient.", "Patient.*", "Patient.[*]", "*"])
def test_malformed_fhir_paths_are_refused(text: str) -> None:
    with pytest.raises(DeclarationError):
        FhirPath.parse(text)

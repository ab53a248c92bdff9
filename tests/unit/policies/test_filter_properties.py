"""Property-based tests of the field filter: nothing outside the allowed paths survives,
everything allowed is kept, and the result matches a naive reference filter."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from certs.identifiers import ServiceId
from policies._fhir import REDACTED
from policies._jsonparse import check_depth
from policies.declarations import ServiceDeclaration
from policies.errors import BodyTooDeep
from policies.filter import (
    FhirPath,
    FieldPath,
    SubjectRules,
    filter_body,
    filter_fhir_json,
    filter_json,
)

ITEMS = "[*]"
KEYS = st.sampled_from(["a", "b", "c", "name", "telecom"])
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(alphabet='ab"\\[]{}', max_size=6),
)
DOCUMENTS = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=30,
)
STEPS = st.lists(st.one_of(KEYS, st.just(ITEMS)), min_size=1, max_size=4).map(tuple)
ALLOWED = st.lists(STEPS, max_size=4)

Steps = tuple[str, ...]
DROP = object()


def covered(location: Steps, allowed: list[Steps]) -> bool:
    return any(location[: len(path)] == path for path in allowed)


def continues(location: Steps, allowed: list[Steps], step_is_items: bool) -> bool:
    return any(
        len(path) > len(location)
        and path[: len(location)] == location
        and (path[len(location)] == ITEMS) == step_is_items
        for path in allowed
    )


def render(location: Steps) -> str:
    return str(FieldPath(location)) if location else "*"


def reference(value: Any, location: Steps, allowed: list[Steps], withheld: set[str]) -> Any:
    """The obvious, slow definition of the filter."""
    if covered(location, allowed):
        return value
    if isinstance(value, dict) and continues(location, allowed, step_is_items=False):
        kept = {}
        for key, member in value.items():
            result = reference(member, (*location, key), allowed, withheld)
            if result is DROP:
                withheld.add(render((*location, key)))
            else:
                kept[key] = result
        return kept
    if isinstance(value, list) and continues(location, allowed, step_is_items=True):
        elements = []
        for element in value:
            result = reference(element, (*location, ITEMS), allowed, withheld)
            if result is DROP:
                withheld.add(render((*location, ITEMS)))
            else:
                elements.append(result)
        return elements
    return DROP


def locations(value: Any, location: Steps = ()) -> list[tuple[Steps, Any]]:
    found = [(location, value)]
    if isinstance(value, dict):
        for key, member in value.items():
            found += locations(member, (*location, key))
    elif isinstance(value, list):
        for element in value:
            found += locations(element, (*location, ITEMS))
    return found


def values_at(value: Any, steps: Steps) -> list[Any]:
    if not steps:
        return [value]
    step, rest = steps[0], steps[1:]
    if step == ITEMS:
        return (
            [v for element in value for v in values_at(element, rest)]
            if isinstance(value, list)
            else []
        )
    if isinstance(value, dict) and step in value:
        return values_at(value[step], rest)
    return []


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS, ALLOWED)
def test_nothing_outside_the_allowed_paths_survives(document: Any, allowed: list[Steps]) -> None:
    output = filter_json(document, [FieldPath(path) for path in allowed]).document
    for location, value in locations(output):
        if covered(location, allowed) or (location == () and value is None):
            continue  # (a withheld scalar document becomes null)
        # Not covered: only a container on the way to an allowed path may appear.
        assert isinstance(value, dict | list), (location, value)
        assert (
            any(len(path) > len(location) and path[: len(location)] == location for path in allowed)
            or location == ()
        )


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS, ALLOWED)
def test_everything_allowed_is_kept(document: Any, allowed: list[Steps]) -> None:
    output = filter_json(document, [FieldPath(path) for path in allowed]).document
    for path in allowed:
        assert values_at(output, path) == values_at(document, path)


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS, ALLOWED)
def test_matches_the_reference_filter(document: Any, allowed: list[Steps]) -> None:
    outcome = filter_json(document, [FieldPath(path) for path in allowed])
    withheld: set[str] = set()
    expected = reference(document, (), allowed, withheld)
    if expected is DROP:
        if isinstance(document, dict):
            expected = {}
            for key in document:
                withheld.add(render((key,)))
        elif isinstance(document, list):
            expected = []
            if document:
                withheld.add(ITEMS)
        else:
            expected = None
            withheld.add("*")
    assert outcome.document == expected
    assert outcome.withheld == tuple(sorted(withheld))


@settings(max_examples=100, deadline=None)
@given(DOCUMENTS, ALLOWED)
def test_filter_body_agrees_with_filter_json(document: Any, allowed: list[Steps]) -> None:
    declaration = ServiceDeclaration(
        ServiceId.parse("I/C/M/S/svc"),
        media_types=("application/json",),
        fields=tuple(sorted({render(path) for path in allowed})) or ("a",),
        impersonal=("*",),
    )
    fields = [render(path) for path in allowed]
    result = filter_body(
        json.dumps(document).encode(),
        content_type="application/json",
        declaration=declaration,
        subject="s",
        released_fields=fields,
    )
    expected = filter_json(document, [FieldPath(path) for path in allowed])
    assert json.loads(result.body) == expected.document
    assert result.withheld == expected.withheld


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS, st.integers(0, 8), st.booleans())
def test_depth_check_agrees_with_the_true_depth(document: Any, limit: int, indent: bool) -> None:
    body = json.dumps(document, indent=1 if indent else None).encode()
    try:
        check_depth(body, limit)
        refused = False
    except BodyTooDeep:
        refused = True
    assert refused == (depth(document) > limit)


RESOURCE_TYPES = st.sampled_from(["Patient", "Observation", "AllergyIntolerance"])
FHIR_KEYS = st.sampled_from(["name", "telecom", "address", "code", "note", "id", "meta"])


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": draw(RESOURCE_TYPES)}
    resource.update(draw(st.dictionaries(FHIR_KEYS, DOCUMENTS, max_size=5)))
    return resource


@settings(max_examples=200, deadline=None)
@given(
    st.lists(resources(), max_size=4),
    st.lists(st.tuples(RESOURCE_TYPES, st.one_of(st.none(), FHIR_KEYS)), max_size=4),
)
def test_fhir_bundles_release_only_declared_fields(
    entries: list[dict[str, Any]], allowed: list[tuple[str, str | None]]
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in entries],
    }
    paths = [FhirPath(t, None if f is None else FieldPath((f,))) for t, f in allowed]
    output: Any = filter_fhir_json(
        bundle, paths, subject="s", subject_rules=SubjectRules(impersonal=("*",))
    ).document
    released_types = {t for t, _ in allowed}
    whole = {t for t, f in allowed if f is None}
    for entry in output.get("entry", ()):
        resource = entry["resource"]
        resource_type = resource["resourceType"]
        assert resource_type in released_types
        originals = [e for e in entries if e["resourceType"] == resource_type]
        if resource_type in whole:
            assert resource in originals
            continue
        fields = {f for t, f in allowed if t == resource_type and f is not None}
        # Only declared fields, plus the node's own redaction label in meta.
        assert set(resource) <= {"resourceType", "id", "meta"} | fields
        if "meta" in resource and "meta" not in fields:
            assert resource["meta"] == {"security": [REDACTED]}
        assert any(
            all(
                key in original and resource[key] == original[key]
                for key in fields & set(resource) - {"meta"}
            )
            for original in originals
        )

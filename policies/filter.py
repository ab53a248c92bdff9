"""The response field filter: an allow-list over JSON, fail closed.

``filter_json`` keeps a member or element only if an allowed :class:`FieldPath` covers it
(a path covers everything beneath it) and reports every location it removed, normalised
(``telecom[*]``, ``address``, ``entry[*].resource.telecom``). ``filter_body`` is what a
provider node calls on a backend response: it parses strictly, picks plain-JSON or FHIR
mode from the media type, establishes from the data whose it is (only the request's
subject's data is released: ``_subjects``, ``_fhir``), filters and re-serialises, and
raises a :class:`FilterError` for anything it cannot filter safely, a
:class:`ReleaseRefused` for a body nothing of which may be released; it never hands back
the input unfiltered.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from policies._contentencoding import decode_content
from policies._fhir import FhirRules, Gate, filter_fhir
from policies._fieldpath import ITEMS, FhirPath, FieldPath, build_trie
from policies._jsonparse import FilterLimits, parse_json
from policies._mediatype import check_media_type
from policies._subjects import SubjectRules
from policies._walk import DROP, Walk
from policies.declarations import ServiceDeclaration
from policies.errors import BodyInvalid, DeclarationError, ResourceWithheld

__all__ = [
    "FhirPath",
    "FieldPath",
    "FilterLimits",
    "FilterOutcome",
    "FilteredBody",
    "SubjectRules",
    "check_json_subject",
    "decode_content",
    "filter_body",
    "filter_fhir_json",
    "filter_json",
]


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    """A filtered document, the normalised paths released and withheld (sorted), the
    data subjects of what was released and of what was withheld as someone else's."""

    document: object
    released: tuple[str, ...]
    withheld: tuple[str, ...]
    subjects: tuple[str, ...] = ()
    withheld_subjects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FilteredBody:
    """A filtered, re-serialised response body."""

    body: bytes
    content_type: str
    released: tuple[str, ...]
    withheld: tuple[str, ...]
    subjects: tuple[str, ...] = ()
    withheld_subjects: tuple[str, ...] = ()


def filter_json(document: object, allowed: Collection[FieldPath]) -> FilterOutcome:
    """Keep only what ``allowed`` covers; an empty ``allowed`` keeps nothing."""
    root = build_trie(allowed)
    walk = Walk()
    result = walk.walk(document, root)
    if result is DROP:
        # Nothing at the top is allowed: an empty container of the same kind stays, and
        # what it held is reported as withheld.
        if type(document) is dict:
            result = walk.members(document, root)
        elif type(document) is list:
            result = []
            if document:
                walk.withheld.add(ITEMS)
        else:
            result = None
            walk.withheld.add("*")
    released = {path or "*" for path in walk.released}
    return FilterOutcome(result, tuple(sorted(released)), tuple(sorted(walk.withheld)))


def filter_fhir_json(
    document: object,
    allowed: Collection[FhirPath],
    *,
    subject: str,
    subject_rules: SubjectRules | None = None,
    gate: Gate | None = None,
) -> FilterOutcome:
    """FHIR mode of :func:`filter_json` for the data subject ``subject`` (see ``_fhir``).

    Raises BodyInvalid if ``document`` is not a FHIR resource, ResourceWithheld or
    DocumentWithheld if nothing of it may be released."""
    result = filter_fhir(document, FhirRules(allowed, subject_rules, gate), subject=subject)
    return FilterOutcome(
        result.document,
        tuple(sorted(result.released)),
        tuple(sorted(result.withheld)),
        tuple(sorted(result.subjects)),
        tuple(sorted(result.withheld_subjects)),
    )


def check_json_subject(
    document: object, subject_fields: Collection[FieldPath], subject: str
) -> None:
    """A plain JSON document is one record: every value at ``subject_fields`` must be
    ``subject`` and there must be one, or nothing of it is released (ResourceWithheld)."""
    found: set[object] = set()
    for path in subject_fields:
        found.update(_scalars(document, path.steps))
    if not found:
        raise ResourceWithheld("the data subject of the response cannot be established")
    if found != {subject}:
        raise ResourceWithheld("the response is about another data subject than the request")


def _scalars(value: object, steps: tuple[str, ...]) -> list[object]:
    if not steps:
        if type(value) is list:
            return [item for element in value for item in _scalars(element, steps)]
        return [value if type(value) is str else repr(value)]
    step, rest = steps[0], steps[1:]
    if step == ITEMS:
        return [v for item in value for v in _scalars(item, rest)] if type(value) is list else []
    if type(value) is dict and step in value:
        return _scalars(value[step], rest)
    return []


def filter_body(
    body: bytes,
    *,
    content_type: str,
    declaration: ServiceDeclaration,
    subject: str,
    released_fields: Collection[str],
    limits: FilterLimits = FilterLimits(),  # noqa: B008 - immutable default
    gate: Gate | None = None,
) -> FilteredBody:
    """Filter a (decoded) response body of ``declaration``'s service to what ``subject``
    released (``released_fields``: that subject's consented fields and the public ones).

    Raises a FilterError subclass for a media type the declaration does not list, a
    charset other than UTF-8, invalid JSON, duplicate keys, or a body beyond ``limits``;
    a ReleaseRefused subclass for a body of which nothing may be released.
    Content-Encoding must already be undone (:func:`decode_content`).
    """
    check_media_type(content_type, declaration.media_types)
    document = parse_json(body, limits)
    try:
        if declaration.is_fhir:
            rules = SubjectRules(
                [FhirPath.parse(f) for f in declaration.subject_fields], declaration.impersonal
            )
            outcome = filter_fhir_json(
                document,
                [FhirPath.parse(f) for f in released_fields],
                subject=subject,
                subject_rules=rules,
                gate=gate,
            )
        else:
            subjects: tuple[str, ...] = ()
            if declaration.carries_personal_data:
                check_json_subject(
                    document, [FieldPath.parse(f) for f in declaration.subject_fields], subject
                )
                subjects = (subject,)
            outcome = filter_json(document, [FieldPath.parse(f) for f in released_fields])
            outcome = FilterOutcome(outcome.document, outcome.released, outcome.withheld, subjects)
    except DeclarationError as exc:
        # A released field the grammar refuses means the policy itself is broken.
        raise BodyInvalid(f"cannot filter: {exc}") from exc
    try:
        filtered = json.dumps(outcome.document, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )
    except UnicodeEncodeError as exc:
        raise BodyInvalid("the body contains an unpaired surrogate escape") from exc
    return FilteredBody(
        filtered,
        content_type,
        outcome.released,
        outcome.withheld,
        outcome.subjects,
        outcome.withheld_subjects,
    )

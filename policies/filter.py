"""The response field filter: an allow-list over JSON, fail closed.

``filter_json`` keeps a member or element only if an allowed :class:`FieldPath` covers it
(a path covers everything beneath it) and reports every location it removed, normalised
(``telecom[*]``, ``address``, ``entry[*].resource.telecom``). ``filter_body`` is what a
provider node calls on a backend response: it parses strictly, picks plain-JSON or FHIR
mode from the media type, filters and re-serialises, and raises a :class:`FilterError`
for anything it cannot filter safely; it never hands back the input unfiltered.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from policies._contentencoding import decode_content
from policies._fhir import FhirRules, filter_fhir
from policies._fieldpath import ITEMS, FhirPath, FieldPath, build_trie
from policies._jsonparse import FilterLimits, parse_json
from policies._mediatype import check_media_type
from policies._walk import DROP, Walk
from policies.declarations import ServiceDeclaration
from policies.errors import BodyInvalid, DeclarationError

__all__ = [
    "FhirPath",
    "FieldPath",
    "FilterLimits",
    "FilterOutcome",
    "FilteredBody",
    "decode_content",
    "filter_body",
    "filter_fhir_json",
    "filter_json",
]


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    """A filtered document and the normalised paths released and withheld (sorted)."""

    document: object
    released: tuple[str, ...]
    withheld: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FilteredBody:
    """A filtered, re-serialised response body."""

    body: bytes
    content_type: str
    released: tuple[str, ...]
    withheld: tuple[str, ...]


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


def filter_fhir_json(document: object, allowed: Collection[FhirPath]) -> FilterOutcome:
    """FHIR mode of :func:`filter_json` (see ``_fhir``); raises BodyInvalid if not FHIR."""
    result, released, withheld = filter_fhir(document, FhirRules(allowed))
    return FilterOutcome(result, tuple(sorted(released)), tuple(sorted(withheld)))


def filter_body(
    body: bytes,
    *,
    content_type: str,
    declaration: ServiceDeclaration,
    released_fields: Collection[str],
    limits: FilterLimits = FilterLimits(),  # noqa: B008 - immutable default
) -> FilteredBody:
    """Filter a (decoded) response body of ``declaration``'s service to ``released_fields``.

    Raises a FilterError subclass for a media type the declaration does not list, a
    charset other than UTF-8, invalid JSON, duplicate keys, or a body beyond ``limits``.
    Content-Encoding must already be undone (:func:`decode_content`).
    """
    check_media_type(content_type, declaration.media_types)
    document = parse_json(body, limits)
    try:
        if declaration.is_fhir:
            outcome = filter_fhir_json(document, [FhirPath.parse(f) for f in released_fields])
        else:
            outcome = filter_json(document, [FieldPath.parse(f) for f in released_fields])
    except DeclarationError as exc:
        # A released field the grammar refuses means the policy itself is broken.
        raise BodyInvalid(f"cannot filter: {exc}") from exc
    try:
        filtered = json.dumps(outcome.document, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )
    except UnicodeEncodeError as exc:
        raise BodyInvalid("the body contains an unpaired surrogate escape") from exc
    return FilteredBody(filtered, content_type, outcome.released, outcome.withheld)

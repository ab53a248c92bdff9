"""FHIR mode of the filter: per-resource subjects, per-type field paths, FHIR meaning kept.

Every resource met (the top-level one, ``Bundle.entry[*].resource``, ``contained``) is
judged on its own:

1. **Whose data it is** comes from the resource (``_subjects``). A resource about anyone
   but the request's subject, or whose subject cannot be established (unless its type is
   declared impersonal), is withheld whole and listed as ``<where>(<Type>):other-subject``
   or ``:unknown-subject``; the others' ids go to the audit row, never to the consumer.
2. A resource of a type not released at all is withheld whole: ``<where>(<Type>)``;
   so is one the consent rules on the data keep back (``consent.ResourceGate``):
   ``:denied`` (a deny rule matches it), ``:not-permitted`` (only rules about other
   resources released fields).
3. Its elements are filtered by its type's paths. Without consent only ``resourceType``
   and ``id`` stay, and the subject element reduced to its reference (which names the
   subject the consumer asked about); ``meta``, ``extension``, ``modifierExtension`` and
   ``text`` are fields like any other.
4. If that loses an element FHIR requires (``fhir_required.json``) or a modifier
   (``modifierExtension``, ``implicitRules``, without which the rest would be misread),
   the resource is withheld whole: ``:incomplete`` / ``:modifier``.
5. A resource from which anything was withheld carries the security label REDACTED
   (``meta.security``, v3 ObservationValue), so a receiver knows it is incomplete.

Bundles are containers: only ``resourceType``, ``id`` and ``type`` are structural;
``total`` is recounted (or removed when it cannot be: a page of a longer result);
``link`` and entry members other than ``fullUrl`` and ``resource`` are declared fields;
a ``fullUrl`` that is not the entry resource's own address (or a ``urn:uuid``/``urn:oid``)
is replaced by a ``urn:uuid`` keyed per response. A **document** Bundle is attested as a
whole: it is released unchanged or not at all (``DocumentWithheld`` at the top level,
``<where>(Bundle):document`` nested). A top-level resource withheld whole raises
``ResourceWithheld``: a stub would misstate it. Elements emptied by filtering are removed
(FHIR has no empty objects or arrays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Callable, Collection, Mapping
from importlib import resources
from typing import Final

from policies._fieldpath import (
    ITEMS,
    RESOURCE_TYPE_RE,
    FhirPath,
    FieldPath,
    Trie,
    build_trie,
    join_key,
)
from policies._subjects import SubjectRules, patient_id, plain_patient_reference
from policies._walk import DROP, Walk
from policies.errors import BodyInvalid, DocumentWithheld, ResourceWithheld

__all__ = ["REDACTED", "FhirResult", "FhirRules", "filter_fhir"]

_STRUCTURAL = frozenset({"resourceType", "id"})
_MODIFIERS = ("modifierExtension", "implicitRules")
REDACTED: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "REDACTED",
    "display": "redacted",
}
_ID = r"[A-Za-z0-9\-.]{1,64}"
_OWN_URL = re.compile(rf"(?:https?://[^?#\s]+/)?([A-Z][A-Za-z0-9]{{0,63}})/({_ID})")
_URN = re.compile(
    r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+"
)


def _load_required() -> dict[str, tuple[tuple[str, ...], ...]]:
    text = resources.files("policies").joinpath("fhir_required.json").read_text("utf-8")
    table = json.loads(text)
    return {name: tuple(tuple(group) for group in groups) for name, groups in table.items()}


# Groups of JSON members per resource type, one member of each group required.
_REQUIRED: Final = _load_required()


# Says why a resource is withheld whole by the consent rules on the data (a deny, a
# permit that holds for other resources only), or None: ``consent.ResourceGate``.
Gate = Callable[[dict[str, object], str], str | None]


class FhirRules:
    """Allowed FHIR paths compiled into one trie per resource type, subject rules, and the
    per-resource gate of the consent rules."""

    __slots__ = ("by_type", "gate", "subjects")

    def __init__(
        self,
        allowed: Collection[FhirPath],
        subjects: SubjectRules | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.subjects = subjects or SubjectRules()
        self.gate = gate
        grouped: dict[str, list[FhirPath]] = {}
        for path in allowed:
            grouped.setdefault(path.resource_type, []).append(path)
        self.by_type: dict[str, Trie] = {}
        for resource_type, paths in grouped.items():
            if any(path.path is None for path in paths):
                root = Trie(resource_type)
                root.full = True
            else:
                field_paths = [path.path for path in paths if path.path is not None]
                root = build_trie(field_paths, resource_type)
                for field_path in field_paths:
                    _add_extension(root, field_path)
            self.by_type[resource_type] = root


def _add_extension(root: Trie, path: FieldPath) -> None:
    """Releasing ``birthDate`` also releases ``_birthDate``: FHIR JSON keeps a primitive's
    id and extensions under the underscored name, and they belong to the same element.
    The shadow node reports the declared path, so ``released`` names what was declared."""
    names = [index for index, step in enumerate(path.steps) if step != ITEMS]
    if path.steps[names[-1]].startswith("_"):
        return
    node = root
    for index, step in enumerate(path.steps):
        if node.full:
            return
        node = node.child("_" + step if index == names[-1] else step)
    node.full = True
    node.path = f"{root.path}.{path}"


def _resource_type(value: object) -> str | None:
    """The resource's type, or None if ``value`` is not a resource with a well-formed one
    (the type ends up in withheld paths, so nothing odd may pass)."""
    if type(value) is dict:
        resource_type = value.get("resourceType")
        if type(resource_type) is str and RESOURCE_TYPE_RE.fullmatch(resource_type):
            return resource_type
    return None


def _labelled(kept: dict[str, object]) -> dict[str, object]:
    """``kept`` with the REDACTED security label in its meta (added once)."""
    meta = kept.get("meta")
    meta = dict(meta) if type(meta) is dict else {}
    security = meta.get("security")
    labels = list(security) if type(security) is list else []
    if not any(
        type(label) is dict
        and label.get("system") == REDACTED["system"]
        and label.get("code") == REDACTED["code"]
        for label in labels
    ):
        labels.append(dict(REDACTED))
    meta["security"] = labels
    kept["meta"] = meta
    return kept


def _is_match(entry: object) -> bool:
    """Counted by ``Bundle.total``: a search match (no search mode counts as one)."""
    if type(entry) is not dict:
        return True
    search = entry.get("search")
    return type(search) is not dict or search.get("mode", "match") == "match"


class FhirResult:
    """What one filtering pass released: the document and the paths and subjects."""

    __slots__ = ("document", "released", "subjects", "withheld", "withheld_subjects")

    def __init__(
        self,
        document: dict[str, object],
        released: set[str],
        withheld: set[str],
        subjects: set[str],
        withheld_subjects: set[str],
    ) -> None:
        self.document = document
        self.released = released
        self.withheld = withheld
        self.subjects = subjects
        self.withheld_subjects = withheld_subjects


class _FhirWalk(Walk):
    __slots__ = ("rules", "subject", "subjects", "url_key", "withheld_subjects")

    def __init__(self, rules: FhirRules, subject: str, url_key: bytes) -> None:
        super().__init__(transparent_arrays=True)
        self.rules = rules
        self.subject = subject
        self.url_key = url_key
        self.subjects: set[str] = set()
        self.withheld_subjects: set[str] = set()

    def walk(self, value: object, node: Trie) -> object:
        result = Walk.walk(self, value, node)
        # FHIR JSON has no empty objects or arrays: an element emptied here is removed.
        if (type(result) is dict or type(result) is list) and not result and value:
            return DROP
        return result

    # -- one resource ----------------------------------------------------------------

    def release(
        self,
        resource: dict[str, object],
        resource_type: str,
        where: str | None,
        bundle_patients: Mapping[str, str],
    ) -> dict[str, object] | None:
        """The filtered resource, or None when it is withheld whole (reported at
        ``where``; at the top level, ``where`` is None and ResourceWithheld is raised)."""
        if resource_type == "Bundle":
            return self.bundle(resource, where)
        subjects = self.rules.subjects.subjects_of(
            resource,
            resource_type,
            bundle_patients=bundle_patients,
            contained=where is not None and ".contained" in where,
        )
        if subjects is None:
            if not self.rules.subjects.is_impersonal(resource_type):
                self.refuse(where, resource_type, "unknown-subject")
                return None
            subjects = frozenset()
        elif subjects != {self.subject}:
            self.withheld_subjects |= subjects - {self.subject}
            self.refuse(where, resource_type, "other-subject")
            return None
        if self.rules.gate is not None:
            reason = self.rules.gate(resource, resource_type)
            if reason is not None:
                self.refuse(where, resource_type, reason)
                return None
        node = self.rules.by_type.get(resource_type)
        if node is None:
            if where is not None:
                self.refuse(where, resource_type, None)
                return None
            node = Trie(resource_type)
        # What filtering its elements notes is kept apart until the resource is known to
        # be released: withheld whole after all, it is void.
        outer_sets = (self.released, self.withheld, self.subjects)
        self.released, self.withheld, self.subjects = set(), set(), set()
        outer, self.removals = self.removals, 0
        kept = self.own_elements(resource, resource_type, node, bundle_patients, bool(subjects))
        lost, self.removals = self.removals, outer
        mine = (self.released, self.withheld, self.subjects)
        self.released, self.withheld, self.subjects = outer_sets
        reason = _lost_meaning(resource, kept, resource_type)
        if reason is not None:
            self.refuse(where, resource_type, reason)
            return None
        self.released |= mine[0]
        self.withheld |= mine[1]
        self.subjects |= mine[2] | subjects
        return _labelled(kept) if lost else kept

    def refuse(self, where: str | None, resource_type: str, reason: str | None) -> None:
        if where is None:
            raise ResourceWithheld(
                {
                    None: f"no consent releases {resource_type} resources",
                    "other-subject": "the resource is about another data subject than "
                    "the request names",
                    "unknown-subject": "the data subject of the resource cannot be "
                    "established from it",
                    "incomplete": f"consent leaves out an element FHIR requires of {resource_type}",
                    "modifier": "consent leaves out a modifier element of the resource",
                    "denied": "the data subject's consent denies this resource",
                    "not-permitted": "the data subject's consent permits other "
                    "resources, not this one",
                }[reason]
            )
        self.withhold(f"{where}({resource_type})" + (f":{reason}" if reason else ""))

    def own_elements(
        self,
        resource: dict[str, object],
        resource_type: str,
        node: Trie,
        bundle_patients: Mapping[str, str],
        has_subject: bool,
    ) -> dict[str, object]:
        # The subject element stays (reduced) only where it was checked to name the subject.
        subject_keys = self.rules.subjects.subject_keys(resource_type) if has_subject else ()
        if node.full:
            self.released.add(node.path)
        kept: dict[str, object] = {}
        for key, value in resource.items():
            if key in _STRUCTURAL:
                kept[key] = value
            elif key == "contained" and type(value) is list:
                contained = self.contained(value, resource_type)
                if contained:
                    kept[key] = contained
            elif node.full:
                kept[key] = value
            else:
                child = node.keys.get(key)
                result = DROP if child is None else self.walk(value, child)
                if result is not DROP:
                    kept[key] = result
                elif key in subject_keys:
                    kept[key] = self.subject_reference(value, node.path_of(key), bundle_patients)
                else:
                    self.withhold(node.path_of(key))
        return kept

    def subject_reference(
        self, value: object, path: str, bundle_patients: Mapping[str, str]
    ) -> object:
        """The subject element reduced to the reference naming the request's subject
        (it was checked to name no one else); anything else in it is withheld."""
        if type(value) is list:
            return [self.subject_reference(item, path, bundle_patients) for item in value]
        assert type(value) is dict
        reference = value["reference"]
        assert type(reference) is str
        if reference not in bundle_patients:
            # "Patient/ID" without base URL or version: neither was consented to.
            if reference != f"Patient/{plain_patient_reference(reference)}":
                self.withhold(join_key(path, "reference"))
            reference = f"Patient/{self.subject}"
        if set(value) - {"reference"}:
            self.withhold(path)
        return {"reference": reference}

    def contained(self, values: list[object], parent_type: str) -> list[object]:
        where = f"{parent_type}.contained[*]"
        kept: list[object] = []
        for value in values:
            resource_type = _resource_type(value)
            if resource_type is None or resource_type == "Bundle":
                self.withhold(where)
                continue
            assert type(value) is dict
            released = self.release(value, resource_type, where, {})
            if released is not None:
                kept.append(released)
        return kept

    # -- bundles ---------------------------------------------------------------------

    def bundle(self, bundle: dict[str, object], where: str | None) -> dict[str, object] | None:
        if bundle.get("type") == "document":
            return self.document(bundle, where)
        node = self.rules.by_type.get("Bundle") or Trie("Bundle")
        entry_node = node.keys.get("entry")
        if entry_node is not None and entry_node.items is not None:
            entry_node = entry_node.items
        entries = bundle.get("entry")
        patients = _bundle_patients(entries)
        outer, self.removals = self.removals, 0
        kept: dict[str, object] = {}
        for key, value in bundle.items():
            if key in _STRUCTURAL or key == "type":
                kept[key] = value
            elif key == "total":
                kept[key] = value  # recounted below
            elif key == "entry" and type(value) is list:
                released = self.entries(value, entry_node, patients)
                if released:
                    kept[key] = released
            elif node.full:
                kept[key] = value
            else:
                child = node.keys.get(key)
                result = DROP if child is None else self.walk(value, child)
                if result is DROP:
                    self.withhold(node.path_of(key))
                else:
                    kept[key] = result
        if "total" in kept:
            self.recount(bundle, kept)
        lost, self.removals = self.removals, outer
        return _labelled(kept) if lost else kept

    def recount(self, bundle: dict[str, object], kept: dict[str, object]) -> None:
        """``total`` counts only what is released; a page of a longer result cannot be
        recounted (withheld matches on other pages are unknown), so its total goes."""
        entries = bundle.get("entry")
        before = sum(1 for e in entries if _is_match(e)) if type(entries) is list else 0
        released = kept.get("entry")
        after = sum(1 for e in released if _is_match(e)) if type(released) is list else 0
        if bundle.get("total") == before:
            kept["total"] = after
        else:
            del kept["total"]
            self.withhold("Bundle.total")

    def entries(
        self, values: list[object], extra: Trie | None, patients: Mapping[str, str]
    ) -> list[object]:
        kept: list[object] = []
        for entry in values:
            if type(entry) is not dict:
                self.withhold("Bundle.entry[*]")
                continue
            resource = entry.get("resource")
            resource_type = _resource_type(resource)
            if resource_type is None:
                # No resource (or a malformed one): nothing establishes whose entry it is.
                self.withhold("Bundle.entry[*]")
                continue
            assert type(resource) is dict
            released = self.release(resource, resource_type, "Bundle.entry[*]", patients)
            if released is not None:
                kept.append(self.entry(entry, released, extra))
        return kept

    def entry(
        self, entry: dict[str, object], resource: dict[str, object], extra: Trie | None
    ) -> dict[str, object]:
        kept: dict[str, object] = {}
        for key, value in entry.items():
            if key == "fullUrl":
                kept[key] = self.full_url(value, resource)
            elif key == "resource":
                kept[key] = resource
            elif extra is not None and extra.full:
                self.released.add(extra.path)
                kept[key] = value
            else:
                child = extra.keys.get(key) if extra is not None else None
                result = DROP if child is None else self.walk(value, child)
                if result is DROP:
                    self.withhold(join_key("Bundle.entry[*]", key))
                else:
                    kept[key] = result
        return kept

    def full_url(self, value: object, resource: dict[str, object]) -> str:
        """``value`` if it is the resource's own address or a URN; otherwise (a URL
        that may carry data) a ``urn:uuid`` that is stable within this response only."""
        if type(value) is str:
            if _URN.fullmatch(value):
                return value
            own = _OWN_URL.fullmatch(value)
            if (
                own
                and own.group(1) == resource["resourceType"]
                and own.group(2) == resource.get("id")
            ):
                return value
        self.withhold("Bundle.entry[*].fullUrl")
        digest = hmac.new(self.url_key, repr(value).encode(), hashlib.sha256).digest()
        return f"urn:uuid:{uuid.UUID(bytes=digest[:16], version=4)}"

    def document(self, bundle: dict[str, object], where: str | None) -> dict[str, object] | None:
        """Release a document Bundle unchanged, or not at all."""
        trial = _FhirWalk(self.rules, self.subject, self.url_key)
        outer = self.removals
        try:
            trial.bundle({**bundle, "type": "collection"}, None)
        except ResourceWithheld:  # pragma: no cover - bundles are never withheld whole
            trial.withhold("Bundle")
        self.removals = outer
        if trial.withheld:
            if where is None:
                raise DocumentWithheld(
                    "a FHIR document is released whole or not at all, and consent does "
                    "not release all of it"
                )
            self.withhold(f"{where}(Bundle):document")
            self.withheld_subjects |= trial.withheld_subjects
            return None
        self.released |= trial.released
        self.subjects |= trial.subjects
        return bundle


def _lost_meaning(
    resource: dict[str, object], kept: dict[str, object], resource_type: str
) -> str | None:
    """Why the filtered resource no longer says what the resource said, if it does not."""
    if any(key in resource and key not in kept for key in _MODIFIERS):
        return "modifier"
    for group in _REQUIRED.get(resource_type, ()):
        if any(name in resource for name in group) and not any(name in kept for name in group):
            return "incomplete"
    return None


def _bundle_patients(entries: object) -> dict[str, str]:
    """``urn:uuid``/``urn:oid`` full URLs of Patient entries -> the patient's id, so
    references inside a transaction Bundle resolve. RESTful full URLs are not used: a
    reference ``Patient/ID`` names its patient by itself."""
    patients: dict[str, str] = {}
    if type(entries) is not list:
        return patients
    for entry in entries:
        if type(entry) is not dict:
            continue
        full_url, resource = entry.get("fullUrl"), entry.get("resource")
        if type(full_url) is str and _URN.fullmatch(full_url) and _resource_type(resource):
            assert type(resource) is dict
            found = patient_id(resource.get("id"))
            if resource["resourceType"] == "Patient" and found is not None:
                patients[full_url] = found
    return patients


def filter_fhir(
    document: object, rules: FhirRules, *, subject: str, url_key: bytes | None = None
) -> FhirResult:
    """Filter one FHIR resource (a Bundle included) for the data subject ``subject``."""
    resource_type = _resource_type(document)
    if resource_type is None:
        raise BodyInvalid("a FHIR body must be a JSON object with a string resourceType")
    assert type(document) is dict
    walk = _FhirWalk(rules, subject, url_key or secrets.token_bytes(32))
    filtered = walk.release(document, resource_type, None, {})
    assert filtered is not None
    return FhirResult(filtered, walk.released, walk.withheld, walk.subjects, walk.withheld_subjects)

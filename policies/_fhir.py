"""FHIR mode of the filter: declaration paths are per resource type and apply to every
resource met, including those in ``Bundle.entry[*].resource`` and ``contained``.

Structural keys stay so the result is still valid FHIR: ``resourceType``, ``id`` and
``meta`` of every resource; ``type``, ``total``, ``link`` and ``entry[*].fullUrl`` of a
Bundle. A nested resource (bundle entry or contained) whose type is not released at all
is removed whole and reported as ``<Parent>.entry[*](<Type>)`` or
``<Parent>.contained[*](<Type>)``. Nested resources are always filtered by their own
type's rules, even inside a resource released whole.
"""

from __future__ import annotations

from collections.abc import Collection

from policies._fieldpath import (
    ITEMS,
    RESOURCE_TYPE_RE,
    FhirPath,
    FieldPath,
    Trie,
    build_trie,
    join_key,
)
from policies._walk import DROP, Walk
from policies.errors import BodyInvalid

__all__ = ["FhirRules", "filter_fhir"]

_STRUCTURAL = frozenset({"resourceType", "id", "meta"})
_BUNDLE_STRUCTURAL = frozenset({"type", "total", "link"})


class FhirRules:
    """Allowed FHIR paths compiled into one trie per resource type."""

    __slots__ = ("by_type",)

    def __init__(self, allowed: Collection[FhirPath]) -> None:
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


class _FhirWalk(Walk):
    __slots__ = ("rules",)

    def __init__(self, rules: FhirRules) -> None:
        super().__init__(transparent_arrays=True)
        self.rules = rules

    def is_released(self, resource_type: str) -> bool:
        # A Bundle is a container: its entries are judged one by one.
        return resource_type in self.rules.by_type or resource_type == "Bundle"

    def resource(self, resource: dict[str, object], resource_type: str) -> dict[str, object]:
        node = self.rules.by_type.get(resource_type) or Trie(resource_type)
        is_bundle = resource_type == "Bundle"
        if node.full:
            self.released.add(node.path)
        kept: dict[str, object] = {}
        for key, value in resource.items():
            if key in _STRUCTURAL or (is_bundle and key in _BUNDLE_STRUCTURAL):
                kept[key] = value
            elif key == "contained" and type(value) is list:
                kept[key] = self.contained(value, resource_type)
            elif is_bundle and key == "entry" and type(value) is list:
                kept[key] = self.entries(value, node.keys.get("entry"))
            elif node.full:
                kept[key] = value
            else:
                child = node.keys.get(key)
                result = DROP if child is None else self.walk(value, child)
                if result is DROP:
                    self.withheld.add(node.path_of(key))
                else:
                    kept[key] = result
        return kept

    def contained(self, values: list[object], parent_type: str) -> list[object]:
        where = f"{parent_type}.contained[*]"
        kept: list[object] = []
        for value in values:
            resource_type = _resource_type(value)
            if resource_type is None or resource_type == "Bundle":
                self.withheld.add(where)
            elif not self.is_released(resource_type):
                self.withheld.add(f"{where}({resource_type})")
            else:
                assert type(value) is dict
                kept.append(self.resource(value, resource_type))
        return kept

    def entries(self, values: list[object], entry_node: Trie | None) -> list[object]:
        # The trie of "Bundle.entry" may allow extra entry members (search, response...).
        extra = entry_node
        if entry_node is not None and entry_node.items is not None:
            extra = entry_node.items
        kept: list[object] = []
        for entry in values:
            if type(entry) is not dict:
                self.withheld.add("Bundle.entry[*]")
                continue
            resource = entry.get("resource", _ABSENT)
            if resource is not _ABSENT:
                resource_type = _resource_type(resource)
                if resource_type is None:
                    self.withheld.add("Bundle.entry[*]")
                    continue
                if not self.is_released(resource_type):
                    self.withheld.add(f"Bundle.entry[*]({resource_type})")
                    continue
            kept.append(self.entry(entry, extra))
        return kept

    def entry(self, entry: dict[str, object], extra: Trie | None) -> dict[str, object]:
        kept: dict[str, object] = {}
        for key, value in entry.items():
            if key == "fullUrl":
                kept[key] = value
            elif key == "resource":
                assert type(value) is dict
                kept[key] = self.resource(value, value["resourceType"])
            elif extra is not None and extra.full:
                self.released.add(extra.path)
                kept[key] = value
            else:
                child = extra.keys.get(key) if extra is not None else None
                result = DROP if child is None else self.walk(value, child)
                if result is DROP:
                    self.withheld.add(join_key("Bundle.entry[*]", key))
                else:
                    kept[key] = result
        return kept


_ABSENT = object()


def filter_fhir(document: object, rules: FhirRules) -> tuple[object, set[str], set[str]]:
    """Filter one FHIR resource; returns (document, released paths, withheld paths)."""
    resource_type = _resource_type(document)
    if resource_type is None:
        raise BodyInvalid("a FHIR body must be a JSON object with a string resourceType")
    assert type(document) is dict
    walk = _FhirWalk(rules)
    filtered = walk.resource(document, resource_type)
    return filtered, walk.released, walk.withheld

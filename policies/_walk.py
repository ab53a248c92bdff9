"""The allow-list walk shared by the plain-JSON and FHIR filters.

``walk`` returns a filtered copy of ``value`` or ``DROP`` when nothing of it may be kept
(its location is then reported by the caller). Members and elements no trie node covers
are left out and their normalised paths added to ``withheld``; locations a ``full`` node
covers are kept whole and their allowed path added to ``released``.
"""

from __future__ import annotations

from typing import Final

from policies._fieldpath import Trie

__all__ = ["DROP", "Walk"]

DROP: Final = object()


class Walk:
    """One filtering pass; collects what was released and withheld."""

    __slots__ = ("released", "removals", "transparent_arrays", "withheld")

    def __init__(self, *, transparent_arrays: bool = False) -> None:
        # FHIR paths (FHIRPath style) step through arrays implicitly: Patient.name.family.
        self.transparent_arrays = transparent_arrays
        self.released: set[str] = set()
        self.withheld: set[str] = set()
        # Removals so far (a set cannot tell whether anything was removed since a point).
        self.removals = 0

    def withhold(self, path: str) -> None:
        self.withheld.add(path)
        self.removals += 1

    def walk(self, value: object, node: Trie) -> object:
        if node.full:
            self.released.add(node.path)
            return value
        if type(value) is dict:
            if not node.keys:
                return DROP
            return self.members(value, node)
        if type(value) is list:
            items = node.items
            if items is None:
                if self.transparent_arrays and node.keys:
                    return self.elements(value, node)
                return DROP
            if items.full:
                self.released.add(items.path)
                return value
            return self.elements(value, items)
        return DROP

    def members(self, value: dict[str, object], node: Trie) -> dict[str, object]:
        kept: dict[str, object] = {}
        keys = node.keys
        for key, member in value.items():
            child = keys.get(key)
            if child is None:
                self.withhold(node.path_of(key))
                continue
            result = self.walk(member, child)
            if result is DROP:
                self.withhold(child.path)
            else:
                kept[key] = result
        return kept

    def elements(self, value: list[object], node: Trie) -> list[object]:
        kept: list[object] = []
        for element in value:
            result = self.walk(element, node)
            if result is DROP:
                self.withhold(node.path)
            else:
                kept.append(result)
        return kept

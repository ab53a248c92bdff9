"""Field paths over JSON documents and the trie the filter walks.

Grammar (strict; anything else raises DeclarationError)::

    path  := "*" | step ( "." name ( "[*]" )* )*
    step  := name ( "[*]" )* | ( "[*]" )+
    name  := [A-Za-z0-9_$@:-]+

``name`` selects an object member, ``[*]`` every element of an array, ``*`` alone the
whole document. FHIR paths put the resource type first: ``Patient.name``,
``AllergyIntolerance`` (the whole resource).

A path covers its location and everything beneath it. The trie built from the allowed
paths stores each node's normalised path, so the filter builds strings only for what it
removes, never per visited node.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from policies.errors import DeclarationError

__all__ = ["ITEMS", "RESOURCE_TYPE_RE", "FhirPath", "FieldPath", "Trie", "build_trie", "join_key"]

ITEMS = "[*]"
_NAME = r"[A-Za-z0-9_$@:\-]+"
_NAME_RE = re.compile(_NAME)
_PATH_RE = re.compile(rf"(?:{_NAME}|\[\*\])(?:\.{_NAME}|\[\*\])*")
_TOKEN_RE = re.compile(rf"{_NAME}|\[\*\]")
RESOURCE_TYPE_RE = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")


@dataclass(frozen=True, slots=True, order=True)
class FieldPath:
    """A parsed field path; ``steps`` are member names or ``[*]``; ``()`` is ``*``."""

    steps: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        if not isinstance(text, str):
            raise DeclarationError("a field path must be a string")
        if text == "*":
            return cls(())
        if len(text) > 1024 or not _PATH_RE.fullmatch(text):
            raise DeclarationError(
                f"field path {text!r} is malformed: expected names joined by '.', "
                "each optionally followed by '[*]', or '*' alone"
            )
        return cls(tuple(_TOKEN_RE.findall(text)))

    def __str__(self) -> str:
        if not self.steps:
            return "*"
        text = ""
        for step in self.steps:
            text = join_key(text, step) if step != ITEMS else text + ITEMS
        return text


@dataclass(frozen=True, slots=True, order=True)
class FhirPath:
    """A FHIR field path: a resource type, then a field path inside it (None: all)."""

    resource_type: str
    path: FieldPath | None

    @classmethod
    def parse(cls, text: str) -> FhirPath:
        if not isinstance(text, str):
            raise DeclarationError("a FHIR field path must be a string")
        resource_type, dot, rest = text.partition(".")
        if not RESOURCE_TYPE_RE.fullmatch(resource_type):
            raise DeclarationError(
                f"FHIR field path {text!r} must start with a resource type such as 'Patient'"
            )
        if not dot:
            return cls(resource_type, None)
        if rest.startswith("[") or rest == "*":
            raise DeclarationError(f"FHIR field path {text!r} must name a field after the type")
        return cls(resource_type, FieldPath.parse(rest))

    def __str__(self) -> str:
        return self.resource_type if self.path is None else f"{self.resource_type}.{self.path}"


def join_key(prefix: str, key: str) -> str:
    """The normalised path of member ``key`` under ``prefix`` (odd keys JSON-quoted)."""
    if not _NAME_RE.fullmatch(key):
        # ASCII-only JSON string: no control characters reach logs or headers.
        return f"{prefix}[{json.dumps(key, ensure_ascii=True)}]"
    return f"{prefix}.{key}" if prefix else key


class Trie:
    """One node of the allowed-path trie; ``full`` means everything beneath is allowed."""

    __slots__ = ("full", "items", "keys", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.full = False
        self.keys: dict[str, Trie] = {}
        self.items: Trie | None = None

    def path_of(self, key: str) -> str:
        """The normalised path of member ``key`` beneath this node."""
        return join_key(self.path, key)

    def child(self, step: str) -> Trie:
        if step == ITEMS:
            if self.items is None:
                self.items = Trie(self.path + ITEMS)
            return self.items
        node = self.keys.get(step)
        if node is None:
            node = self.keys[step] = Trie(join_key(self.path, step))
        return node


def build_trie(paths: Iterable[FieldPath], root_path: str = "") -> Trie:
    """A trie allowing exactly what ``paths`` cover."""
    root = Trie(root_path)
    for path in paths:
        node = root
        for step in path.steps:
            if node.full:
                break
            node = node.child(step)
        node.full = True
    return root

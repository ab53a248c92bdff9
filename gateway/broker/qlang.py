"""The NGSI-LD query language ``q``, ETSI GS CIM 009 V1.8.1 clause 4.9.

::

    Query     = Term *( (";" / "|") Term )        ; ";" is AND, "|" is OR, AND binds first
    Term      = "(" Query ")" / ["!"] Path / Path Op Value
    Path      = AttrName *( "." AttrName ) [ "[" Key *( "." Key ) "]" ]
    Op        = "==" / "!=" / ">=" / ">" / "<=" / "<" / "~=" / "!~="
    Value     = List / Range / One ; List = One 1*( "," One ) ; Range = One ".." One
    One       = quoted string / number / true / false / DateTime / URI

``Path`` names an attribute, then sub-attributes (or ``observedAt``, ``unitCode``,
``datasetId``), then keys inside a JSON value. A Path alone asks that it exists;
``!Path`` that it does not. A term over an array value holds if it holds for one
element. Names are expanded with the request's ``@context`` when parsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.broker.errors import BadRequestData, TooComplexQuery
from gateway.broker.ldcontext import ActiveContext

__all__ = ["Query", "parse_q"]

_MAX_LENGTH = 4096
_MAX_TERMS = 64
_MAX_PATTERN = 256
_META = frozenset({"observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt"})
_CONTENT = ("value", "object", "languageMap", "valueList", "objectList", "vocab", "json")
_NAME = re.compile(r"[^\s<>\"'=;()|!~\[\].,]+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_BARE = re.compile(r"[^;|()\",<>=!~][^;|()\",]*?(?=\.\.|[;|(),]|$)")
_OPS = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")

Entity = dict[str, Any]
Query = Callable[[Entity], bool]


@dataclass(frozen=True)
class _Path:
    attribute: str
    members: tuple[str, ...]
    keys: tuple[str, ...]


class _Parser:
    def __init__(self, text: str, ctx: ActiveContext) -> None:
        self.text = text
        self.pos = 0
        self.ctx = ctx
        self.terms = 0

    def fail(self, message: str) -> BadRequestData:
        return BadRequestData(f"q: {message} at position {self.pos}")

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def query(self) -> Query:
        alternatives = [self.conjunction()]
        while self.peek("|"):
            self.pos += 1
            alternatives.append(self.conjunction())
        if len(alternatives) == 1:
            return alternatives[0]
        return lambda entity: any(term(entity) for term in alternatives)

    def conjunction(self) -> Query:
        terms = [self.term()]
        while self.peek(";"):
            self.pos += 1
            terms.append(self.term())
        if len(terms) == 1:
            return terms[0]
        return lambda entity: all(term(entity) for term in terms)

    def term(self) -> Query:
        self.terms += 1
        if self.terms > _MAX_TERMS:
            raise TooComplexQuery(f"q is limited to {_MAX_TERMS} terms")
        if self.peek("("):
            self.pos += 1
            inner = self.query()
            if not self.peek(")"):
                raise self.fail("')' expected")
            self.pos += 1
            return inner
        negated = self.peek("!") and not self.peek("!=") and not self.peek("!~=")
        if negated:
            self.pos += 1
        path = self.path()
        op = next((op for op in _OPS if self.peek(op)), None)
        if op is None:
            if negated:
                return lambda entity: not _values(entity, path)
            return lambda entity: bool(_values(entity, path))
        if negated:
            raise self.fail("'!' stands before an attribute alone")
        self.pos += len(op)
        return self.comparison(path, op)

    def path(self) -> _Path:
        names = [self.name()]
        while self.peek(".") and not self.peek(".."):
            self.pos += 1
            names.append(self.name())
        keys: list[str] = []
        if self.peek("["):
            self.pos += 1
            keys.append(self.name())
            while self.peek("."):
                self.pos += 1
                keys.append(self.name())
            if not self.peek("]"):
                raise self.fail("']' expected")
            self.pos += 1
        members = tuple(n if n in _META else self.ctx.expand(n) for n in names[1:])
        return _Path(self.ctx.expand(names[0]), members, tuple(keys))

    def name(self) -> str:
        match = _NAME.match(self.text, self.pos)
        if match is None:
            raise self.fail("attribute name expected")
        self.pos = match.end()
        return match.group()

    def comparison(self, path: _Path, op: str) -> Query:
        if op in ("~=", "!~="):
            pattern = self.pattern()
            negate = op == "!~="
            return lambda entity: negate != any(
                isinstance(v, str) and pattern.search(v) is not None for v in _values(entity, path)
            )
        first = self.value()
        if self.peek(".."):
            if op not in ("==", "!="):
                raise self.fail("a range goes with == or !=")
            self.pos += 2
            low, high = first, self.value()
            inside = _range(low, high)
            return lambda entity: (op == "!=") != any(inside(v) for v in _values(entity, path))
        choices = [first]
        while self.peek(","):
            if op not in ("==", "!="):
                raise self.fail("a list goes with == or !=")
            self.pos += 1
            choices.append(self.value())
        test = _compare(op, choices)
        return lambda entity: any(test(v) for v in _values(entity, path)) if op != "!=" else (
            bool(_values(entity, path)) and not any(
                _compare("==", choices)(v) for v in _values(entity, path)
            )
        )

    def pattern(self) -> re.Pattern[str]:
        match = re.compile(r"[^;|()]+").match(self.text, self.pos)
        if match is None or len(match.group()) > _MAX_PATTERN:
            raise self.fail(f"a pattern of 1..{_MAX_PATTERN} characters expected")
        self.pos = match.end()
        try:
            return re.compile(match.group())
        except re.error as exc:
            raise self.fail(f"invalid pattern: {exc}") from exc

    def value(self) -> Any:
        if self.peek('"'):
            end = self.pos + 1
            while end < len(self.text) and self.text[end] != '"':
                end += 2 if self.text[end] == "\\" else 1
            if end >= len(self.text):
                raise self.fail("unterminated string")
            try:
                value = json.loads(self.text[self.pos : end + 1])
            except ValueError as exc:
                raise self.fail("invalid string") from exc
            self.pos = end + 1
            return value
        bare = _BARE.match(self.text, self.pos)
        if bare is None or not bare.group():
            raise self.fail("a value expected")
        self.pos = bare.end()
        word = bare.group()
        if _NUMBER.fullmatch(word):
            return float(word) if any(c in word for c in ".eE") else int(word)
        if word in ("true", "false"):
            return word == "true"
        return word  # a DateTime, date, time or URI: compared as text


def _values(entity: Entity, path: _Path) -> list[Any]:
    """The values a path reaches (arrays flattened one level)."""
    node: Any = entity["attrs"].get(path.attribute)
    if node is None:
        return []
    for member in path.members:
        node = node.get(member) if isinstance(node, dict) else None
        if node is None:
            return []
    if isinstance(node, dict) and "type" in node:
        node = next((node[c] for c in _CONTENT if c in node), None)
    for key in path.keys:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return []
    if isinstance(node, list):
        return [item.get("object") if isinstance(item, dict) and "object" in item else item
                for item in node]
    return [node]


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (
        isinstance(a, str) and isinstance(b, str)
    )


def _compare(op: str, choices: list[Any]) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        for choice in choices:
            if not _comparable(value, choice):
                continue
            if op == "==" and value == choice:
                return True
            if op == "!=" and value != choice:
                return True
            if op == ">" and value > choice:
                return True
            if op == ">=" and value >= choice:
                return True
            if op == "<" and value < choice:
                return True
            if op == "<=" and value <= choice:
                return True
        return False

    return test


def _range(low: Any, high: Any) -> Callable[[Any], bool]:
    return lambda v: _comparable(v, low) and _comparable(v, high) and low <= v <= high


def parse_q(text: str, ctx: ActiveContext) -> Query:
    """A predicate over stored entities; BadRequestData says where ``text`` is wrong."""
    if not text or len(text) > _MAX_LENGTH:
        raise BadRequestData(f"q has 1..{_MAX_LENGTH} characters")
    parser = _Parser(text, ctx)
    query = parser.query()
    if parser.pos != len(text):
        raise parser.fail("unexpected text")
    return query

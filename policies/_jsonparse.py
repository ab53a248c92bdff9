"""Strict JSON parsing for the filter: UTF-8 only, no duplicate keys, bounded size,
depth and numbers. Every refusal is a FilterError, so a caller cannot mistake a body it
could not parse for one it filtered."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from policies.errors import BodyInvalid, BodyTooDeep, BodyTooLarge

__all__ = ["FilterLimits", "check_depth", "parse_json"]

# Bytes that matter for nesting: brackets, and quotes to tell strings apart.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_INNERMOST = re.compile(rb"\[\]|\{\}")


@dataclass(frozen=True, slots=True)
class FilterLimits:
    """Bounds on what the filter will parse; anything beyond is refused."""

    max_bytes: int = 16 * 1024 * 1024
    max_depth: int = 64
    max_number_chars: int = 64
    max_compression_ratio: int = 200


def check_depth(body: bytes, max_depth: int) -> None:
    """Raise BodyTooDeep if the (syntactically valid) JSON ``body`` nests deeper.

    Works on the bytes with C-speed passes, no Python loop over the document's nodes:
    keep only brackets and string quotes, drop strings, then peel nesting levels.
    """
    # Without escapes, every '"' left delimits a string. Removing adjacent quotes keeps
    # open/close alternation, so the pieces at even positions are outside strings.
    structure = _ESCAPE.sub(b"", body).translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    brackets = b"".join(structure.split(b'"')[::2]) if b'"' in structure else structure
    # Fast bound: one replace pass peels one or two levels ("{[]}" goes at once).
    passes, rest = 0, brackets
    while rest and passes <= max_depth:
        rest = rest.replace(b"[]", b"").replace(b"{}", b"")
        passes += 1
    if rest:
        raise BodyTooDeep(f"the body nests deeper than {max_depth} levels")
    if 2 * passes <= max_depth:
        return
    # Exact count: the regex peels exactly the innermost pairs, one level per pass.
    for _ in range(max_depth):
        brackets = _INNERMOST.sub(b"", brackets)
        if not brackets:
            return
    raise BodyTooDeep(f"the body nests deeper than {max_depth} levels")


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise BodyInvalid("the body has duplicate keys in an object")
    return result


def _constant(name: str) -> object:
    raise BodyInvalid(f"the body contains {name}, which is not JSON")


def parse_json(body: bytes, limits: FilterLimits) -> object:
    """Parse ``body`` as strict UTF-8 JSON within ``limits``."""
    if len(body) > limits.max_bytes:
        raise BodyTooLarge(f"the body exceeds {limits.max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyInvalid("the body is not valid UTF-8") from exc
    max_chars = limits.max_number_chars

    def parse_int(literal: str) -> int:
        if len(literal) > max_chars:
            raise BodyTooLarge(f"the body has a number longer than {max_chars} characters")
        return int(literal)

    def parse_float(literal: str) -> float:
        value = float(literal)
        if len(literal) > max_chars or not math.isfinite(value):
            raise BodyTooLarge("the body has a number beyond the supported range")
        return value

    try:
        document: object = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=parse_int,
            parse_float=parse_float,
            parse_constant=_constant,
        )
    except RecursionError as exc:
        raise BodyTooDeep("the body nests too deep to parse") from exc
    except ValueError as exc:
        raise BodyInvalid(f"the body is not valid JSON: {exc}") from exc
    check_depth(body, limits.max_depth)
    return document

"""Endpoint path patterns of access rights, matched segment by segment.

A pattern is ``*`` or ``**`` (the whole service) or ``/`` followed by segments separated by ``/``.
A segment is ``*`` (exactly one non-empty segment), ``**`` (any number of segments,
including none) or a literal compared for exact equality with the request's
percent-decoded segment. Nothing is turned into a regular expression, so a pattern cannot
inject one; partial wildcards (``ab*``) are refused rather than guessed at.

Rights are matched on the path as the backend will read it. Many servlet-style backends
cut ``;parameters`` off each segment before they route (``/open/..;/admin`` reaches
``/admin``), so a segment with ``;`` is refused unless the service declares that it
uses path parameters; then the parameters are cut off here too, before matching, and
what is left must still be a plain segment. An encoded ``;`` (``%3B``) is refused
either way: backends disagree on whether it delimits.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from policies.errors import DeclarationError

__all__ = ["PathPattern", "split_request_path"]

_ONE = "*"
_ANY = "**"


@dataclass(frozen=True, slots=True)
class PathPattern:
    """A compiled path pattern; build it with :meth:`compile`."""

    text: str
    segments: tuple[str, ...] | None  # None: the whole service

    @classmethod
    def compile(cls, text: str) -> PathPattern:
        if text in ("*", "**"):
            return cls(text, None)
        if not text.startswith("/"):
            raise DeclarationError(f"path pattern {text!r} must be '*' or start with '/'")
        segments = tuple(text[1:].split("/")) if text != "/" else ()
        for segment in segments:
            if segment in (_ONE, _ANY):
                continue
            if not segment or "*" in segment or segment in (".", ".."):
                raise DeclarationError(
                    f"path pattern {text!r} has an empty, '.', '..' or partly wildcard segment"
                )
            if any(ord(char) < 0x20 or ord(char) == 0x7F for char in segment):
                raise DeclarationError(f"path pattern {text!r} contains a control character")
        if segments == (_ANY,):
            return cls(text, None)
        return cls(text, segments)

    def matches(self, request_segments: tuple[str, ...]) -> bool:
        if self.segments is None:
            return True
        return _match(self.segments, 0, request_segments, 0)


def _match(pattern: tuple[str, ...], p: int, path: tuple[str, ...], s: int) -> bool:
    while p < len(pattern):
        segment = pattern[p]
        if segment == _ANY:
            # Try every split point; patterns are short, so this stays cheap.
            return any(_match(pattern, p + 1, path, rest) for rest in range(s, len(path) + 1))
        if s >= len(path):
            return False
        if segment == _ONE:
            if not path[s]:
                return False
        elif segment != path[s]:
            return False
        p += 1
        s += 1
    return s == len(path)


def split_request_path(
    path: str, *, path_parameters: bool = False
) -> tuple[str, ...] | None:
    """Split a raw request path (no query) into percent-decoded segments.

    Returns None for a path that cannot be matched unambiguously (not starting with
    ``/``, an encoded ``/`` or ``;``, ``.``/``..`` segments, control characters, a query
    part, a ``;`` unless ``path_parameters``); callers deny such requests. With
    ``path_parameters`` each segment is cut at its first ``;``, as the backend reads it.
    """
    if path in ("", "/"):
        return ()
    if not path.startswith("/") or "?" in path or "#" in path:
        return None
    segments: list[str] = []
    for raw in path[1:].split("/"):
        if ";" in raw:
            if not path_parameters:
                return None
            raw = raw.partition(";")[0]
            if not raw:
                return None
        try:
            decoded = unquote(raw, errors="strict") if "%" in raw else raw
        except UnicodeDecodeError:
            return None
        if "/" in decoded or ";" in decoded or decoded in (".", ".."):
            return None
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in decoded):
            return None
        segments.append(decoded)
    return tuple(segments)

"""Header rules shared by both proxies for what crosses from one side to the other."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.protocol import (
    HOP_BY_HOP,
    IDENTITY_HEADERS,
    NODE_SET_HEADERS,
    RESPONSE_ONLY_HEADERS,
)

__all__ = ["response_headers_from"]

# Each hop sets its own Date; it is transport metadata, not content. A cookie is a
# backend's session state with its own callers: it never crosses the federation (a
# provider node drops it from its backend's answer; a consumer node that is sent one
# anyway finds it missing from what it checks against the signature, and refuses).
_DROPPED_FROM_RESPONSES = (
    HOP_BY_HOP
    | NODE_SET_HEADERS
    | RESPONSE_ONLY_HEADERS
    | frozenset(IDENTITY_HEADERS)
    | frozenset({"date", "set-cookie", "set-cookie2"})
)


def response_headers_from(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """End-to-end response headers in order, lower-cased, without node-set ones.

    A backend cannot forge node headers such as ``X-Road-Error``: they are
    dropped here and only the nodes add them.
    """
    pairs = list(headers)
    connection_named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return tuple(
        (name.lower(), value)
        for name, value in pairs
        if name.lower() not in _DROPPED_FROM_RESPONSES
        and name.lower() not in connection_named
        and not name.lower().startswith(("x-road-", "renkei-"))
    )

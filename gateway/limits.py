"""Limits a node puts on what any caller may cost it: sizes, deadlines and caps.

Read from the ``[limits]`` table of a node's settings (every key also
overridable as ``RENKEI_NODE_LIMITS__KEY``). The defaults suit a node that
serves information systems on a LAN and peers across the internet; tests
and the soak set tighter ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["HttpLimits", "LimitsError", "limits_from_table"]


class LimitsError(ValueError):
    """A ``[limits]`` key has the wrong type or an impossible value."""

    code = "config.invalid"


@dataclass(frozen=True, slots=True)
class HttpLimits:
    # Sizes of the request head, checked before any body byte is read.
    max_uri_bytes: int = 8190
    max_field_bytes: int = 8190
    # Peer requests carry signatures with certificate chains and OCSP staples.
    max_peer_field_bytes: int = 65536
    max_headers: int = 100
    # Deadlines: a connection must send its first byte within
    # first_byte_timeout_s (after the TLS handshake, itself bounded by
    # tls_handshake_timeout_s on the peer port), the head must arrive within
    # header_timeout_s of its first byte, a body must keep flowing (idle) and
    # arrive at a minimum rate, and a kept-alive connection may wait
    # idle_timeout_s for its next request.
    first_byte_timeout_s: float = 5.0
    tls_handshake_timeout_s: float = 5.0
    header_timeout_s: float = 5.0
    body_idle_timeout_s: float = 10.0
    body_timeout_s: float = 600.0
    min_body_rate_bps: int = 1024
    body_grace_s: float = 5.0
    idle_timeout_s: float = 10.0
    # A kept-alive connection serves at most this many requests, and none begun
    # after it is this old: the response then says "Connection: close" and the
    # caller reconnects, so processes sharing a port (SO_REUSEPORT, a TCP
    # balancer) share requests, not just the connections made at start.
    max_requests_per_connection: int = 25
    max_connection_age_s: float = 60.0
    # Responses: each write must complete within send_idle_timeout_s, and a
    # body must leave at min_send_rate_bps or faster after send_grace_s; a
    # caller that stops reading is cut off, freeing its exchange slot.
    send_idle_timeout_s: float = 10.0
    min_send_rate_bps: int = 1024
    send_grace_s: float = 10.0
    # Caps: connections per remote address and in all (at the global cap an
    # idle connection of the address holding the most makes room for another
    # address), and exchanges in flight per client subsystem (client port) or
    # per peer certificate (peer port).
    max_connections: int = 4096
    max_connections_per_ip: int = 512
    max_in_flight_per_client: int = 64
    max_in_flight_per_peer: int = 256
    max_in_flight_per_ip: int = 256
    retry_after_s: int = 1
    # Downloads the node makes: the global configuration is read up to this
    # many bytes and refused beyond (OCSP and time-stamp answers have fixed
    # caps of their own in certs/).
    max_globalconf_bytes: int = 8 * 1024 * 1024


_FLOAT_KEYS = frozenset(
    f.name for f in dataclasses.fields(HttpLimits) if f.type in ("float", float)
)


def limits_from_table(table: Mapping[str, Any] | None) -> HttpLimits:
    """Build limits from a settings table; unknown keys and values <= 0 are refused."""
    if table is None:
        return HttpLimits()
    if not isinstance(table, Mapping):
        raise LimitsError("[limits] must be a table")
    known = {f.name for f in dataclasses.fields(HttpLimits)}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in known:
            raise LimitsError(f"limits.{key}: unknown key")
        try:
            value: float = float(raw) if key in _FLOAT_KEYS else int(raw)
        except (TypeError, ValueError) as exc:
            raise LimitsError(f"limits.{key}: expected a number, got {raw!r}") from exc
        if value <= 0:
            raise LimitsError(f"limits.{key}: must be greater than zero")
        values[key] = value
    return HttpLimits(**values)

"""Credentials a node refused: counted for Prometheus, logged at a bounded rate.

Rejected management tokens (for another node, ``alg: none``, a bad signature,
...) and failed TLS handshakes on the peer port leave a trace, without a flood
of them flooding the log: per kind, at most ``burst`` lines per ``period_s``;
the first line after a quiet spell says how many were left out. The counts
are exported as ``renkei_rejected_credentials_total{kind,reason}``.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

__all__ = ["MANAGEMENT_BEARER", "PEER_TLS", "RejectionLog", "tls_reason"]

log = structlog.get_logger(__name__)

MANAGEMENT_BEARER = "management_token"
PEER_TLS = "peer_tls"

_NOT_A_LABEL = re.compile(r"[^a-z0-9_]+")


def tls_reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason for a failed handshake as a label (``certificate_verify_failed``)."""
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "closed_during_handshake"
    reason = getattr(exc, "reason", None) or exc.__class__.__name__
    return _NOT_A_LABEL.sub("_", str(reason).lower()).strip("_")[:64] or "unknown"


@dataclass
class _Window:
    started: float
    logged: int = 0
    suppressed: int = 0


@dataclass
class RejectionLog:
    """One node process's record of refused credentials."""

    period_s: float = 60.0
    burst: int = 20
    clock: Callable[[], float] = time.monotonic
    _counts: dict[tuple[str, str], int] = field(default_factory=dict)
    _windows: dict[str, _Window] = field(default_factory=dict)

    def record(self, kind: str, reason: str, **context: str | None) -> None:
        """Count one refusal and log it unless this kind's log budget is spent."""
        key = (kind, reason)
        self._counts[key] = self._counts.get(key, 0) + 1
        now = self.clock()
        window = self._windows.get(kind)
        if window is None or now - window.started >= self.period_s:
            left_out = window.suppressed if window is not None else 0
            window = self._windows[kind] = _Window(started=now)
            if left_out:
                log.warning("credentials_rejected_not_logged", kind=kind, count=left_out)
        if window.logged >= self.burst:
            window.suppressed += 1
            return
        window.logged += 1
        log.warning("credential_rejected", kind=kind, reason=reason, **context)

    def counts(self) -> dict[tuple[str, str], int]:
        """Refusals so far by (kind, reason)."""
        return dict(self._counts)

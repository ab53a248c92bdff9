"""Maintenance mode: the node reports not ready, so balancers drain it, and finishes its work.

While maintenance is on, ``/readyz`` answers 503 and exchanges already under
way run to the end; new exchanges are still served (a balancer that has not
yet noticed must not see failures). The operator waits until ``in_flight``
is zero, then stops or upgrades the process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Maintenance"]


@dataclass
class Maintenance:
    enabled: bool = False
    since: datetime | None = None
    reason: str = ""
    in_flight: dict[str, int] = field(default_factory=lambda: {"client": 0, "peer": 0})

    def set(self, enabled: bool, *, now: datetime, reason: str = "") -> None:
        self.enabled = enabled
        self.since = now if enabled else None
        self.reason = reason if enabled else ""

    def enter(self, role: str) -> None:
        self.in_flight[role] = self.in_flight.get(role, 0) + 1

    def leave(self, role: str) -> None:
        self.in_flight[role] = max(0, self.in_flight.get(role, 0) - 1)

    def to_json(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "since": self.since.isoformat().replace("+00:00", "Z") if self.since else None,
            "reason": self.reason,
            "in_flight": sum(self.in_flight.values()),
        }

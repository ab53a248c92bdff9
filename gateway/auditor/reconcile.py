"""``renkei audit reconcile A B``: match a consumer's and a provider's rows exchange by exchange.

Rows are paired by message id and request id. For each pair the fields both
sides sign or compute must agree: request hash, body digests, signatures,
client, service and status. Unpaired rows of one role, and pairs that differ,
are listed. Each side's bundle should be verified first (``audit verify``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["COMPARED_FIELDS", "Difference", "ReconcileReport", "reconcile"]

COMPARED_FIELDS = (
    "client",
    "service",
    "method",
    "request_hash",
    "request_body_sha256",
    "request_signature",
    "response_body_sha256",
    "response_signature",
    "status",
    "purpose",
    "subject",
)


@dataclass(frozen=True)
class Difference:
    message_id: str
    field: str
    consumer: Any
    provider: Any


@dataclass
class ReconcileReport:
    matched: int = 0
    only_consumer: list[str] = field(default_factory=list)
    only_provider: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.only_consumer or self.only_provider or self.differences)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "matched": self.matched,
            "only_consumer": self.only_consumer,
            "only_provider": self.only_provider,
            "differences": [d.__dict__ for d in self.differences],
        }


def _key(row: dict[str, Any]) -> tuple[str, str | None]:
    return str(row["message_id"]), row.get("request_id")


def _exchanges(rows: Iterable[dict[str, Any]], role: str, peer: str) -> dict[Any, dict[str, Any]]:
    """Rows of ``role`` that name ``peer`` as the other node (or, without one, any)."""
    return {
        _key(row): row
        for row in rows
        if row.get("role") == role and row.get("peer_node") in (peer, None)
    }


def reconcile(
    a_rows: Iterable[dict[str, Any]], a_node: str, b_rows: Iterable[dict[str, Any]], b_node: str
) -> ReconcileReport:
    """Match exchanges between node A and node B in both directions."""
    a, b = list(a_rows), list(b_rows)
    report = ReconcileReport()
    for consumer_rows, consumer, provider_rows, provider in ((a, a_node, b, b_node),
                                                            (b, b_node, a, a_node)):
        _pair(
            _exchanges(consumer_rows, "consumer", provider),
            _exchanges(provider_rows, "provider", consumer),
            report,
        )
    return report


def _pair(consumed: dict[Any, dict[str, Any]], provided: dict[Any, dict[str, Any]],
          report: ReconcileReport) -> None:
    for key, row in consumed.items():
        other = provided.get(key)
        if other is None:
            # A refusal before the request reached the provider has no provider row.
            if row.get("request_signature") is not None:
                report.only_consumer.append(key[0])
            continue
        report.matched += 1
        for name in COMPARED_FIELDS:
            if row.get(name) != other.get(name):
                report.differences.append(Difference(key[0], name, row.get(name),
                                                     other.get(name)))
    for key, row in provided.items():
        if key not in consumed and row.get("request_signature") is not None:
            report.only_provider.append(key[0])

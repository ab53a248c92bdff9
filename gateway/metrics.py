"""Prometheus metrics of one node process, in a registry of its own (no global state).

Exchange counters and latency histograms are fed by a middleware on the client
and peer ports; gauges (audit queue depth, configuration age, certificate
expiry, OCSP response age) are read from the node's context at scrape time.
Label values come only from validated identifiers, so a caller cannot make
the label space grow with garbage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from certs.identifiers import IdentifierError, ServiceId, SubsystemId

__all__ = [
    "CONTENT_TYPE",
    "STAGES",
    "NodeMetrics",
    "StageTimer",
    "client_label",
    "service_label",
    "stage",
    "timing_stages",
]

STAGES = ("parse", "sign", "reserve", "relay", "verify", "backend", "filter", "audit")

_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def client_label(value: str | None) -> str:
    if not value:
        return "none"
    try:
        return str(SubsystemId.parse(value))
    except IdentifierError:
        return "invalid"


def service_label(raw_path: str) -> str:
    """The service id of an ``/r1/...`` path, or a fixed word when there is none."""
    parts = raw_path.split("?", 1)[0].split("/")
    if len(parts) < 7 or parts[1] != "r1":
        return "none"
    try:
        return str(ServiceId.parse("/".join(parts[2:7])))
    except IdentifierError:
        return "invalid"


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.exchanges = Counter(
            "renkei_exchanges",
            "Exchanges handled, by role, client, service, HTTP status and error code",
            ("role", "client", "service", "status", "error"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "renkei_stage_seconds",
            "Time spent per stage of an exchange",
            ("role", "stage"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "renkei_in_flight_exchanges",
            "Exchanges being served now",
            ("role",),
            registry=self.registry,
        )
        self.audit_queue = Gauge(
            "renkei_audit_queue_depth", "Audit rows waiting to be committed", registry=self.registry
        )
        self.conf_age = Gauge(
            "renkei_globalconf_age_seconds",
            "Age of the installed global configuration (-1: none)",
            registry=self.registry,
        )
        self.conf_version = Gauge(
            "renkei_globalconf_version",
            "Version of the installed global configuration",
            registry=self.registry,
        )
        self.cert_days = Gauge(
            "renkei_certificate_expiry_days",
            "Days until the node's own certificates expire",
            ("certificate",),
            registry=self.registry,
        )
        self.ocsp_age = Gauge(
            "renkei_ocsp_response_age_seconds",
            "Age of the stapled OCSP response for the node's own certificates",
            ("certificate",),
            registry=self.registry,
        )
        self.maintenance = Gauge(
            "renkei_maintenance", "1 while the node is in maintenance mode", registry=self.registry
        )

    def watch_rejections(self, counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """Export refused credentials (gateway/rejections.py), read at scrape time."""
        self.registry.register(_RejectionCollector(counts))

    def observe_exchange(
        self,
        *,
        role: str,
        client: str,
        service: str,
        status: int,
        error: str | None,
        seconds: float,
    ) -> None:
        self.exchanges.labels(role, client, service, str(status), error or "").inc()
        self.latency.labels(role, "total").observe(seconds)

    def observe_stage(self, role: str, stage: str, seconds: float) -> None:
        self.latency.labels(role, stage).observe(seconds)

    def refresh(
        self,
        *,
        now: datetime,
        audit_queue: int,
        conf_generated_at: datetime | None,
        conf_version: int | None,
        certificates: dict[str, datetime],
        ocsp_ages: dict[str, float],
        maintenance: bool,
    ) -> None:
        """Set the gauges read at scrape time."""
        self.audit_queue.set(audit_queue)
        self.conf_age.set(
            (now - conf_generated_at).total_seconds() if conf_generated_at is not None else -1
        )
        self.conf_version.set(conf_version or 0)
        for name, expires in certificates.items():
            self.cert_days.labels(name).set((expires - now).total_seconds() / 86400)
        for name, age in ocsp_ages.items():
            self.ocsp_age.labels(name).set(age)
        self.maintenance.set(1 if maintenance else 0)

    def render(self) -> bytes:
        data: Any = generate_latest(self.registry)
        return bytes(data)


class _RejectionCollector(Collector):
    def __init__(self, counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self._counts = counts

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> list[Metric]:
        family = self._family()
        for (kind, reason), count in sorted(self._counts().items()):
            family.add_metric([kind, reason], count)
        return [family]

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "renkei_rejected_credentials",
            "Credentials refused: management tokens and peer TLS handshakes, by reason",
            labels=("kind", "reason"),
        )


@dataclass(frozen=True, slots=True)
class StageTimer:
    """Where one exchange's stage times go: this process's metrics, under its role."""

    metrics: NodeMetrics
    role: str


# The exchange being served, per asyncio task (like structlog's bound message id),
# so the proxies time their stages without the metrics being passed down to them.
_CURRENT: ContextVar[StageTimer | None] = ContextVar("renkei_stage_timer", default=None)


@contextmanager
def timing_stages(timer: StageTimer) -> Iterator[None]:
    """Stages timed inside this block are observed by ``timer``."""
    token = _CURRENT.set(timer)
    try:
        yield
    finally:
        _CURRENT.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time one stage of the current exchange (a no-op outside :func:`timing_stages`)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timer = _CURRENT.get()
        if timer is not None:
            timer.metrics.observe_stage(timer.role, name, time.perf_counter() - started)

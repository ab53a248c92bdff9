"""Prometheus metrics of the member registry, in a registry of its own (no global state).

Requests are counted and timed by a middleware; labels are the matched route's
template (``/api/nodes/{id}/subsystems``), never the raw path, so a caller cannot make
the label space grow. Gauges (published configuration, signing certificate, counts of
members, nodes and catalogue entries) are read from the registry at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "RegistryMetrics", "route_label"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def route_label(request: web.Request) -> str:
    """The route template that matched, or ``unrouted``."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unrouted"


class RegistryMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "renkei_registry_requests",
            "HTTP requests answered by the registry, by route, method and status",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "renkei_registry_request_seconds",
            "Time to answer a request, by route",
            ("route",),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.conf_version = Gauge(
            "renkei_globalconf_version",
            "Version of the newest published global configuration (0: none)",
            registry=self.registry,
        )
        self.conf_age = Gauge(
            "renkei_globalconf_age_seconds",
            "Age of the newest published global configuration (-1: none)",
            registry=self.registry,
        )
        self.conf_expiry = Gauge(
            "renkei_globalconf_expires_in_seconds",
            "Time until the newest published configuration expires (negative: expired)",
            registry=self.registry,
        )
        self.cert_days = Gauge(
            "renkei_certificate_expiry_days",
            "Days until the registry's own certificates expire",
            ("certificate",),
            registry=self.registry,
        )
        self.objects = Gauge(
            "renkei_registry_objects",
            "Objects the registry holds, by kind",
            ("kind",),
            registry=self.registry,
        )

    def middleware(self) -> Any:
        @web.middleware
        async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                route = route_label(request)
                self.requests.labels(route, request.method, str(status)).inc()
                self.latency.labels(route).observe(time.perf_counter() - started)

        return measure

    def refresh(
        self,
        *,
        now: datetime,
        published: tuple[int, datetime, datetime] | None,
        certificates: dict[str, datetime],
        objects: dict[str, int],
    ) -> None:
        """Set the gauges read at scrape time; ``published`` is (version, generated, expires)."""
        if published is None:
            self.conf_version.set(0)
            self.conf_age.set(-1)
            self.conf_expiry.set(0)
        else:
            version, generated_at, expires_at = published
            self.conf_version.set(version)
            self.conf_age.set((now - generated_at).total_seconds())
            self.conf_expiry.set((expires_at - now).total_seconds())
        for name, expires in certificates.items():
            self.cert_days.labels(name).set((expires - now).total_seconds() / 86400)
        for kind, count in objects.items():
            self.objects.labels(kind).set(count)

    def render(self) -> bytes:
        data: Any = generate_latest(self.registry)
        return bytes(data)

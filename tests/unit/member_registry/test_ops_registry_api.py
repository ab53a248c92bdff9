"""Registry operations: OpenAPI in sync with the routes, operator trail, rate limits."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from member_registry.api import create_app
from member_registry.openapi import registry_openapi
from member_registry.ops_api import add_ops_routes
from member_registry.ratelimit import RateLimiter
from member_registry.service import RegistryService
from member_registry.settings import RegistrySettings
from tests.unit.member_registry.registry_samples import NOW, registry_settings

TOKEN = "s3cret-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def _settings(tmp_path: Path) -> RegistrySettings:
    return registry_settings(tmp_path, TOKEN)


def routed(app: web.Application) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method in ("HEAD", "*") or path is None:
            continue
        pairs.add((route.method.lower(), re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)))
    return pairs


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, p) for p, ops in document["paths"].items() for m in ops}


def test_openapi_documents_exactly_the_routes(service: RegistryService, tmp_path: Path) -> None:
    app = create_app(service, _settings(tmp_path), clock=lambda: NOW)
    document = registry_openapi()
    assert document["openapi"] == "3.1.0"
    assert routed(app) == documented(document)


async def test_state_changes_are_in_the_operator_trail(
    service: RegistryService, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(create_app(service, _settings(tmp_path), clock=lambda: NOW))
    assert (await client.get("/openapi.json")).status == 200
    created = await client.post(
        "/api/members", json={"id": "RENKEI/GOV/X", "name": "X"}, headers=AUTH
    )
    assert created.status == 201
    refused = await client.post("/api/members", json={"id": "bad"}, headers=AUTH)
    assert refused.status == 400
    await client.get("/api/members", headers=AUTH)  # reads are not state changes
    trail = await (await client.get("/api/operator-log", headers=AUTH)).json()
    entries = trail["entries"]
    assert [(e["method"], e["action"], e["result"]) for e in entries] == [
        ("POST", "/api/members", "ok"),
        ("POST", "/api/members", "refused"),
    ]
    assert entries[0]["at"].startswith(NOW.date().isoformat())
    assert TOKEN not in str(entries)
    # Without the admin token the trail is not readable.
    assert (await client.get("/api/operator-log")).status == 401
    bad = await client.get("/api/operator-log", params={"limit": "x"}, headers=AUTH)
    assert bad.status == 400


async def test_rate_limit_answers_429_with_retry_after(
    service: RegistryService, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    app = web.Application()
    add_ops_routes(app, service, lambda: NOW, limiter=RateLimiter(rate=0.5, burst=2))
    client = await aiohttp_client(app)
    statuses = [(await client.get("/api/operator-log", headers=AUTH)).status for _ in range(3)]
    assert statuses[:2] == [200, 200]
    limited = await client.get("/api/operator-log", headers=AUTH)
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    # Another token has its own bucket.
    other = await client.get("/api/operator-log", headers={"Authorization": "Bearer other"})
    assert other.status == 200


def test_rate_limiter_refills() -> None:
    limiter = RateLimiter(rate=1.0, burst=1)
    assert limiter.acquire("a", 0.0) == 0
    assert limiter.acquire("a", 0.1) > 0
    assert limiter.acquire("a", 1.2) == 0
    assert limiter.acquire("b", 0.1) == 0


async def test_metrics_count_requests_by_route_and_report_the_configuration(
    service: RegistryService, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(create_app(service, _settings(tmp_path), clock=lambda: NOW))
    assert (await client.post("/api/versions", headers=AUTH)).status == 201
    await client.get("/api/nodes/RENKEI%2FGOV%2FX%2Fn1/nothing", headers=AUTH)
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()
    assert (
        'renkei_registry_requests_total{method="POST",route="/api/versions",status="201"} 1.0'
        in text
    )
    # Labels are route templates, never raw paths: an unrouted path is one label.
    assert 'route="unrouted"' in text
    assert "RENKEI%2FGOV" not in text
    assert "renkei_globalconf_version 1.0" in text
    assert "renkei_globalconf_age_seconds 0.0" in text
    assert 'renkei_certificate_expiry_days{certificate="registry_signing"}' in text
    assert 'renkei_registry_objects{kind="members"} 0.0' in text

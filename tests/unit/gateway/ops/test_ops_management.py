"""The node's management operations: OpenAPI in sync, maintenance, operator trail,
rate limits and metrics."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from certs.keys import generate_key
from gateway.app import client_app, management_app, peer_app
from gateway.console.app import install_console
from gateway.console.links import CitizenLinks
from gateway.db import create_engine
from gateway.metrics import client_label, service_label
from gateway.openapi import node_openapi
from gateway.operator_log import NODE_OPERATOR_LOG
from gateway.ops_api import NodeOps, install_ops
from gateway.rejections import RejectionLog
from gateway.schema import upgrade_node_schema
from gateway.tokens import TokenIssuer
from member_registry.ratelimit import RateLimiter

NOW = datetime.now(UTC).replace(microsecond=0)  # PyJWT checks expiry on the real clock
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def routed(app: web.Application) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method in ("HEAD", "*") or path is None:
            continue
        if path.startswith("/console/"):
            continue  # the web console's pages, not the JSON API (docs/console.md)
        pairs.add((route.method.lower(), re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)))
    return pairs


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(generate_key(), audience="RENKEI/GOV/HOSP-B/ss1")  # type: ignore[arg-type]


@pytest.fixture
async def context(tmp_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
    await upgrade_node_schema(engine)
    certificate = SimpleNamespace(not_valid_after_utc=NOW + timedelta(days=30))
    yield SimpleNamespace(
        engine=engine,
        policy=None,
        clock=lambda: NOW,
        node_id="RENKEI/GOV/HOSP-B/ss1",
        conf=SimpleNamespace(latest=lambda: SimpleNamespace(generated_at=NOW, version=7)),
        auth_certificate=certificate,
        signers={"RENKEI/GOV/HOSP-B": SimpleNamespace(chain=(certificate,))},
        audit=SimpleNamespace(queue_depth=3),
        settings=SimpleNamespace(max_body_bytes=1024),
        rejections=RejectionLog(),
        ngsi_ld=None,
    )
    await engine.dispose()


def _apps(context: Any, issuer: TokenIssuer, ops: NodeOps) -> web.Application:
    management = management_app(context, issuer)
    install_ops(
        context, ops, client=client_app(context), peer=peer_app(context), management=management
    )
    install_console(management, maintenance=ops.maintenance,
                    links=CitizenLinks(generate_key(), context.node_id))  # type: ignore[arg-type]
    return management


def _bearer(issuer: TokenIssuer, role: str, subject: str = "alice") -> dict[str, str]:
    token = issuer.issue(role=role, subject=subject, now=NOW, ttl=timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


def test_openapi_documents_exactly_the_management_routes(context: Any, issuer: TokenIssuer) -> None:
    document = node_openapi()
    assert document["openapi"] == "3.1.0"
    described = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert routed(_apps(context, issuer, NodeOps())) == described


async def test_maintenance_turns_readyz_503_and_is_in_the_trail(
    context: Any, issuer: TokenIssuer, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(_apps(context, issuer, NodeOps()))
    admin = _bearer(issuer, "admin")
    # Only an admin may change it.
    consent = _bearer(issuer, "consent", "desk")
    denied = await client.put("/api/maintenance", json={"enabled": True}, headers=consent)
    assert denied.status == 403
    assert (await client.put("/api/maintenance", json={"enabled": True})).status == 401
    bad = await client.put("/api/maintenance", json={"enabled": "yes"}, headers=admin)
    assert bad.status == 400
    entered = await client.put(
        "/api/maintenance", json={"enabled": True, "reason": "upgrade"}, headers=admin
    )
    assert (await entered.json())["enabled"] is True
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"]["maintenance"]["reason"] == "upgrade"

    trail = await client.get("/api/operator-log", headers=admin)
    entries = (await trail.json())["entries"]
    assert [(e["actor"], e["role"], e["status"], e["result"]) for e in entries] == [
        ("desk", "consent", 403, "refused"),
        ("anonymous", "none", 401, "refused"),
        ("alice", "admin", 400, "refused"),
        ("alice", "admin", 200, "ok"),
    ]
    assert all(e["action"] == "/api/maintenance" for e in entries)
    assert "Bearer" not in str(entries)
    auditor = _bearer(issuer, "auditor", "bob")
    assert (await client.get("/api/operator-log", headers=auditor)).status == 403
    only_alice = await client.get("/api/operator-log", params={"actor": "alice"}, headers=admin)
    assert len((await only_alice.json())["entries"]) == 2


async def test_rate_limit_per_token(
    context: Any, issuer: TokenIssuer, aiohttp_client: ClientFactory
) -> None:
    ops = NodeOps(limiter=RateLimiter(rate=0.1, burst=2))
    client = await aiohttp_client(_apps(context, issuer, ops))
    first, second = _bearer(issuer, "admin"), _bearer(issuer, "admin")
    for _ in range(2):
        assert (await client.get("/api/maintenance", headers=first)).status == 200
    limited = await client.get("/api/maintenance", headers=first)
    assert limited.status == 429
    assert (await limited.json())["type"] == "management.rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert (await client.get("/api/maintenance", headers=second)).status == 200


async def test_metrics_exposition(
    context: Any, issuer: TokenIssuer, aiohttp_client: ClientFactory
) -> None:
    ops = NodeOps()
    ops.metrics.observe_exchange(
        role="client",
        client="RENKEI/GOV/HOSP-A/EHR",
        service="RENKEI/GOV/HOSP-B/EHR/patients",
        status=200,
        error=None,
        seconds=0.02,
    )
    client = await aiohttp_client(_apps(context, issuer, ops))
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    assert 'renkei_exchanges_total{client="RENKEI/GOV/HOSP-A/EHR"' in text
    assert "renkei_stage_seconds_bucket" in text
    assert "renkei_audit_queue_depth 3.0" in text
    assert "renkei_globalconf_version 7.0" in text
    assert 'renkei_certificate_expiry_days{certificate="auth"} 30.0' in text


def test_metric_labels_only_from_valid_identifiers() -> None:
    assert client_label("RENKEI/GOV/HOSP-A/EHR") == "RENKEI/GOV/HOSP-A/EHR"
    assert client_label("<script>") == "invalid"
    assert client_label(None) == "none"
    assert service_label("/r1/RENKEI/GOV/HOSP-B/EHR/patients/Patient/1?x=1") == (
        "RENKEI/GOV/HOSP-B/EHR/patients"
    )
    assert service_label("/r1/a b/c/d/e/f") == "invalid"
    assert service_label("/listClients") == "none"


async def test_the_trail_says_what_changed_and_its_chain_is_verified(
    context: Any, issuer: TokenIssuer, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(_apps(context, issuer, NodeOps()))
    admin = _bearer(issuer, "admin")
    await client.put("/api/maintenance", json={"enabled": True, "reason": "upgrade"}, headers=admin)
    await client.put("/api/maintenance", json={"enabled": False}, headers=admin)
    entries = (await (await client.get("/api/operator-log", headers=admin)).json())["entries"]
    changes = [json.loads(entry["change"]) for entry in entries]
    assert [(c["before"]["enabled"], c["after"]["enabled"]) for c in changes] == [
        (False, True), (True, False),
    ]
    assert changes[0]["after"]["reason"] == "upgrade"
    auditor = _bearer(issuer, "auditor", "bob")
    verified = await client.get("/api/operator-log/verify", headers=auditor)
    assert await verified.json() == {"ok": True, "entries": 2}
    # Someone with database access rewrites what the first change was.
    async with context.engine.begin() as conn:
        await conn.execute(
            update(NODE_OPERATOR_LOG).where(NODE_OPERATOR_LOG.c.seq == 1).values(actor="mallory")
        )
    broken = await client.get("/api/operator-log/verify", headers=auditor)
    assert broken.status == 409
    assert (await broken.json())["seq"] == 1

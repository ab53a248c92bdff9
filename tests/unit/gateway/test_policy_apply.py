"""``POST /api/policy/apply`` and ``renkei policy apply``: a dry run first, one
transaction, and the operator trail."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from certs.identifiers import ServiceId, SubsystemId
from certs.keys import generate_key
from gateway.app import client_app, management_app, peer_app
from gateway.ops_api import NodeOps, install_ops
from gateway.policy_apply_cli import describe_changes
from gateway.rejections import RejectionLog
from gateway.schema import upgrade_node_schema
from gateway.tokens import TokenIssuer
from policies.access import AccessRight
from policies.store import PolicyStore
from tests.unit.gateway.db_fixtures import EngineFactory, engines  # noqa: F401 - fixture
from tests.unit.gateway.node_files import node_files

NOW = datetime.now(UTC).replace(microsecond=0)
ECHO = ServiceId.parse("RENKEI/GOV/HOSP-B/EHR/echo")
CLINIC = SubsystemId.parse("RENKEI/GOV/HOSP-A/EHR")
INSURER = SubsystemId.parse("RENKEI/COM/INSURER/CLAIMS")
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
POLICY = f"""
[[service]]
id = "{ECHO}"
media_types = ["application/json"]
fields = ["name", "age"]
public_fields = ["age"]

[[access]]
service = "{ECHO}"
grantee = "{CLINIC}"
"""


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(generate_key(), audience="RENKEI/GOV/HOSP-B/ss1")  # type: ignore[arg-type]


@pytest.fixture
async def store(engines: EngineFactory) -> PolicyStore:  # noqa: F811
    engine = engines()
    await upgrade_node_schema(engine)
    policy = PolicyStore(engine)
    await policy.create_schema()
    return policy


def _management(store: PolicyStore, engine: AsyncEngine, issuer: TokenIssuer) -> web.Application:
    context = SimpleNamespace(
        engine=engine, policy=store, clock=lambda: NOW, node_id="RENKEI/GOV/HOSP-B/ss1",
        settings=SimpleNamespace(max_body_bytes=1 << 20), rejections=RejectionLog(), ngsi_ld=None,
    )  # fmt: skip
    management = management_app(context, issuer)  # type: ignore[arg-type]
    install_ops(
        context,  # type: ignore[arg-type]
        NodeOps(), client=client_app(context), peer=peer_app(context),  # type: ignore[arg-type]
        management=management,
    )
    return management


def _bearer(issuer: TokenIssuer, role: str) -> dict[str, str]:
    token = issuer.issue(role=role, subject="alice", now=NOW, ttl=timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


async def test_dry_run_lists_changes_and_writes_nothing(
    store: PolicyStore, issuer: TokenIssuer, aiohttp_client: ClientFactory
) -> None:
    stray = await store.grant_access(AccessRight(ECHO, INSURER), now=NOW)
    client = await aiohttp_client(_management(store, store._engine, issuer))
    admin = _bearer(issuer, "admin")
    response = await client.post(
        "/api/policy/apply", json={"policy": POLICY, "dry_run": True}, headers=admin
    )
    assert response.status == 200, await response.text()
    plan = await response.json()
    assert plan["applied"] is False
    assert [(c["kind"], c["action"]) for c in plan["changes"]] == [
        ("service", "add"), ("access", "remove"), ("access", "add"),
    ]
    removed = plan["changes"][1]
    assert removed["before"]["grantee"] == str(INSURER)
    assert removed["after"] is None
    assert await store.list_access() == [stray]
    assert await store.service_declaration(ECHO) is None

    applied = await client.post("/api/policy/apply", json={"policy": POLICY}, headers=admin)
    document = await applied.json()
    assert document["applied"] is True
    assert document["changes"] == plan["changes"]
    [right] = await store.list_access()
    assert right.grantee == CLINIC
    again = await client.post("/api/policy/apply", json={"policy": POLICY}, headers=admin)
    assert (await again.json())["changes"] == []

    trail = await (await client.get("/api/operator-log", headers=admin)).json()
    applies = [e for e in trail["entries"] if e["action"] == "/api/policy/apply"]
    assert [(e["actor"], e["status"]) for e in applies] == [("alice", 200)] * 3
    # What the apply changed, before and after, keyed by what it is.
    change = json.loads(applies[1]["change"])
    removed = f"access {ECHO} {INSURER} * *"
    assert change["before"][removed]["grantee"] == str(INSURER)
    assert change["after"][removed] is None
    assert change["before"][f"service {ECHO}"] is None
    assert change["after"][f"service {ECHO}"]["public_fields"] == ["age"]


async def test_only_an_admin_applies_and_a_bad_file_changes_nothing(
    store: PolicyStore, issuer: TokenIssuer, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(_management(store, store._engine, issuer))
    denied = await client.post(
        "/api/policy/apply", json={"policy": POLICY}, headers=_bearer(issuer, "consent")
    )
    assert denied.status == 403
    broken = POLICY + '\n[[access]]\nservice = "nope"\ngrantee = "x"\n'
    refused = await client.post(
        "/api/policy/apply", json={"policy": broken}, headers=_bearer(issuer, "admin")
    )
    assert refused.status == 400
    body = await refused.json()
    assert body["type"] == "policies.file_invalid"
    assert "[[access]] #2" in body["message"]
    assert await store.service_declaration(ECHO) is None
    shape = await client.post(
        "/api/policy/apply", json={"policy": 7}, headers=_bearer(issuer, "admin")
    )
    assert shape.status == 400


async def test_a_failing_change_leaves_nothing_applied(store: PolicyStore) -> None:
    async def grant_then_fail() -> None:
        async with store.atomic() as bound:
            await bound.grant_access(AccessRight(ECHO, CLINIC), now=NOW)
            raise RuntimeError("the second change failed")

    with pytest.raises(RuntimeError):
        await grant_then_fail()
    assert await store.list_access() == []


def test_the_summary_names_each_change() -> None:
    lines = describe_changes(
        {
            "applied": False,
            "changes": [
                {"kind": "access", "key": "a", "action": "add", "before": None, "after": {}},
                {"kind": "service", "key": "s", "action": "change",
                 "before": {"fields": ["x"], "description": ""},
                 "after": {"fields": ["x", "y"], "description": ""}},
            ],
        },
        "policy.toml",
    )  # fmt: skip
    assert lines[0] == "policy.toml: 2 change(s) (dry run, nothing written)"
    assert lines[1].split() == ["+", "access", "a"]
    assert lines[2].split() == ["~", "service", "s", "changes", "fields"]


def test_cli_applies_into_a_stopped_node(tmp_path: Path) -> None:
    config = node_files(tmp_path)
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    base = [sys.executable, "-m", "gateway.cli", "policy", "apply", str(policy),
            "--config", str(config)]  # fmt: skip
    dry = subprocess.run([*base, "--dry-run", "--json"], capture_output=True, text=True,
                         check=False, timeout=60)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["applied"] is False
    done = subprocess.run(base, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{policy}: 2 change(s) (applied)")
    again = subprocess.run(base, capture_output=True, text=True, check=False, timeout=60)
    assert "already matches" in again.stdout

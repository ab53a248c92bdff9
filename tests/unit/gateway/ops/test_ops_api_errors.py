"""Management API: every error is a Problem document; the rate limit comes from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.openapi import node_openapi
from gateway.ops_api import NodeOps
from gateway.settings import SettingsError, load_node_settings
from gateway.tokens import TokenIssuer
from tests.unit.gateway.ops.test_ops_management import (  # noqa: F401 - fixtures
    ClientFactory,
    _apps,
    _bearer,
    context,
    issuer,
)


def _node_file(tmp_path: Path, management: str = "") -> Path:
    path = tmp_path / "node.toml"
    path.write_text(
        'node_id = "RENKEI/GOV/HOSP-A/ss1"\nanchor = "anchor.json"\n'
        f"[management]\nport = 0\n{management}\n"
        '[keys]\nauth_key = "a.key"\nauth_certificate = "a.pem"\ntoken_key = "t.key"\n'
    )
    return path


def test_rate_limit_defaults_and_overrides(tmp_path: Path) -> None:
    defaults = load_node_settings(_node_file(tmp_path), {})
    assert (defaults.management_rate_limit_per_s, defaults.management_rate_limit_burst) == (
        20.0,
        60,
    )
    raised = load_node_settings(
        _node_file(tmp_path, "rate_limit_per_s = 50"),
        {"RENKEI_NODE_MANAGEMENT__RATE_LIMIT_BURST": "100000"},
    )
    limiter = NodeOps.from_settings(raised).limiter
    assert (limiter.rate, limiter.burst) == (50.0, 100000)


@pytest.mark.parametrize(
    "management",
    ["rate_limit_per_s = 0", "rate_limit_per_s = -2", 'rate_limit_per_s = "x"',
     "rate_limit_burst = 0", 'rate_limit_per_s = "inf"'],
)
def test_bad_rate_limits_are_rejected(tmp_path: Path, management: str) -> None:
    with pytest.raises(SettingsError, match="rate_limit"):
        load_node_settings(_node_file(tmp_path, management), {})


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/audit/proof/sideways", 404),
        ("GET", "/api/no-such-route", 404),
        ("PATCH", "/api/maintenance", 405),
    ],
)
async def test_router_refusals_are_json(
    context: Any,  # noqa: F811 - the imported fixture
    issuer: TokenIssuer,  # noqa: F811 - the imported fixture
    aiohttp_client: ClientFactory,
    method: str,
    path: str,
    status: int,
) -> None:
    client = await aiohttp_client(_apps(context, issuer, NodeOps()))
    response = await client.request(method, path, headers=_bearer(issuer, "admin"))
    assert response.status == status
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["type"].startswith("management.")
    if status == 405:
        assert "PUT" in response.headers["Allow"]


def test_every_operation_documents_the_guard_refusals() -> None:
    document = node_openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "408", "413", "414", "431"):
                assert status in operation["responses"], (method, path, status)
    proof = document["paths"]["/api/audit/proof/{kind}"]["get"]
    kinds = [p for p in proof["parameters"] if p["name"] == "kind"]
    assert kinds == [{"name": "kind", "in": "path", "required": True,
                      "schema": {"enum": ["inclusion", "consistency"]}}]


@pytest.mark.parametrize("after_id", [str(2**63), "-1", "x"])
async def test_operator_log_refuses_ids_beyond_the_database(
    context: Any,  # noqa: F811 - the imported fixture
    issuer: TokenIssuer,  # noqa: F811 - the imported fixture
    aiohttp_client: ClientFactory,
    after_id: str,
) -> None:
    client = await aiohttp_client(_apps(context, issuer, NodeOps()))
    response = await client.get("/api/operator-log", params={"after_id": after_id},
                                headers=_bearer(issuer, "admin"))
    assert response.status == 400

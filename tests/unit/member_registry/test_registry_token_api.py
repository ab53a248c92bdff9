"""The registry's /api/ with bearer JWTs: roles, refusals, the subject in the operator trail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import ec

from certs.keys import generate_key, save_private_key
from member_registry.api import create_app
from member_registry.errors import ConfigurationError, RoleRefused
from member_registry.ops_api import Operator, check_role, load_registry_tokens
from member_registry.service import RegistryService
from member_registry.settings import RegistrySettings
from member_registry.tokens import BearerTokens, registry_tokens
from tests.unit.member_registry.registry_samples import NOW

STATIC = "s3cret-admin-token-0123456789"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def _settings(tmp_path: Path) -> RegistrySettings:
    (tmp_path / "admin-token").write_text(STATIC)
    save_private_key(generate_key("ec-p256"), tmp_path / "token-key.pem")
    return RegistrySettings(
        instance="RENKEI",
        database_url="unused",
        signing_key_path=tmp_path / "k",
        signing_cert_path=tmp_path / "c",
        admin_token_file=tmp_path / "admin-token",
        token_key_path=tmp_path / "token-key.pem",
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def settings(tmp_path: Path) -> RegistrySettings:
    return _settings(tmp_path)


@pytest.fixture
def tokens(settings: RegistrySettings) -> BearerTokens:
    assert settings.token_key_path is not None
    return registry_tokens(settings.token_key_path, settings.instance)


@pytest.fixture
async def client(
    service: RegistryService, settings: RegistrySettings, aiohttp_client: ClientFactory
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(service, settings, clock=lambda: NOW))


def _issue(tokens: BearerTokens, role: str, subject: str = "alice") -> str:
    return tokens.issue(role=role, subject=subject, now=NOW, ttl=timedelta(hours=8))


async def test_admin_jwt_changes_and_the_trail_names_its_subject(
    client: TestClient[Any, Any], tokens: BearerTokens
) -> None:
    admin = _bearer(_issue(tokens, "admin", "alice"))
    created = await client.post("/api/members", json={"id": "RENKEI/GOV/X", "name": "X"},
                                headers=admin)
    assert created.status == 201
    static = await client.post("/api/members", json={"id": "RENKEI/GOV/Y", "name": "Y"},
                               headers=_bearer(STATIC))
    assert static.status == 201
    trail = (await (await client.get("/api/operator-log", headers=admin)).json())["entries"]
    assert [(e["actor"], e["role"], e["result"]) for e in trail] == [
        ("alice", "admin", "ok"),
        ("registry-admin", "admin", "ok"),
    ]


async def test_auditor_reads_but_cannot_change(
    client: TestClient[Any, Any], tokens: BearerTokens
) -> None:
    auditor = _bearer(_issue(tokens, "auditor", "bob"))
    assert (await client.get("/api/members", headers=auditor)).status == 200
    refused = await client.post("/api/members", json={"id": "RENKEI/GOV/Z", "name": "Z"},
                                headers=auditor)
    assert refused.status == 403
    assert (await refused.json())["type"] == "registry.forbidden"
    assert (await client.get("/api/members", headers=_bearer(STATIC))).status == 200
    trail = await (await client.get("/api/operator-log", headers=_bearer(STATIC))).json()
    assert [(e["actor"], e["role"], e["status"]) for e in trail["entries"]] == [
        ("bob", "auditor", 403)
    ]
    members = await (await client.get("/api/members", headers=auditor)).json()
    assert "RENKEI/GOV/Z" not in str(members)


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Basic " + STATIC,
        "Bearer not-a-jwt",
        "Bearer " + STATIC[:-1],
    ],
)
async def test_refused_without_a_valid_token(
    client: TestClient[Any, Any], authorization: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get("/api/members", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await response.json())["type"] == "registry.unauthorized"


async def test_tokens_from_another_key_or_audience_are_refused(
    client: TestClient[Any, Any], tokens: BearerTokens
) -> None:
    other_key = BearerTokens(ec.generate_private_key(ec.SECP256R1()), tokens.audience,
                             {"admin"})
    node_key = BearerTokens(ec.generate_private_key(ec.SECP256R1()), "RENKEI/GOV/A/ss1",
                            {"admin"})
    expired = tokens.issue(role="admin", subject="x", now=NOW - timedelta(hours=9),
                           ttl=timedelta(hours=8))
    for token in (_issue(other_key, "admin"), _issue(node_key, "admin"), expired):
        assert (await client.get("/api/members", headers=_bearer(token))).status == 401


async def test_without_a_token_key_only_the_static_token_works(
    service: RegistryService, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    with_key = _settings(tmp_path)
    assert with_key.token_key_path is not None
    jwt_token = _issue(registry_tokens(with_key.token_key_path, "RENKEI"), "admin")
    app = create_app(service, replace(with_key, token_key_path=None), clock=lambda: NOW)
    client = await aiohttp_client(app)
    assert (await client.get("/api/members", headers=_bearer(jwt_token))).status == 401
    assert (await client.get("/api/members", headers=_bearer(STATIC))).status == 200


def test_an_unusable_token_key_is_a_configuration_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    (tmp_path / "broken.pem").write_text("not a key")
    with pytest.raises(ConfigurationError):
        load_registry_tokens(replace(settings, token_key_path=tmp_path / "broken.pem"))
    with pytest.raises(ConfigurationError):
        load_registry_tokens(replace(settings, token_key_path=tmp_path / "missing.pem"))


@pytest.mark.parametrize(
    ("role", "method", "allowed"),
    [
        ("admin", "POST", True),
        ("admin", "DELETE", True),
        ("auditor", "GET", True),
        ("auditor", "PUT", False),
        ("auditor", "POST", False),
        ("consent", "GET", False),
        ("", "GET", False),
    ],
)
def test_check_role(role: str, method: str, allowed: bool) -> None:
    operator = Operator(subject="s", role=role, token_id=None)
    if allowed:
        check_role(operator, method)
    else:
        with pytest.raises(RoleRefused):
            check_role(operator, method)


async def test_router_refusals_are_problem_documents(client: TestClient[Any, Any]) -> None:
    missing = await client.get("/no-such-route")
    assert missing.status == 404
    assert (await missing.json())["type"] == "registry.not_found"
    wrong = await client.patch("/api/members", headers=_bearer(STATIC))
    assert wrong.status == 405
    assert (await wrong.json())["type"] == "registry.method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


def test_every_operation_documents_the_parser_refusals() -> None:
    from member_registry.openapi import registry_openapi

    for path, operations in registry_openapi()["paths"].items():
        for method, operation in operations.items():
            content = operation["responses"]["400"]["content"]
            assert {"application/json", "text/plain"} <= content.keys(), (method, path)


@pytest.mark.parametrize("after_id", [str(2**63), "-1"])
async def test_operator_log_refuses_ids_beyond_the_database(
    client: TestClient[Any, Any], after_id: str
) -> None:
    response = await client.get("/api/operator-log", params={"after_id": after_id},
                                headers=_bearer(STATIC))
    assert response.status == 400

"""The registration routes: public submission, admin listing and decisions, auto-approval."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from certs.ca import CertificateAuthority
from member_registry._certificates import fingerprint
from member_registry.api import create_app
from member_registry.errors import ConfigurationError
from member_registry.service import RegistryService
from member_registry.settings import RegistrySettings, load_settings
from tests.unit.member_registry.registration_samples import (
    CLINIC,
    CLINIC_NODE,
    OTHER_MEMBER,
    credentials,
    signed_request,
)
from tests.unit.member_registry.registry_samples import NOW

TOKEN = "s3cret-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def _settings(tmp_path: Path, auto_approve: tuple[str, ...] = ()) -> RegistrySettings:
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")
    return RegistrySettings(
        instance="RENKEI", database_url="unused", signing_key_path=tmp_path / "k",
        signing_cert_path=tmp_path / "c", admin_token_file=token_file,
        auto_approve_members=auto_approve,
    )


@pytest.fixture
async def registry(service: RegistryService, instance_ca: CertificateAuthority) -> RegistryService:
    await service.add_trusted_ca(instance_ca.certificate)
    await service.add_member(CLINIC, "Clinic")
    return service


async def _client(registry: RegistryService, tmp_path: Path, factory: ClientFactory,
                  auto_approve: tuple[str, ...] = ()) -> TestClient[Any, Any]:
    return await factory(create_app(registry, _settings(tmp_path, auto_approve),
                                    clock=lambda: NOW))


async def test_submit_list_approve(registry: RegistryService, tmp_path: Path,
                                   aiohttp_client: ClientFactory,
                                   instance_ca: CertificateAuthority) -> None:
    client = await _client(registry, tmp_path, aiohttp_client)
    creds = credentials(instance_ca)
    response = await client.post("/registrations",
                                 json=signed_request(creds).to_json_dict())
    assert response.status == 202
    document = await response.json()
    assert document["status"] == "pending"
    assert document["node"] == str(CLINIC_NODE)
    assert document["auth_fingerprint"] == fingerprint(creds.auth_certificate)

    listing = await client.get("/api/registrations?status=pending", headers=AUTH)
    assert [r["id"] for r in await listing.json()] == [document["id"]]
    one = await client.get(f"/api/registrations/{document['id']}", headers=AUTH)
    assert (await one.json())["status"] == "pending"

    approved = await client.post(f"/api/registrations/{document['id']}/approve", headers=AUTH)
    assert approved.status == 200
    assert (await approved.json())["status"] == "approved"
    nodes = await (await client.get("/api/nodes", headers=AUTH)).json()
    assert [n["id"] for n in nodes] == [str(CLINIC_NODE)]

    again = await client.post(f"/api/registrations/{document['id']}/reject", headers=AUTH)
    assert again.status == 409
    assert (await again.json())["type"] == "registry.registration_decided"


async def test_admin_routes_need_the_token(registry: RegistryService, tmp_path: Path,
                                           aiohttp_client: ClientFactory) -> None:
    client = await _client(registry, tmp_path, aiohttp_client)
    for method, path in (("GET", "/api/registrations"), ("GET", "/api/registrations/1"),
                         ("POST", "/api/registrations/1/approve"),
                         ("POST", "/api/registrations/1/reject")):
        response = await client.request(method, path)
        assert response.status == 401


async def test_refusals_are_json_with_codes(registry: RegistryService, tmp_path: Path,
                                            aiohttp_client: ClientFactory,
                                            instance_ca: CertificateAuthority) -> None:
    client = await _client(registry, tmp_path, aiohttp_client)
    wrong_member = signed_request(credentials(instance_ca, member=OTHER_MEMBER))
    cases: list[tuple[Any, int, str]] = [
        (b"not json", 400, "registry.registration_refused"),
        ({"proof_of_possession": "x"}, 400, "registry.registration_refused"),
        ({"proof_of_possession": "x", "member_consent": "y"}, 400,
         "registry.registration_signature_invalid"),
        (wrong_member.to_json_dict(), 400, "registry.registration_identity_mismatch"),
    ]
    for body, status, code in cases:
        if isinstance(body, bytes):
            response = await client.post("/registrations", data=body)
        else:
            response = await client.post("/registrations", json=body)
        assert response.status == status
        assert (await response.json())["type"] == code
    assert await (await client.get("/api/registrations", headers=AUTH)).json() == []

    bad_status = await client.get("/api/registrations?status=maybe", headers=AUTH)
    assert bad_status.status == 400
    bad_id = await client.post("/api/registrations/abc/approve", headers=AUTH)
    assert bad_id.status == 400
    missing = await client.post("/api/registrations/99/approve", headers=AUTH)
    assert missing.status == 404


async def test_replay_is_refused(registry: RegistryService, tmp_path: Path,
                                 aiohttp_client: ClientFactory,
                                 instance_ca: CertificateAuthority) -> None:
    client = await _client(registry, tmp_path, aiohttp_client)
    body = signed_request(credentials(instance_ca)).to_json_dict()
    assert (await client.post("/registrations", json=body)).status == 202
    replay = await client.post("/registrations", json=body)
    assert replay.status == 400
    assert (await replay.json())["type"] == "registry.registration_replayed"


async def test_auto_approve_from_settings(registry: RegistryService, tmp_path: Path,
                                          aiohttp_client: ClientFactory,
                                          instance_ca: CertificateAuthority) -> None:
    client = await _client(registry, tmp_path, aiohttp_client, (str(CLINIC),))
    response = await client.post("/registrations",
                                 json=signed_request(credentials(instance_ca)).to_json_dict())
    document = await response.json()
    assert document["status"] == "approved"
    assert document["decided_by"] == "auto-approve"
    conf = await registry.build_global_conf(NOW)
    assert conf.node(CLINIC_NODE) is not None


def test_settings_field_defaults_to_nobody(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings.auto_approve_members == ()
    assert dataclasses.replace(settings, auto_approve_members=("*",)).auto_approve_members


def test_auto_approve_members_from_toml_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "registry.toml"
    config.write_text('instance = "RENKEI"\nsigning_key_path = "k"\nsigning_cert_path = "c"\n'
                      'admin_token_file = "t"\nauto_approve_members = ["RENKEI/GOV/CLINIC"]\n')
    assert load_settings(config, {}).auto_approve_members == ("RENKEI/GOV/CLINIC",)
    overridden = load_settings(
        config, {"RENKEI_REGISTRY_AUTO_APPROVE_MEMBERS": "RENKEI/GOV/A, RENKEI/GOV/B"})
    assert overridden.auto_approve_members == ("RENKEI/GOV/A", "RENKEI/GOV/B")
    config.write_text(config.read_text().replace('["RENKEI/GOV/CLINIC"]', "3"))
    with pytest.raises(ConfigurationError):
        load_settings(config, {})

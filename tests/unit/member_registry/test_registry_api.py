from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography import x509

from certs.keys import certificate_pem
from member_registry._certificates import fingerprint
from member_registry.anchor import Anchor
from member_registry.api import create_app
from member_registry.errors import ConfigurationError
from member_registry.service import RegistryService
from member_registry.settings import RegistrySettings
from member_registry.signing import verify_global_conf
from tests.unit.member_registry.registry_samples import (
    EHR,
    NODE1,
    NOW,
    PLANNING,
    TRANSIT,
    make_certificate,
)

TOKEN = "s3cret-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def _settings(tmp_path: Path, token: str = TOKEN) -> RegistrySettings:
    token_file = tmp_path / "admin-token"
    token_file.write_text(token + "\n")
    return RegistrySettings(
        instance="RENKEI", database_url="unused", signing_key_path=tmp_path / "k",
        signing_cert_path=tmp_path / "c", admin_token_file=token_file,
    )


@pytest.fixture
async def client(service: RegistryService, tmp_path: Path,
                 aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(service, _settings(tmp_path), clock=lambda: NOW))


def _path_id(identifier: object) -> str:
    return quote(str(identifier), safe="")


async def test_globalconf_verifies_against_the_anchor(
    client: TestClient[Any, Any], anchor: Anchor
) -> None:
    response = await client.get("/globalconf")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/jose"
    assert response.headers["Cache-Control"] == "no-store"
    conf = verify_global_conf(await response.text(), anchor, now=NOW)
    assert conf.version == 1
    # Nothing changed: the same version is served again.
    again = await client.get("/globalconf")
    assert verify_global_conf(await again.text(), anchor, now=NOW).version == 1


async def test_healthz(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
     {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"},
     {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN[:-1]}"}],
)
async def test_admin_endpoints_refuse_bad_tokens(
    client: TestClient[Any, Any], headers: dict[str, str]
) -> None:
    response = await client.post("/api/members", headers=headers,
                                 json={"id": "RENKEI/GOV/X", "name": "x"})
    assert response.status == 401
    assert (await response.json())["type"] == "registry.unauthorized"
    assert (await (await client.get("/api/members", headers=AUTH)).json()) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/members"), ("GET", "/api/nodes"), ("GET", "/api/versions"),
     ("POST", "/api/nodes/RENKEI%2FGOV%2FHOSP-A%2Fnode1/auth-certificates"),
     ("DELETE", f"/api/nodes/RENKEI%2FGOV%2FHOSP-A%2Fnode1/auth-certificates/{'a' * 64}"),
     ("PUT", "/api/settings"), ("POST", "/api/versions"), ("GET", "/api/unknown")],
)
async def test_every_admin_endpoint_requires_the_token(
    client: TestClient[Any, Any], method: str, path: str
) -> None:
    response = await client.request(method, path, json={})
    assert response.status == 401


async def test_admin_workflow(
    client: TestClient[Any, Any], anchor: Anchor, ca_certificate: x509.Certificate,
    auth_certificate: x509.Certificate,
) -> None:
    async def post(path: str, body: dict[str, Any]) -> Any:
        response = await client.post(path, json=body, headers=AUTH)
        assert response.status == 201, await response.text()
        return await response.json()

    await post("/api/members", {"id": "RENKEI/GOV/HOSP-A", "name": "Hospital A"})
    await post("/api/members", {"id": "RENKEI/GOV/CITY", "name": "City"})
    await post("/api/subsystems", {"id": str(EHR), "name": "Electronic health records"})
    await post("/api/subsystems", {"id": str(PLANNING)})
    await post("/api/nodes", {"id": str(NODE1), "address": "127.0.0.1", "peer_port": 5500})
    await post("/api/trusted-cas", {"certificate": certificate_pem(ca_certificate),
                                    "ocsp_urls": ["http://127.0.0.1:8888"]})
    added = await post(f"/api/nodes/{_path_id(NODE1)}/auth-certificates",
                       {"certificate": certificate_pem(auth_certificate)})
    assert added["fingerprint"] == fingerprint(auth_certificate)
    await post(f"/api/nodes/{_path_id(NODE1)}/subsystems", {"subsystem": str(EHR)})
    await post("/api/groups", {"id": str(TRANSIT), "description": "Transit partners"})
    await post(f"/api/groups/{_path_id(TRANSIT)}/members", {"subsystem": str(PLANNING)})
    await post("/api/tsas", {"name": "TSA", "url": "http://127.0.0.1:8889",
                             "certificate": certificate_pem(ca_certificate)})

    nodes = await (await client.get("/api/nodes", headers=AUTH)).json()
    assert nodes[0]["auth_cert_sha256"] == [fingerprint(auth_certificate)]
    members = await (await client.get("/api/members", headers=AUTH)).json()
    assert [m["id"] for m in members] == ["RENKEI/GOV/CITY", "RENKEI/GOV/HOSP-A"]
    for path in ("/api/subsystems", "/api/groups", "/api/trusted-cas", "/api/tsas",
                 "/api/settings", "/api/versions"):
        assert (await client.get(path, headers=AUTH)).status == 200

    conf = verify_global_conf(await (await client.get("/globalconf")).text(), anchor, now=NOW)
    assert conf.is_hosted_on(EHR, NODE1)
    assert conf.groups_of(PLANNING) == frozenset({TRANSIT})
    # The subsystem's name travels in the signed configuration (listClients' subsystem_name).
    names = {str(m.id): dict(m.subsystem_names) for m in conf.members}
    assert names == {"RENKEI/GOV/CITY": {}, "RENKEI/GOV/HOSP-A": {EHR: "Electronic health records"}}

    published = await post("/api/versions", {})
    assert published["version"] == conf.version + 1

    removed = await client.delete(
        f"/api/nodes/{_path_id(NODE1)}/auth-certificates/{fingerprint(auth_certificate)}",
        headers=AUTH)
    assert removed.status == 204


async def test_settings_can_be_replaced(client: TestClient[Any, Any]) -> None:
    body = {"refresh_interval_s": 30, "validity_s": 300, "ocsp_freshness_s": 900,
            "timestamping_interval_s": 30}
    response = await client.put("/api/settings", json=body, headers=AUTH)
    assert response.status == 200
    assert await (await client.get("/api/settings", headers=AUTH)).json() == body
    bad = await client.put("/api/settings", json={**body, "extra": 1}, headers=AUTH)
    assert bad.status == 400


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/members", {"id": "RENKEI/GOV", "name": "x"}, 400, "registry.bad_request"),
        ("/api/members", {"id": "RENKEI/GOV/X"}, 400, "registry.bad_request"),
        ("/api/members", {"id": "RENKEI/GOV/X", "name": "x", "more": 1}, 400,
         "registry.bad_request"),
        ("/api/members", {"id": 5, "name": "x"}, 400, "registry.bad_request"),
        ("/api/subsystems", {"id": "RENKEI/GOV/NOBODY/S"}, 404, "registry.not_found"),
        ("/api/nodes", {"id": "RENKEI/GOV/NOBODY/n", "address": "a", "peer_port": "1"}, 400,
         "registry.bad_request"),
        (f"/api/nodes/{_path_id(NODE1)}/auth-certificates", {"certificate": "junk"}, 400,
         "registry.bad_request"),
        ("/api/nodes/RENKEI%2FGOV/subsystems", {"subsystem": str(EHR)}, 400,
         "registry.bad_request"),
        (f"/api/nodes/{_path_id(NODE1)}/subsystems", {"subsystem": str(EHR)}, 404,
         "registry.not_found"),
        ("/api/trusted-cas", {"certificate": "junk"}, 400, "registry.bad_request"),
    ],
)
async def test_errors_are_json(client: TestClient[Any, Any], path: str, body: dict[str, Any],
                               status: int, code: str) -> None:
    response = await client.post(path, json=body, headers=AUTH)
    assert response.status == status
    document = await response.json()
    assert document["type"] == code
    assert document["message"]


async def test_duplicate_is_409(client: TestClient[Any, Any]) -> None:
    body = {"id": "RENKEI/GOV/X", "name": "x"}
    assert (await client.post("/api/members", json=body, headers=AUTH)).status == 201
    response = await client.post("/api/members", json=body, headers=AUTH)
    assert response.status == 409
    assert (await response.json())["type"] == "registry.conflict"


async def test_non_json_body_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.post("/api/members", data=b"{oops", headers=AUTH)
    assert response.status == 400


async def test_short_admin_token_is_refused(service: RegistryService, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        create_app(service, _settings(tmp_path, token="short"))


def test_sample_certificate_is_not_a_ca() -> None:
    assert make_certificate("leaf").extensions.get_extension_for_class(
        x509.BasicConstraints).value.ca is False

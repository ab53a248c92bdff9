"""``/api/services``: add, change, disable, remove a service at runtime, in the trail."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from certs.identifiers import NodeId, ServiceId, SubsystemId
from certs.keys import generate_key
from gateway.app import client_app, management_app, peer_app
from gateway.ops_api import NodeOps, install_ops
from gateway.rejections import RejectionLog
from gateway.schema import upgrade_node_schema
from gateway.services import ServiceState, ServiceStore
from gateway.tokens import TokenIssuer
from policies.access import AccessRight
from policies.store import PolicyStore
from tests.unit.gateway.db_fixtures import EngineFactory, engines  # noqa: F401 - fixture

NOW = datetime.now(UTC).replace(microsecond=0)
NODE = NodeId.parse("RENKEI/GOV/HOSP-B/ss1")
EHR = SubsystemId.parse("RENKEI/GOV/HOSP-B/EHR")
ELSEWHERE = SubsystemId.parse("RENKEI/GOV/HOSP-A/EHR")
FHIR = EHR.service("fhir")
OPENAPI = {"openapi": "3.0.3", "paths": {"/Patient/{id}": {"get": {}}, "/Patient": {"post": {}}}}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


class Conf:
    """The global configuration as far as the services API asks: who is hosted here."""

    def is_hosted_on(self, subsystem: SubsystemId, node: NodeId) -> bool:
        return subsystem == EHR and node == NODE


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(generate_key(), audience=str(NODE))  # type: ignore[arg-type]


@dataclass
class Node:
    client: TestClient[Any, Any]
    state: ServiceState
    policy: PolicyStore


@pytest.fixture
async def node(
    engines: EngineFactory, issuer: TokenIssuer, aiohttp_client: ClientFactory  # noqa: F811
) -> Node:
    engine = engines()
    await upgrade_node_schema(engine)
    policy = PolicyStore(engine)
    await policy.create_schema()
    state = ServiceState(ServiceStore(engine))
    await state.reload()
    context = SimpleNamespace(
        engine=engine, policy=policy, services=state, clock=lambda: NOW, node_id=str(NODE),
        settings=SimpleNamespace(max_body_bytes=1 << 20, node_id=NODE),
        rejections=RejectionLog(), conf=SimpleNamespace(current=lambda now: Conf()), ngsi_ld=None,
    )  # fmt: skip
    management = management_app(context, issuer)  # type: ignore[arg-type]
    install_ops(
        context,  # type: ignore[arg-type]
        NodeOps(), client=client_app(context), peer=peer_app(context),  # type: ignore[arg-type]
        management=management,
    )
    return Node(await aiohttp_client(management), state, policy)


def _bearer(issuer: TokenIssuer, role: str = "admin") -> dict[str, str]:
    token = issuer.issue(role=role, subject="alice", now=NOW, ttl=timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


async def test_add_change_disable_remove_without_a_restart(
    node: Node, issuer: TokenIssuer
) -> None:
    admin = _bearer(issuer)
    client, state = node.client, node.state
    added = await client.post(
        "/api/services",
        json={"id": str(FHIR), "backend": "http://10.0.0.7/fhir", "openapi": OPENAPI,
              "timeout_s": 20, "tls": {"verify": True}},
        headers=admin,
    )  # fmt: skip
    assert added.status == 201, await added.text()
    document = await added.json()
    assert document["service_type"] == "OPENAPI"
    assert document["endpoints"] == [
        {"method": "GET", "path": "/Patient/*"}, {"method": "POST", "path": "/Patient"}
    ]
    served = state.current.get(FHIR)  # this process serves it at once
    assert served is not None
    assert served.timeout_s == 20

    again = await client.post(
        "/api/services", json={"id": str(FHIR), "backend": "http://x"}, headers=admin
    )
    assert (again.status, (await again.json())["type"]) == (409, "management.service_exists")

    disabled = await client.patch(f"/api/services/{FHIR}", json={"enabled": False}, headers=admin)
    assert (await disabled.json())["enabled"] is False
    assert state.current.get(FHIR).enabled is False  # type: ignore[union-attr]
    listed = await (await client.get("/api/services", headers=_bearer(issuer, "auditor"))).json()
    assert [s["id"] for s in listed["services"]] == [str(FHIR)]

    policy = node.policy
    await policy.grant_access(AccessRight(FHIR, ELSEWHERE), now=NOW)
    removed = await client.delete(f"/api/services/{FHIR}", headers=admin)
    assert await removed.json() == {"removed": str(FHIR), "access_rights_revoked": 1}
    assert state.current.get(FHIR) is None
    assert await policy.list_access(FHIR) == []
    gone = await client.get(f"/api/services/{FHIR}", headers=admin)
    assert (gone.status, (await gone.json())["type"]) == (404, "management.service_not_found")

    trail = await (await client.get("/api/operator-log", headers=admin)).json()
    changes = [
        (e["method"], json.loads(e["change"])) for e in trail["entries"] if e["status"] < 300
    ]
    assert changes[0][0] == "POST"
    assert changes[0][1]["before"] is None
    assert changes[0][1]["after"]["backend"] == "http://10.0.0.7/fhir"
    assert changes[1][1]["before"]["enabled"] is True
    assert changes[1][1]["after"]["enabled"] is False
    assert changes[2][0] == "DELETE"
    assert changes[2][1]["after"] is None


async def test_openapi_from_a_url_is_fetched_once(node: Node, issuer: TokenIssuer) -> None:
    client = node.client

    async def described(_: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    app = web.Application()
    app.router.add_get("/openapi.json", described)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/openapi.json"))
        added = await client.post(
            "/api/services",
            json={"id": str(FHIR), "backend": "http://b", "openapi_url": url},
            headers=_bearer(issuer),
        )
    finally:
        await server.close()
    document = await added.json()
    assert added.status == 201, document
    assert document["openapi_source"] == url
    # The server is gone: the description was kept, not fetched per call.
    shown = await (await client.get(f"/api/services/{FHIR}", headers=_bearer(issuer))).json()
    assert len(shown["endpoints"]) == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"id": str(ELSEWHERE.service("x")), "backend": "http://b"}, 400, "not hosted"),
        ({"id": str(EHR.service("listMethods")), "backend": "http://b"}, 400, "metaservice"),
        ({"id": str(FHIR), "backend": "ftp://b"}, 400, "http://"),
        ({"id": str(FHIR), "backend": "http://b", "timeout_s": True}, 400, "wrong type"),
        ({"id": str(FHIR), "backend": "http://b", "colour": "red"}, 400, "unknown key"),
        ({"id": str(FHIR), "backend": "http://b", "tls": {"pin": "x"}}, 400, "tls.pin"),
        ({"id": str(FHIR), "backend": "http://b", "openapi": {"swagger": "2.0"}}, 400, "3.x"),
        ({"id": str(FHIR), "backend": "http://b",
          "openapi_url": "http://127.0.0.1:9/none"}, 400, "cannot fetch"),
        ({"id": "not/a/service", "backend": "http://b"}, 400, ""),
        ({"backend": "http://b"}, 400, "required"),
    ],
)  # fmt: skip
async def test_a_bad_service_is_refused_and_nothing_changes(
    node: Node, issuer: TokenIssuer, body: dict[str, Any], status: int, code: str
) -> None:
    client, state = node.client, node.state
    response = await client.post("/api/services", json=body, headers=_bearer(issuer))
    assert response.status == status
    assert code in (await response.json())["message"]
    client, state = node.client, node.state
    assert (await state.reload()).all() == ()


async def test_only_an_admin_changes_services(node: Node, issuer: TokenIssuer) -> None:
    client = node.client
    body = {"id": str(FHIR), "backend": "http://b"}
    for role in ("auditor", "consent"):
        response = await client.post("/api/services", json=body, headers=_bearer(issuer, role))
        assert response.status == 403
    assert (await client.post("/api/services", json=body)).status == 401
    unknown = ServiceId.parse(f"{EHR}/absent")
    patched = await client.patch(
        f"/api/services/{unknown}", json={"enabled": False}, headers=_bearer(issuer)
    )
    assert patched.status == 404

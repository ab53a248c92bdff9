"""The node's management API answers what its OpenAPI document says.

Real answers of a management application on a fresh database (SQLite and
PostgreSQL) are validated against the document's schemas, and no 2xx body may be
described as a bare object: a route whose answer changes without its description
fails here, not only in ``make schemathesis``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import ec

from certs.identifiers import MemberId, NodeId, SubsystemId
from certs.keys import certificate_pem, generate_key
from gateway.app import management_app
from gateway.audit.models import AuditEntry
from gateway.audit.writer import AuditWriter
from gateway.client_auth import ConnectionType
from gateway.client_auth_store import ClientAuthState, ClientAuthStore
from gateway.openapi import node_openapi
from gateway.ops_api import NodeOps, install_ops
from gateway.rejections import RejectionLog
from gateway.schema import upgrade_node_schema
from gateway.services import ServiceState, ServiceStore
from gateway.settings import SignKeySettings
from gateway.tokens import ClientTokens, TokenIssuer
from member_registry.signing import generate_signing_identity
from policies.store import PolicyStore
from tests.unit.gateway.db_fixtures import EngineFactory, engines  # noqa: F401 - fixture
from tests.unit.openapi_conformance import Answers, assert_conform, bare_schemas

NOW = datetime.now(UTC).replace(microsecond=0)  # PyJWT checks expiry on the real clock
NODE = NodeId.parse("RENKEI/GOV/HOSP-B/ss1")
EHR = SubsystemId.parse("RENKEI/GOV/HOSP-B/EHR")
SERVICE = EHR.service("fhir")
CLIENT = "/api/clients/{instance}/{member_class}/{member_code}/{subsystem}"
CLIENT_URL = "/api/clients/RENKEI/GOV/HOSP-B/EHR"
POLICY = f"""
[[purpose]]
consumer = "{EHR}"
code = "care"
text = "Treatment"

[[service]]
id = "{SERVICE}"
description = "Patient records"
consent_governed = true
media_types = ["application/fhir+json"]
subject = {{ path = "/Patient/{{subject}}/**" }}
fields = ["Patient.name", "Patient.birthDate"]

[[access]]
service = "{SERVICE}"
grantee = "{EHR}"
method = "GET"
path = "**"
"""
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


class Conf:
    """The global configuration as far as these routes ask: which subsystems exist and
    are hosted here."""

    global_groups = ()

    def is_hosted_on(self, subsystem: SubsystemId, node: NodeId) -> bool:
        return subsystem == EHR and node == NODE

    def has_subsystem(self, subsystem: SubsystemId) -> bool:
        return subsystem == EHR

    def member(self, _: MemberId) -> None:
        return None


async def _exchange_logged(engine: Any) -> None:
    """One provider-side exchange about subject EE123, in the audit chain."""
    writer = AuditWriter(engine, str(NODE))
    await writer.start()
    try:
        await writer.append(
            AuditEntry(
                role="provider", message_id="RENKEI-1", logged_at=NOW, request_id="r1",
                client=str(EHR), service=str(SERVICE), method="GET", path="/Patient/EE123",
                subject="EE123", purpose="care", status=200, request_size=0, response_size=10,
                backend_ms=1.5,
            )
        )  # fmt: skip
    finally:
        await writer.stop()


async def _management(engine: Any, issuer: TokenIssuer, tmp_path: Path) -> web.Application:
    await upgrade_node_schema(engine)
    await _exchange_logged(engine)
    policy = PolicyStore(engine)
    await policy.create_schema()
    services = ServiceState(ServiceStore(engine))
    await services.reload()
    client_auth = ClientAuthState(ClientAuthStore(engine))
    await client_auth.reload()
    sign_key = SignKeySettings(MemberId.parse("RENKEI/GOV/HOSP-B"), tmp_path / "k", tmp_path / "c")
    context = SimpleNamespace(
        engine=engine, policy=policy, services=services, client_auth=client_auth,
        client_default=ConnectionType.HTTPS,
        client_tokens=ClientTokens(ec.generate_private_key(ec.SECP256R1()), str(NODE)),
        clock=lambda: NOW, node_id=str(NODE), rejections=RejectionLog(),
        settings=SimpleNamespace(max_body_bytes=1 << 20, node_id=NODE, sign_keys=(sign_key,),
                                 client_allow_unauthenticated=False, receipt_controller={}),
        conf=SimpleNamespace(current=lambda now: Conf(), latest=Conf), signers={},
    )  # fmt: skip
    management = management_app(context, issuer)  # type: ignore[arg-type]
    install_ops(
        context,  # type: ignore[arg-type]
        NodeOps(), client=web.Application(), peer=web.Application(), management=management,
    )
    return management


def test_no_2xx_body_is_a_bare_object() -> None:
    assert bare_schemas(node_openapi()) == []


async def test_real_answers_validate_against_the_document(
    engines: EngineFactory,  # noqa: F811
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    issuer = TokenIssuer(generate_key(), audience=str(NODE))  # type: ignore[arg-type]
    token = issuer.issue(role="admin", subject="alice", now=NOW, ttl=timedelta(hours=1))
    api = Answers(
        await aiohttp_client(await _management(engines(), issuer, tmp_path)),
    )
    admin = {"headers": {"Authorization": f"Bearer {token}"}}
    call = api.call
    await call("GET", "/healthz")
    await call("GET", "/openapi.json")
    await call("PUT", "/api/maintenance", json={"enabled": True, "reason": "upgrade"}, **admin)
    await call("PUT", "/api/maintenance", json={"enabled": False}, **admin)
    await call("GET", "/api/maintenance", **admin)

    one = "/api/services/{service_id}"
    at = f"/api/services/{SERVICE}"
    await call("POST", "/api/services", json={"id": str(SERVICE), "backend": "http://10.0.0.7",
               "openapi": {"openapi": "3.0.3", "paths": {"/Patient/{id}": {"get": {}}}}},
               **admin)  # fmt: skip
    await call("PATCH", one, at, json={"title": "Patients", "timeout_s": 5}, **admin)
    await call("GET", one, at, **admin)
    await call("GET", "/api/services", **admin)

    await call("POST", "/api/purposes",
               json={"consumer": str(EHR), "code": "care", "text": "Treatment"}, **admin)
    await call("GET", "/api/purposes", **admin)
    await call("GET", "/api/declarations", **admin)
    right = await call("POST", "/api/access",
                       json={"service": str(SERVICE), "grantee": str(EHR)}, **admin)
    await call("GET", "/api/access", "/api/access?service=" + str(SERVICE), **admin)
    await call("DELETE", "/api/access/{right_id}", f"/api/access/{right['id']}", **admin)
    await call("POST", "/api/policy/apply", json={"policy": POLICY, "dry_run": True}, **admin)
    await call("POST", "/api/policy/apply", json={"policy": POLICY}, **admin)
    await call("GET", "/api/declarations", **admin)
    consent = await call("POST", "/api/consents", json={
        "subject": "EE123", "consumer": str(EHR), "service": str(SERVICE), "purpose": "care",
        "fields": ["*"]}, **admin)  # fmt: skip
    consent_url = f"/api/consents/{consent['consent']['id']}"
    await call("GET", "/api/consents/{consent_id}", consent_url, **admin)
    await call("DELETE", "/api/consents/{consent_id}", consent_url, **admin)
    await call("GET", "/api/consents", "/api/consents?include_inactive=true", **admin)
    await call("DELETE", one, at, **admin)

    await call("PUT", f"{CLIENT}/connection-type", f"{CLIENT_URL}/connection-type",
               json={"connection_type": "TOKEN"}, **admin)
    issued = await call("POST", f"{CLIENT}/tokens", f"{CLIENT_URL}/tokens",
                        json={"ttl_s": 60}, **admin)
    _, certificate = generate_signing_identity("RENKEI", NOW)
    added = await call("POST", f"{CLIENT}/certificates", f"{CLIENT_URL}/certificates",
                       json={"certificate": certificate_pem(certificate)}, **admin)
    await call("GET", "/api/clients", **admin)
    await call("DELETE", f"{CLIENT}/certificates/{{sha256}}",
               f"{CLIENT_URL}/certificates/{added['sha256']}", **admin)
    await call("DELETE", f"{CLIENT}/tokens/{{token_id}}",
               f"{CLIENT_URL}/tokens/{issued['token_id']}", **admin)

    await call("GET", "/api/audit/rows", "/api/audit/rows?limit=10", **admin)
    await call("GET", "/api/audit/verify", **admin)
    await call("GET", "/api/audit/checkpoints", **admin)
    proof = "/api/audit/proof/{kind}"
    await call("GET", proof, "/api/audit/proof/inclusion?tree_size=1&seq=1", **admin)
    await call("GET", proof, "/api/audit/proof/consistency?tree_size=1&old=1", **admin)
    await call("GET", "/api/audit/operational", **admin)
    await call("GET", "/api/audit/subject/{subject}", "/api/audit/subject/EE123", **admin)
    await call("DELETE", "/api/audit/subject/{subject}/bodies",
               "/api/audit/subject/EE123/bodies", **admin)
    await call("GET", "/api/operator-log/verify", **admin)
    await call("GET", "/api/operator-log", "/api/operator-log?limit=50", **admin)

    assert_conform(node_openapi(), api.seen)
    got = {a.template: a.body for a in api.seen if a.method == "GET"}
    # Real documents were validated, not empty lists.
    assert len(got["/api/operator-log"]["entries"]) >= 10
    assert got["/api/audit/rows"]["rows"]
    assert got["/api/audit/operational"]["records"]
    assert got["/api/audit/subject/{subject}"]["exchanges"]
    clients = got["/api/clients"]["clients"]
    assert clients[0]["certificates"]
    assert clients[0]["tokens"]

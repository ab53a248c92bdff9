"""The registry's API answers what its OpenAPI document says.

Real answers of the registry application on a fresh database (SQLite and
PostgreSQL) are validated against the document's schemas, and no 2xx body may be
described as a bare object.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography import x509

from certs.ca import CertificateAuthority
from certs.keys import generate_key
from certs.profiles import make_csr
from member_registry._certificates import certificate_to_pem
from member_registry.api import create_app
from member_registry.catalogue import sign_publication
from member_registry.openapi import registry_openapi
from member_registry.service import RegistryService
from tests.unit.member_registry.registration_samples import CLINIC, credentials, signed_request
from tests.unit.member_registry.registry_samples import NODE1, NOW, registry_settings
from tests.unit.openapi_conformance import Answers, assert_conform, bare_schemas

TOKEN = "s3cret-admin-token-0123456789"
MEMBER = "RENKEI/GOV/HOSP-A"
SUBSYSTEM = f"{MEMBER}/EHR"
NODE = str(NODE1)
SERVICE = f"{SUBSYSTEM}/patients"
PUBLISHED = [
    {
        "id": SERVICE,
        "title": "Patient records",
        "description": "FHIR R4 patient records, released per consent",
        "declaration": {"fields": ["name"], "consent_governed": True},
        "openapi": {"openapi": "3.1.0", "info": {"title": "patients", "version": "1"}},
    }
]
NODE_URL = f"/api/nodes/{quote(NODE, safe='')}"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def test_no_2xx_body_is_a_bare_object() -> None:
    assert bare_schemas(registry_openapi()) == []


async def test_real_answers_validate_against_the_document(
    service: RegistryService,
    instance_ca: CertificateAuthority,
    ca_certificate: x509.Certificate,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    auth_key = generate_key()
    auth_certificate = instance_ca.issue(make_csr(auth_key, NODE1, "auth"), profile="auth",
                                         now=NOW)  # fmt: skip
    app = create_app(service, registry_settings(tmp_path, TOKEN), clock=lambda: NOW)
    api = Answers(await aiohttp_client(app))
    admin = {"headers": {"Authorization": f"Bearer {TOKEN}"}}
    call = api.call
    await call("GET", "/healthz")
    await call("GET", "/openapi.json")
    pem = certificate_to_pem(ca_certificate)
    await call("POST", "/api/trusted-cas",
               json={"certificate": pem, "ocsp_urls": ["http://127.0.0.1:8888"]}, **admin)
    await call("POST", "/api/members", json={"id": MEMBER, "name": "Hospital A"}, **admin)
    await call("POST", "/api/subsystems", json={"id": SUBSYSTEM, "name": "EHR"}, **admin)
    await call("POST", "/api/nodes",
               json={"id": NODE, "address": "127.0.0.1", "peer_port": 8443}, **admin)
    await call("POST", "/api/nodes/{id}/auth-certificates", f"{NODE_URL}/auth-certificates",
               json={"certificate": certificate_to_pem(auth_certificate)}, **admin)
    await call("POST", "/api/nodes/{id}/subsystems", f"{NODE_URL}/subsystems",
               json={"subsystem": SUBSYSTEM}, **admin)
    await call("POST", "/api/groups", json={"id": "RENKEI/clinics", "description": "Clinics"},
               **admin)  # fmt: skip
    await call("POST", "/api/groups/{id}/members", "/api/groups/RENKEI%2Fclinics/members",
               json={"subsystem": SUBSYSTEM}, **admin)
    await call("POST", "/api/tsas",
               json={"name": "TSA", "url": "http://127.0.0.1:8889", "certificate": pem}, **admin)
    settings = await call("GET", "/api/settings", **admin)
    await call("PUT", "/api/settings", json=settings, **admin)
    await call("POST", "/api/versions", **admin)
    await call("POST", "/api/members", json={"id": str(CLINIC), "name": "Clinic"}, **admin)
    for decision in ("reject", "approve"):
        submitted = await call("POST", "/registrations",
                               json=signed_request(credentials(instance_ca)).to_json_dict())
        one = f"/api/registrations/{submitted['id']}"
        await call("GET", "/api/registrations/{id}", one, **admin)
        await call("POST", f"/api/registrations/{{id}}/{decision}", f"{one}/{decision}", **admin)
    await call("GET", "/api/registrations", "/api/registrations?status=all", **admin)
    for listing in ("members", "subsystems", "nodes", "groups", "trusted-cas", "tsas",
                    "versions", "registrations"):  # fmt: skip
        await call("GET", f"/api/{listing}", **admin)
    await call("POST", "/catalogue/publish",
               data=sign_publication(auth_key, auth_certificate, NODE1, PUBLISHED, NOW),
               headers={"Content-Type": "application/jose"})  # fmt: skip
    await call("GET", "/catalogue", "/catalogue?q=patient")
    entry = f"/catalogue/services/{quote(SERVICE, safe='')}"
    await call("GET", "/catalogue/services/{service}", entry)
    await call("GET", "/catalogue/services/{service}/openapi.json", f"{entry}/openapi.json")
    await call("GET", "/catalogue/dcat")
    await call("GET", "/api/operator-log", "/api/operator-log?limit=50", **admin)

    assert_conform(registry_openapi(), api.seen)
    listed = {a.template: a.body for a in api.seen if a.method == "GET"}
    # Real documents were validated, not empty lists.
    assert all(listed[f"/api/{name}"] for name in ("members", "nodes", "groups", "versions"))
    assert listed["/catalogue"]["services"]
    assert len(listed["/api/registrations"]) == 2

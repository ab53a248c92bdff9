"""The API catalogue: signed publication by a node, search, DCAT-AP export, refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, FOAF
from yarl import URL

from certs.ca import CertificateAuthority
from certs.identifiers import NodeId
from certs.keys import generate_key
from certs.profiles import make_csr
from member_registry.api import create_app
from member_registry.catalogue import sign_publication
from member_registry.service import RegistryService
from member_registry.settings import RegistrySettings
from tests.unit.member_registry.dcat_shapes import violations
from tests.unit.member_registry.registry_samples import EHR, HOSP_A, NODE1, NOW

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
SERVICES = [
    {
        "id": f"{EHR}/patients",
        "title": "Patient records",
        "description": "FHIR R4 patient records, released per consent",
        "declaration": {"fields": ["name", "birthDate"], "consent_governed": True},
        "openapi": {"openapi": "3.1.0", "info": {"title": "patients", "version": "1"}},
    },
    {"id": f"{EHR}/appointments", "title": "Appointments", "description": "Clinic calendar"},
]


@pytest.fixture
async def registry(
    service: RegistryService, tmp_path: Path, instance_ca: CertificateAuthority
) -> tuple[RegistryService, Any, Any]:
    key = generate_key()
    certificate = instance_ca.issue(make_csr(key, NODE1, "auth"), profile="auth", now=NOW)
    await service.add_member(HOSP_A, "Hospital A")
    await service.add_subsystem(EHR)
    await service.add_node(NODE1, "127.0.0.1", 8443)
    await service.add_node_auth_certificate(NODE1, certificate)
    await service.add_hosted_subsystem(NODE1, EHR)
    return service, key, certificate


@pytest.fixture
async def client(
    registry: tuple[RegistryService, Any, Any], tmp_path: Path, aiohttp_client: ClientFactory
) -> TestClient[Any, Any]:
    token_file = tmp_path / "admin-token"
    token_file.write_text("s3cret-admin-token-0123456789")
    settings = RegistrySettings(
        instance="RENKEI",
        database_url="unused",
        signing_key_path=tmp_path / "k",
        signing_cert_path=tmp_path / "c",
        admin_token_file=token_file,
    )
    return await aiohttp_client(create_app(registry[0], settings, clock=lambda: NOW))


async def _publish(client: TestClient[Any, Any], token: str) -> Any:
    return await client.post(
        "/catalogue/publish", data=token, headers={"Content-Type": "application/jose"}
    )


async def test_publish_search_and_dcat(
    client: TestClient[Any, Any], registry: tuple[RegistryService, Any, Any]
) -> None:
    _, key, certificate = registry
    response = await _publish(client, sign_publication(key, certificate, NODE1, SERVICES, NOW))
    assert response.status == 200, await response.text()
    assert await response.json() == {"node": str(NODE1), "services": 2}

    found = await (await client.get("/catalogue", params={"q": "fhir patient"})).json()
    assert [s["service"] for s in found["services"]] == [f"{EHR}/patients"]
    everything = await (await client.get("/catalogue")).json()
    assert len(everything["services"]) == 2

    document = await client.get(f"/catalogue/services/{EHR}/patients/openapi.json")
    assert document.status == 404  # identifiers in paths are percent-encoded
    encoded = str(EHR).replace("/", "%2F")
    document = await client.get(f"/catalogue/services/{encoded}%2Fpatients/openapi.json")
    assert (await document.json())["openapi"] == "3.1.0"

    dcat = await client.get("/catalogue/dcat")
    assert dcat.content_type == "application/ld+json"
    base = str(client.make_url(""))
    graph = Graph().parse(data=await dcat.text(), format="json-ld", publicID=base)
    assert violations(graph) == ""  # the official DCAT-AP 3.0.0 shapes, via pyshacl
    identifiers = {str(o) for o in graph.objects(None, DCTERMS.identifier)}
    assert identifiers == {s["id"] for s in SERVICES}
    names = {str(o) for o in graph.objects(None, FOAF.name)}
    assert "Hospital A" in names
    turtle = await client.get("/catalogue/dcat", headers={"Accept": "text/turtle"})
    assert turtle.content_type == "text/turtle"
    assert Graph().parse(data=await turtle.text(), format="turtle").isomorphic(graph)

    # Every IRI the catalogue names at the registry resolves (the service id's "/" encoded).
    iris = {str(term).split("#")[0] for triple in graph for term in triple
            if isinstance(term, URIRef) and str(term).startswith(base.rstrip("/"))}
    assert len(iris) == 4  # the catalogue, two services, one OpenAPI description
    for iri in sorted(iris):
        resolved = await client.get(URL(iri, encoded=True).raw_path)
        assert resolved.status == 200, iri
    patients = await client.get(f"/catalogue/services/{encoded}%2Fpatients")
    assert (await patients.json())["r1_path"] == f"/r1/{EHR}/patients"


async def test_a_new_publication_replaces_the_old_one(
    client: TestClient[Any, Any], registry: tuple[RegistryService, Any, Any]
) -> None:
    _, key, certificate = registry
    await _publish(client, sign_publication(key, certificate, NODE1, SERVICES, NOW))
    await _publish(client, sign_publication(key, certificate, NODE1, SERVICES[1:], NOW))
    everything = await (await client.get("/catalogue")).json()
    assert [s["service"] for s in everything["services"]] == [f"{EHR}/appointments"]


async def test_refusals(
    client: TestClient[Any, Any],
    registry: tuple[RegistryService, Any, Any],
    instance_ca: CertificateAuthority,
) -> None:
    _, key, certificate = registry
    other_key = generate_key()
    other = instance_ca.issue(make_csr(other_key, NODE1, "auth"), profile="auth", now=NOW)
    stranger = NodeId.parse("RENKEI/GOV/HOSP-A/node2")
    cases = [
        sign_publication(other_key, other, NODE1, SERVICES, NOW),  # certificate not registered
        sign_publication(key, certificate, stranger, SERVICES, NOW),  # another node
        sign_publication(key, certificate, NODE1, SERVICES, NOW - timedelta(minutes=10)),
        sign_publication(key, certificate, NODE1, [{"id": "RENKEI/GOV/X/Y/z"}], NOW),
        sign_publication(key, certificate, NODE1, [{"id": "not an id"}], NOW),
        sign_publication(other_key, certificate, NODE1, SERVICES, NOW),  # wrong key
        "not-a-jws",
    ]
    for token in cases:
        response = await _publish(client, token)
        assert response.status == 403, token
        assert (await response.json())["type"] == "registry.catalogue_refused"
    assert (await (await client.get("/catalogue")).json())["services"] == []

"""Through one real sandbox federation (its start dominates the cost, so it is shared):
metaservices in X-Road's PR-MREST shapes, the registry's API catalogue fed by the
nodes' pushes, and no field value in any process's log."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
from rdflib import Graph
from rdflib.namespace import DCAT, DCTERMS
from yarl import URL

import gateway.sandbox
from gateway.sandbox.backends import fhir_patients
from tests.functional.sandbox_helpers import client_headers, node, sandbox_process
from tests.unit.member_registry.dcat_shapes import violations

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
OUTSIDER = "RENKEI/COM/INSURER/CLAIMS"
PROVIDER = "RENKEI/GOV/HOSP-B/EHR"
HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"


# The default federation plus a service without an OpenAPI description (X-Road's
# service_type REST), the case getOpenAPI must refuse with its documented error.
FEEDS = """
[[service]]
id = "RENKEI/GOV/HOSP-B/EHR/feeds"
backend = "echo"
allowed = ["RENKEI/GOV/HOSP-A/EHR"]
description = "Hospital B's news feeds (no OpenAPI description)"
"""


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("metaservices") / "sandbox"
    description = directory.parent / "federation.toml"
    default = Path(gateway.sandbox.__file__).parent / "default.toml"
    description.write_text(default.read_text("utf-8") + FEEDS, "utf-8")
    with sandbox_process(directory, description=description) as document:
        yield document


def _client_url(federation: dict[str, Any]) -> str:
    return str(node(federation, HOSP_A)["client_url"])


async def _get(
    federation: dict[str, Any],
    path: str,
    client: str = CONSUMER,
    accept: str = "application/json",
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{_client_url(federation)}{path}",
            headers={**client_headers(federation, client), "Accept": accept},
        ) as response,
    ):
        return response.status, dict(response.headers), await response.json(content_type=None)


async def test_list_clients_answers_json_on_request(federation: dict[str, Any]) -> None:
    status, headers, body = await _get(federation, "/listClients")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert {
        "id": {
            "member_class": "GOV",
            "member_code": "HOSP-B",
            "object_type": "MEMBER",
            "xroad_instance": "RENKEI",
        },
        "name": "Hospital B",
    } in body["member"]
    assert {
        "id": {
            "member_class": "GOV",
            "member_code": "HOSP-B",
            "subsystem_code": "EHR",
            "object_type": "SUBSYSTEM",
            "xroad_instance": "RENKEI",
        },
        "name": "Hospital B",
        "subsystem_name": "Electronic health records",
    } in body["member"]
    # xRoadInstance names the instance; this node knows only its own.
    status, _, other = await _get(federation, "/listClients?xRoadInstance=OTHER")
    assert (status, other) == (200, {"member": []})
    status, _, same = await _get(federation, "/listClients?xRoadInstance=RENKEI")
    assert same == body


async def test_list_clients_answers_xml_by_default(federation: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{_client_url(federation)}/listClients") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
        root = ElementTree.fromstring(await response.read())
    xroad, ids = "{http://x-road.eu/xsd/xroad.xsd}", "{http://x-road.eu/xsd/identifiers}"
    assert root.tag == f"{xroad}clientList"
    subsystems = {
        member.findtext(f"{xroad}id/{ids}subsystemCode"): member.findtext(f"{xroad}subsystemName")
        for member in root.findall(f"{xroad}member")
        if member.find(f"{xroad}id").get(f"{ids}objectType") == "SUBSYSTEM"  # type: ignore[union-attr]
    }
    assert subsystems["TIMETABLE"] == "Timetables and live positions"
    assert subsystems["CLAIMS"] is None


async def test_list_methods_lists_the_providers_services(federation: dict[str, Any]) -> None:
    status, headers, body = await _get(federation, f"/r1/{PROVIDER}/listMethods")
    assert status == 200, body
    # Relayed and signed like any exchange: the provider node answered it.
    assert headers["X-Road-Service"] == f"{PROVIDER}/listMethods"
    services = {service["service_code"]: service for service in body["service"]}
    assert sorted(services) == ["echo", "feeds", "patients"]
    patients = services["patients"]
    assert patients["object_type"] == "SERVICE"
    assert patients["subsystem_code"] == "EHR"
    # Described by OpenAPI: its operations, {id} written as X-Road's *.
    assert patients["service_type"] == "OPENAPI"
    assert patients["endpoint_list"] == [
        {"method": "GET", "path": "/Patient/*"},
        {"method": "GET", "path": "/Patient/*/$everything"},
    ]
    # No description, no endpoint but the whole service: nothing listed, as X-Road does.
    assert services["feeds"]["service_type"] == "REST"
    assert services["feeds"]["endpoint_list"] == []


async def test_allowed_methods_follow_the_access_rights(federation: dict[str, Any]) -> None:
    status, _, allowed = await _get(federation, f"/r1/{PROVIDER}/allowedMethods")
    assert status == 200, allowed
    services = {service["service_code"]: service for service in allowed["service"]}
    assert sorted(services) == ["echo", "feeds", "patients"]
    # A right on the whole service covers every endpoint; the base one is not listed.
    assert services["patients"]["endpoint_list"] == [
        {"method": "GET", "path": "/Patient/*"},
        {"method": "GET", "path": "/Patient/*/$everything"},
    ]
    echo = services["echo"]["endpoint_list"]
    assert {"method": "POST", "path": "/*"} in echo
    assert {endpoint["path"] for endpoint in echo} == {"/*"}
    assert services["feeds"]["endpoint_list"] == []
    # A subsystem without access rights is told of nothing.
    status, _, refused = await _get(federation, f"/r1/{PROVIDER}/allowedMethods", OUTSIDER)
    assert status == 200, refused
    assert refused == {"service": []}


async def test_get_openapi_returns_the_services_description(federation: dict[str, Any]) -> None:
    status, _, document = await _get(
        federation, f"/r1/{PROVIDER}/getOpenAPI?serviceCode=patients"
    )
    assert status == 200, document
    assert document["openapi"].startswith("3.")
    assert "/Patient/{id}" in document["paths"]


async def test_get_openapi_of_a_service_without_description(federation: dict[str, Any]) -> None:
    status, headers, body = await _get(federation, f"/r1/{PROVIDER}/getOpenAPI?serviceCode=feeds")
    assert status == 400, body
    assert headers["X-Road-Error"] == "client.no_openapi_description"
    assert body["type"] == "client.no_openapi_description"
    assert "no OpenAPI description" in body["message"]


async def test_get_openapi_refusals(federation: dict[str, Any]) -> None:
    cases = [
        ("serviceCode=nothing", 500, "server.serverproxy.unknown_service"),
        ("", 400, "client.bad_request"),
        ("serviceCode=a&serviceCode=b", 400, "client.bad_request"),
    ]
    for query, expected_status, code in cases:
        status, headers, body = await _get(federation, f"/r1/{PROVIDER}/getOpenAPI?{query}")
        assert status == expected_status, body
        assert headers["X-Road-Error"] == code


async def test_metaservice_audit_rows_exist_on_both_nodes(federation: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{_client_url(federation)}/r1/{PROVIDER}/listMethods",
            headers={**client_headers(federation, CONSUMER), "X-Road-Id": "meta-audit-1"},
        ) as response:
            assert response.status == 200
        for node_id in (HOSP_A, HOSP_B):
            entry = node(federation, node_id)
            async with session.get(
                f"{entry['management_url']}/api/audit/rows",
                params={"message_id": "meta-audit-1"},
                headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
            ) as rows:
                assert rows.status == 200
                found = (await rows.json())["rows"]
                assert [row["status"] for row in found] == [200], node_id


# --- the API catalogue, fed by the nodes' periodic pushes (gateway/catalogue_push.py) ---


async def _catalogue(federation: dict[str, Any], path: str) -> Any:
    """Poll the registry until every node's first push has arrived."""
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(f"{federation['registry']['url']}{path}") as response:
                assert response.status == 200
                document = await response.json(content_type=None)
            if "gtfs" in json.dumps(document):
                return document
            await asyncio.sleep(0.1)
    raise AssertionError("the nodes did not publish their catalogue")


async def test_catalogue_search_finds_the_pushed_fhir_service(federation: dict[str, Any]) -> None:
    await _catalogue(federation, "/catalogue/dcat")
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{federation['registry']['url']}/catalogue", params={"q": "patient"}) as got,
    ):
        found = (await got.json())["services"]
    assert [entry["service"] for entry in found] == [f"{PROVIDER}/patients"]
    entry = found[0]
    assert entry["node"] == HOSP_B
    assert entry["title"] == "Patient records (FHIR R4)"
    assert entry["declaration"]["consent_governed"] is True
    assert "/Patient/{id}" in entry["openapi"]["paths"]


async def test_catalogue_dcat_lists_the_pushed_services(federation: dict[str, Any]) -> None:
    document = await _catalogue(federation, "/catalogue/dcat")
    base = federation["registry"]["url"]
    graph = Graph().parse(data=json.dumps(document), format="json-ld", publicID=base)
    identifiers = {str(o) for o in graph.objects(None, DCTERMS.identifier)}
    assert {
        f"{PROVIDER}/patients",
        f"{PROVIDER}/echo",
        f"{PROVIDER}/feeds",
        "RENKEI/COM/TRANSIT/TIMETABLE/gtfs",
    } <= identifiers
    assert violations(graph) == ""  # the official DCAT-AP 3.0.0 shapes
    async with aiohttp.ClientSession() as session:
        for link in sorted({str(o) for o in graph.objects(None, DCAT.endpointDescription)}):
            async with session.get(URL(link, encoded=True)) as response:
                assert response.status == 200, link


async def test_catalogue_finds_a_service_without_openapi(federation: dict[str, Any]) -> None:
    await _catalogue(federation, "/catalogue/dcat")
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{federation['registry']['url']}/catalogue", params={"q": "news"}) as got,
    ):
        found = (await got.json())["services"]
    assert [entry["service"] for entry in found] == [f"{PROVIDER}/feeds"]
    assert found[0]["title"] == "feeds"
    assert found[0]["description"] == "Hospital B's news feeds (no OpenAPI description)"
    assert found[0]["openapi"] is None


# --- no consented field value in any process's log ---


def _strings(document: Any) -> set[str]:
    if isinstance(document, dict):
        return set().union(*(_strings(value) for value in document.values()))
    if isinstance(document, list):
        return set().union(*(_strings(value) for value in document)) if document else set()
    return {document} if isinstance(document, str) else set()


async def test_no_field_value_reaches_a_log_line(federation: dict[str, Any]) -> None:
    marker = f"body-marker-{uuid.uuid4().hex}"
    headers = {**client_headers(federation, CONSUMER), "Renkei-Purpose": "treatment"}
    base = f"{_client_url(federation)}/r1/{PROVIDER}"
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{base}/patients/Patient/example", headers={**headers, "Renkei-Subject": "example"}
        ) as response:
            assert response.status == 200
            released = await response.json(content_type=None)
            assert response.headers["Renkei-Withheld"]
        async with session.post(
            f"{base}/echo/anything", headers=headers, json={"field": marker}
        ) as response:
            assert response.status == 200
    # Released values, and the withheld ones the provider's backend sent too.
    sample = fhir_patients()["example"]
    values = {v for v in _strings(released) | _strings(sample) if len(v) >= 5} | {marker}
    values -= {"Patient", "example", "generated", "official", "usual", "home", "work"}
    assert "Chalmers" in values
    await asyncio.sleep(0.5)
    directory = Path(federation["dir"])
    logs = sorted((directory / "logs").glob("*.log"))
    assert len(logs) >= 4, logs
    logs.append(directory.parent / f"{directory.name}.stderr")  # the sandbox process itself
    for log_file in logs:
        text = log_file.read_text("utf-8", "replace")
        leaked = sorted(value for value in values if value in text)
        assert not leaked, f"{log_file.name} logs field values: {leaked[:5]}"


async def test_stage_latency_histograms_after_exchanges(federation: dict[str, Any]) -> None:
    await _get(federation, f"/r1/{PROVIDER}/listMethods")
    expected = {
        HOSP_A: ("client", ("parse", "sign", "relay", "verify", "audit")),
        HOSP_B: ("peer", ("parse", "verify", "backend", "sign", "audit")),
    }
    async with aiohttp.ClientSession() as session:
        for node_id, (role, stages) in expected.items():
            async with session.get(str(node(federation, node_id)["metrics_url"])) as got:
                text = await got.text()
            for name in stages:
                assert f'renkei_stage_seconds_count{{role="{role}",stage="{name}"}}' in text, name

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

import aiohttp
import pytest

from gateway.sandbox.backends import fhir_patients
from tests.functional.sandbox_helpers import node, sandbox_process

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
OUTSIDER = "RENKEI/COM/INSURER/CLAIMS"
PROVIDER = "RENKEI/GOV/HOSP-B/EHR"
HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("metaservices") / "sandbox"
    with sandbox_process(directory) as document:
        yield document


def _client_url(federation: dict[str, Any]) -> str:
    return str(node(federation, HOSP_A)["client_url"])


async def _get(
    federation: dict[str, Any], path: str, client: str = CONSUMER
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{_client_url(federation)}{path}", headers={"X-Road-Client": client}
        ) as response,
    ):
        return response.status, dict(response.headers), await response.json(content_type=None)


async def test_list_clients_names_every_member_and_subsystem(federation: dict[str, Any]) -> None:
    status, _, body = await _get(federation, "/listClients")
    assert status == 200
    ids = [entry["id"] for entry in body["member"]]
    assert {
        "member_class": "GOV",
        "member_code": "HOSP-B",
        "xroad_instance": "RENKEI",
        "object_type": "MEMBER",
    } in ids
    assert {
        "member_class": "GOV",
        "member_code": "HOSP-B",
        "xroad_instance": "RENKEI",
        "subsystem_code": "EHR",
        "object_type": "SUBSYSTEM",
    } in ids
    names = {entry["name"] for entry in body["member"]}
    assert "Hospital B" in names


async def test_list_methods_lists_the_providers_services(federation: dict[str, Any]) -> None:
    status, headers, body = await _get(federation, f"/r1/{PROVIDER}/listMethods")
    assert status == 200, body
    # Relayed and signed like any exchange: the provider node answered it.
    assert headers["X-Road-Service"] == f"{PROVIDER}/listMethods"
    codes = sorted(service["service_code"] for service in body["service"])
    assert codes == ["echo", "patients"]
    first = body["service"][0]
    assert first["object_type"] == "SERVICE"
    assert first["service_type"] == "REST"
    assert first["subsystem_code"] == "EHR"
    assert first["endpoint_list"] == [{"method": "*", "path": "/*"}]


async def test_allowed_methods_follow_the_access_rights(federation: dict[str, Any]) -> None:
    status, _, allowed = await _get(federation, f"/r1/{PROVIDER}/allowedMethods")
    assert status == 200, allowed
    assert sorted(s["service_code"] for s in allowed["service"]) == ["echo", "patients"]
    assert allowed["service"][0]["endpoint_list"] == [{"method": "*", "path": "**"}]
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


async def test_get_openapi_of_an_unknown_service_is_refused(federation: dict[str, Any]) -> None:
    for query in ("serviceCode=nothing", "", "serviceCode=a&serviceCode=b"):
        status, headers, body = await _get(federation, f"/r1/{PROVIDER}/getOpenAPI?{query}")
        assert status == 500, body
        assert headers["X-Road-Error"] == "server.serverproxy.unknown_service"


async def test_metaservice_audit_rows_exist_on_both_nodes(federation: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{_client_url(federation)}/r1/{PROVIDER}/listMethods",
            headers={"X-Road-Client": CONSUMER, "X-Road-Id": "meta-audit-1"},
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
    identifiers = {service["dct:identifier"] for service in document["dcat:service"]}
    assert {
        f"{PROVIDER}/patients",
        f"{PROVIDER}/echo",
        "RENKEI/COM/TRANSIT/TIMETABLE/gtfs",
    } <= identifiers
    assert document["@type"] == "dcat:Catalog"


# --- no consented field value in any process's log ---


def _strings(document: Any) -> set[str]:
    if isinstance(document, dict):
        return set().union(*(_strings(value) for value in document.values()))
    if isinstance(document, list):
        return set().union(*(_strings(value) for value in document)) if document else set()
    return {document} if isinstance(document, str) else set()


async def test_no_field_value_reaches_a_log_line(federation: dict[str, Any]) -> None:
    marker = f"body-marker-{uuid.uuid4().hex}"
    headers = {"X-Road-Client": CONSUMER, "Renkei-Purpose": "treatment"}
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

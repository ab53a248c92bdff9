"""A consumer's NGSI-LD query to its own node, answered by the providers' nodes.

The city scene (gateway/sandbox/city.toml): the river authority and the transit
operator keep their entities in their own nodes; the disaster office's node
fans its query out to both as signed, audited exchanges and merges the answers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import POSTGRES_SERVER, require_postgres
from tests.functional.sandbox_helpers import client_headers, node, sandbox_process

CITY = Path(__file__).parents[2] / "gateway" / "sandbox" / "city.toml"
RIVER, TRANSIT, DISASTER = (
    "RENKEI/GOV/RIVER/ss1", "RENKEI/COM/TRANSIT/ss1", "RENKEI/GOV/DISASTER/ss1"
)
GAUGES, STOPS, CRANES, OFFICE = (
    "RENKEI/GOV/RIVER/GAUGES", "RENKEI/COM/TRANSIT/STOPS", "RENKEI/COM/PORT/CRANES",
    "RENKEI/GOV/DISASTER/OFFICE",
)
SHELTER = "[139.70,35.68]"  # longitude, latitude
NEAR_SHELTER = {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": SHELTER}


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


GAUGE_NEAR = {"id": "urn:ngsi-ld:WaterObserved:gauge-near", "type": "WaterObserved",
              "waterLevel": {"type": "Property", "value": 2.4}, "location": _point(139.705, 35.681)}
GAUGE_FAR = {"id": "urn:ngsi-ld:WaterObserved:gauge-far", "type": "WaterObserved",
             "waterLevel": {"type": "Property", "value": 1.1}, "location": _point(139.90, 35.80)}
STOP_NEAR = {"id": "urn:ngsi-ld:GtfsStop:stop-1", "type": "GtfsStop",
             "name": {"type": "Property", "value": "Shelter Gate"},
             "location": _point(139.701, 35.679)}
CRANE = {"id": "urn:ngsi-ld:Crane:crane-1", "type": "Crane", "location": _point(139.70, 35.68)}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    database = None
    if request.param == "postgres":
        require_postgres()
        database = POSTGRES_SERVER
    directory = tmp_path_factory.mktemp(f"city-{request.param}") / "sandbox"
    with sandbox_process(directory, database=database, description=CITY) as document:
        asyncio.run(_publish(document))
        yield document


async def _publish(city: dict[str, Any]) -> None:
    """Each provider's system publishes to its own node; the catalogue learns the services."""
    async with aiohttp.ClientSession() as session:
        for node_id, owner, entities in (
            (RIVER, GAUGES, [GAUGE_NEAR, GAUGE_FAR]),
            (TRANSIT, STOPS, [STOP_NEAR]),
            (TRANSIT, CRANES, [CRANE]),
        ):
            async with session.post(
                f"{node(city, node_id)['client_url']}/ngsi-ld/v1/entityOperations/upsert",
                json=entities, headers=client_headers(city, owner),
            ) as response:
                assert response.status in (201, 204), await response.text()
        for _ in range(120):  # every node pushes its catalogue at start
            async with session.get(f"{city['registry']['url']}/catalogue") as response:
                # Registered with what each provider published (its types, its area).
                published = {e["service"] for e in (await response.json())["services"]
                             if _registered_entities(e)}
            if len(published) == 3:
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"the NGSI-LD services did not reach the catalogue: {published}")


def _registered_entities(entry: dict[str, Any]) -> list[Any]:
    registration = (entry.get("openapi") or {}).get("x-ngsi-ld") or {}
    return list((registration.get("information") or [{}])[0].get("entities") or [])


async def _query(
    city: dict[str, Any], path: str, params: dict[str, str], **headers: str
) -> tuple[int, Any, list[str]]:
    async with aiohttp.ClientSession() as session, session.get(
        f"{node(city, DISASTER)['client_url']}/ngsi-ld/v1{path}", params=params,
        headers={**client_headers(city, OFFICE), **headers},
    ) as response:
        return response.status, await response.json(), response.headers.getall(
            "NGSILD-Warning", []
        )


async def _rows(city: dict[str, Any], node_id: str) -> list[dict[str, Any]]:
    entry = node(city, node_id)
    async with aiohttp.ClientSession() as session, session.get(
        f"{entry['management_url']}/api/audit/rows",
        headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
    ) as response:
        assert response.status == 200
        return list((await response.json())["rows"])


async def test_a_query_merges_both_providers_and_reports_the_one_that_denies(
    city: dict[str, Any],
) -> None:
    status, entities, warnings = await _query(
        city, "/entities", {"type": "WaterObserved,GtfsStop,Crane", **NEAR_SHELTER}
    )
    assert status == 200, entities
    # Both providers' entities near the shelter, merged; not the far gauge.
    assert [e["id"] for e in entities] == [STOP_NEAR["id"], GAUGE_NEAR["id"]]
    assert entities[1]["waterLevel"]["value"] == 2.4
    # The port grants the office nothing: its crane is not there, and the denial is said.
    assert len(warnings) == 1
    assert "RENKEI/COM/PORT/CRANES/ngsi-ld" in warnings[0]
    assert "access_denied" in warnings[0]
    assert CRANE["id"] not in {e["id"] for e in entities}


async def test_retrieval_by_id_reaches_the_holder(city: dict[str, Any]) -> None:
    status, entity, _ = await _query(city, f"/entities/{GAUGE_FAR['id']}", {})
    assert status == 200, entity
    assert entity["waterLevel"]["value"] == 1.1
    status, problem, _ = await _query(city, "/entities/urn:ngsi-ld:WaterObserved:none", {})
    assert status == 404
    assert problem["type"].endswith("ResourceNotFound")


async def test_each_leg_is_audited_on_both_sides(city: dict[str, Any]) -> None:
    message_id = f"office-{uuid.uuid4()}"
    await _query(city, "/entities", {"type": "WaterObserved,Crane", **NEAR_SHELTER},
                 **{"X-Road-Id": message_id, "X-Road-UserId": "duty-officer-7"})
    consumer = [r for r in await _rows(city, DISASTER) if r["message_id"] == message_id]
    river = await _rows(city, RIVER)
    transit = await _rows(city, TRANSIT)
    # The caller's X-Road-Id and user travel with every leg of its query.
    assert {r["service"] for r in consumer} == {f"{GAUGES}/ngsi-ld", f"{CRANES}/ngsi-ld"}
    assert {r["user_id"] for r in consumer} == {"duty-officer-7"}
    gauge_legs = [r for r in consumer if r["service"] == f"{GAUGES}/ngsi-ld"]
    assert gauge_legs
    assert all(r["client"] == OFFICE for r in gauge_legs)
    for leg in gauge_legs:
        # The provider logged the same exchange, bound by the request hash.
        provider = [r for r in river if r["request_hash"] == leg["request_hash"]]
        assert len(provider) == 1
        assert provider[0]["role"] == "provider"
        assert provider[0]["status"] == leg["status"]
        assert provider[0]["response_signature"] == leg["response_signature"]
    assert any(r["status"] == 200 and r["path"].startswith("/entities?") for r in gauge_legs)
    # The refusal is on both sides too.
    denied = [r for r in consumer if r["service"] == f"{CRANES}/ngsi-ld"]
    assert denied
    assert all(r["error_code"] == "server.serverproxy.access_denied" for r in denied)
    assert {r["request_hash"] for r in denied} <= {
        r["request_hash"] for r in transit if r["error_code"] == "server.serverproxy.access_denied"
    }


async def test_an_undeclared_purpose_sends_no_leg(city: dict[str, Any]) -> None:
    status, entities, warnings = await _query(
        city, "/entities", {"type": "WaterObserved,GtfsStop", **NEAR_SHELTER},
        **{"Renkei-Purpose": "curiosity"},
    )
    assert status == 200
    assert entities == []
    assert len(warnings) == 2
    assert all("purpose" in w for w in warnings)


async def test_a_provider_that_is_down_is_reported_not_left_out(city: dict[str, Any]) -> None:
    """Last in the module: it stops the river authority's node."""
    process = next(name for name in city["processes"] if "river" in name)
    os.kill(city["processes"][process], signal.SIGTERM)
    for _ in range(60):
        status, entities, warnings = await _query(
            city, "/entities", {"type": "WaterObserved,GtfsStop", **NEAR_SHELTER}
        )
        if any(f"{GAUGES}/ngsi-ld" in w for w in warnings):
            break
        await asyncio.sleep(0.5)
    assert status == 200
    assert [e["id"] for e in entities] == [STOP_NEAR["id"]]
    assert any(f"{GAUGES}/ngsi-ld" in w for w in warnings), warnings

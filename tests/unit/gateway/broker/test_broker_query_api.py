"""Queries (clause 6.4.3.2 with 4.9 and 4.10), batch operations (6.14-6.17), /types, /attributes."""

from __future__ import annotations

from typing import Any

import pytest

ERR = "https://uri.etsi.org/ngsi-ld/errors/"
# Gauges along a river near Tokyo: 0.0, ~0.9, ~1.8, ~2.7 ... km east of the shelter.
SHELTER = (139.700, 35.680)


@pytest.fixture
async def gauges(client: Any, make_gauge: Any) -> Any:
    for n in range(6):
        body = make_gauge(n, SHELTER[0] + 0.01 * n, SHELTER[1], 1.0 + n)
        assert (await client.call("POST", "/entities", body)).status == 201
    stop = {
        "id": "urn:ngsi-ld:GtfsStop:s1",
        "type": "GtfsStop",
        "name": "Shelter stop",
        "location": {"type": "Point", "coordinates": [SHELTER[0], SHELTER[1] + 0.001]},
    }
    assert (await client.call("POST", "/entities", stop)).status == 201
    return client


def ids(response: Any) -> list[str]:
    assert response.status == 200, response.json
    return sorted(e["id"].rsplit(":", 1)[1] for e in response.json)


async def test_query_by_type_with_count_and_pages(gauges: Any) -> None:
    first = await gauges.call("GET", "/entities", query="type=WaterObserved&limit=4&count=true")
    assert ids(first) == ["gauge-0", "gauge-1", "gauge-2", "gauge-3"]
    assert ("NGSILD-Results-Count", "6") in first.headers
    rest = await gauges.call("GET", "/entities", query="type=WaterObserved&limit=4&offset=4")
    assert ids(rest) == ["gauge-4", "gauge-5"]
    only_count = await gauges.call(
        "GET", "/entities", query="type=WaterObserved&limit=0&count=true"
    )
    assert only_count.json == []
    assert ("NGSILD-Results-Count", "6") in only_count.headers


async def test_query_by_id_and_id_pattern(gauges: Any) -> None:
    by_id = await gauges.call(
        "GET",
        "/entities",
        query="id=urn:ngsi-ld:WaterObserved:gauge-1,urn:ngsi-ld:GtfsStop:s1",
    )
    assert ids(by_id) == ["gauge-1", "s1"]
    pattern = await gauges.call("GET", "/entities", query="idPattern=.*gauge-[0-2]")
    assert ids(pattern) == ["gauge-0", "gauge-1", "gauge-2"]


async def test_query_with_q(gauges: Any) -> None:
    above = await gauges.call("GET", "/entities", query="type=WaterObserved&q=waterLevel>=4")
    assert ids(above) == ["gauge-3", "gauge-4", "gauge-5"]
    both = await gauges.call(
        "GET", "/entities", query='type=WaterObserved&q=waterLevel<3|name=="Gauge 5"'
    )
    assert ids(both) == ["gauge-0", "gauge-1", "gauge-5"]
    relation = await gauges.call("GET", "/entities", query="q=refRiver==urn:ngsi-ld:River:tama")
    assert len(ids(relation)) == 6
    bad = await gauges.call("GET", "/entities", query="type=WaterObserved&q=waterLevel>>1")
    assert (bad.status, bad.json["type"]) == (400, ERR + "BadRequestData")


async def test_query_attrs_projects_and_filters(gauges: Any) -> None:
    response = await gauges.call("GET", "/entities", query="attrs=waterLevel&options=keyValues")
    assert len(response.json) == 6  # the stop has no waterLevel
    assert set(response.json[0]) == {"id", "type", "waterLevel"}


async def test_near_within_two_kilometres(gauges: Any) -> None:
    near = await gauges.call(
        "GET",
        "/entities",
        query="type=WaterObserved&georel=near;maxDistance==2000&geometry=Point"
        f"&coordinates=[{SHELTER[0]},{SHELTER[1]}]",
    )
    assert ids(near) == ["gauge-0", "gauge-1", "gauge-2"]
    far = await gauges.call(
        "GET",
        "/entities",
        query="type=WaterObserved&georel=near;minDistance==2000&geometry=Point"
        f"&coordinates=[{SHELTER[0]},{SHELTER[1]}]",
    )
    assert ids(far) == ["gauge-3", "gauge-4", "gauge-5"]


async def test_within_intersects_disjoint_polygon(gauges: Any) -> None:
    box = "[[[139.695,35.67],[139.725,35.67],[139.725,35.69],[139.695,35.69],[139.695,35.67]]]"
    within = await gauges.call(
        "GET",
        "/entities",
        query=f"type=WaterObserved&georel=within&geometry=Polygon&coordinates={box}",
    )
    assert ids(within) == ["gauge-0", "gauge-1", "gauge-2"]
    intersects = await gauges.call(
        "GET", "/entities", query=f"georel=intersects&geometry=Polygon&coordinates={box}"
    )
    assert ids(intersects) == ["gauge-0", "gauge-1", "gauge-2", "s1"]
    disjoint = await gauges.call(
        "GET",
        "/entities",
        query=f"type=WaterObserved&georel=disjoint&geometry=Polygon&coordinates={box}",
    )
    assert ids(disjoint) == ["gauge-3", "gauge-4", "gauge-5"]


async def test_geoproperty_other_than_location(client: Any) -> None:
    body = {
        "id": "urn:ngsi-ld:Vehicle:p1",
        "type": "Vehicle",
        "location": {"type": "Point", "coordinates": [141.0, 43.0]},
        "depot": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [141.3, 43.1]}},
    }
    await client.call("POST", "/entities", body)
    query = "type=Vehicle&georel=near;maxDistance==100&geometry=Point&coordinates=[141.3,43.1]"
    assert ids(await client.call("GET", "/entities", query=query + "&geoproperty=depot")) == ["p1"]
    assert ids(await client.call("GET", "/entities", query=query)) == []


@pytest.mark.parametrize(
    "query",
    [
        "",  # nothing to select by
        "type=WaterObserved&limit=5000",
        "type=WaterObserved&limit=-1",
        "type=WaterObserved&georel=near&geometry=Point&coordinates=[1,1]",
        "type=WaterObserved&georel=near;maxDistance==10&geometry=Point",
        "type=WaterObserved&georel=near;maxDistance==10&geometry=Polygon&coordinates=[1,1]",
        "type=WaterObserved&georel=beside&geometry=Point&coordinates=[1,1]",
        "type=WaterObserved&georel=within&geometry=Point&coordinates=[1",
        "type=WaterObserved&idPattern=(",
        "type=WaterObserved&type=GtfsStop",
        "type=WaterObserved&options=fancy",
    ],
)
async def test_bad_queries_are_refused(gauges: Any, query: str) -> None:
    response = await gauges.call("GET", "/entities", query=query)
    assert response.status in (400, 403)
    assert response.json["type"] in (ERR + "BadRequestData", ERR + "TooManyResults")


async def test_batch_create_upsert_update_delete(client: Any, make_gauge: Any) -> None:
    batch = [make_gauge(n, 139.7, 35.6, n) for n in range(3)]
    created = await client.call("POST", "/entityOperations/create", batch)
    assert created.status == 201
    assert len(created.json) == 3
    again = await client.call(
        "POST",
        "/entityOperations/create",
        [make_gauge(2, 1, 1, 1), make_gauge(3, 1, 1, 1), {"id": "bad"}],
    )
    assert again.status == 207
    assert again.json["success"] == ["urn:ngsi-ld:WaterObserved:gauge-3"]
    kinds = sorted(e["error"]["type"].rsplit("/", 1)[1] for e in again.json["errors"])
    assert kinds == ["AlreadyExists", "BadRequestData"]
    upserted = await client.call(
        "POST", "/entityOperations/upsert", [make_gauge(0, 1, 1, 10.0), make_gauge(9, 1, 1, 1.0)]
    )
    assert upserted.status == 201
    assert upserted.json == ["urn:ngsi-ld:WaterObserved:gauge-9"]
    only_updates = await client.call(
        "POST", "/entityOperations/upsert", [make_gauge(0, 1, 1, 11.0)]
    )
    assert only_updates.status == 204
    updated = await client.call(
        "POST",
        "/entityOperations/update",
        [
            {"id": "urn:ngsi-ld:WaterObserved:gauge-1", "waterLevel": 7.0},
            {"id": "urn:ngsi-ld:WaterObserved:missing", "waterLevel": 7.0},
        ],
    )
    assert updated.status == 207
    assert updated.json["errors"][0]["error"]["type"] == ERR + "ResourceNotFound"
    level = (await client.call("GET", "/entities/urn:ngsi-ld:WaterObserved:gauge-1")).json
    assert level["waterLevel"]["value"] == 7.0
    deleted = await client.call(
        "POST",
        "/entityOperations/delete",
        ["urn:ngsi-ld:WaterObserved:gauge-0", "urn:ngsi-ld:WaterObserved:gauge-1"],
    )
    assert deleted.status == 204
    assert (await client.call("POST", "/entityOperations/create", [])).status == 400


async def test_types_and_attributes(gauges: Any) -> None:
    types = await gauges.call("GET", "/types")
    assert types.json["type"] == "EntityTypeList"
    assert sorted(types.json["typeList"]) == ["GtfsStop", "WaterObserved"]
    info = (await gauges.call("GET", "/types/WaterObserved")).json
    assert info["type"] == "EntityTypeInfo"
    assert info["entityCount"] == 6
    names = {d["attributeName"]: d["attributeTypes"] for d in info["attributeDetails"]}
    assert names == {
        "location": ["GeoProperty"],
        "name": ["Property"],
        "refRiver": ["Relationship"],
        "waterLevel": ["Property"],
    }
    detailed = (await gauges.call("GET", "/types", query="details=true")).json
    assert {t["typeName"] for t in detailed} == {"GtfsStop", "WaterObserved"}
    attributes = (await gauges.call("GET", "/attributes")).json
    assert sorted(attributes["attributeList"]) == ["location", "name", "refRiver", "waterLevel"]
    location = (await gauges.call("GET", "/attributes/location")).json
    assert location["attributeCount"] == 7
    assert sorted(location["typeNames"]) == ["GtfsStop", "WaterObserved"]
    assert (await gauges.call("GET", "/types/Nothing")).status == 404

"""The NGSI-LD entity API (ETSI GS CIM 009 V1.8.1 clause 6.4-6.7) over the node's store."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.broker.ldcontext import CORE_CONTEXT_URL
from tests.unit.gateway.broker.conftest import Client

CTX = {
    "WaterObserved": "https://smartdatamodels.org/dataModel.Environment/WaterObserved",
    "waterLevel": "https://smartdatamodels.org/dataModel.Environment/waterLevel",
}
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


async def test_create_then_retrieve_normalized(client: Any, make_gauge: Any) -> None:
    created = await client.call("POST", "/entities", make_gauge(1, 139.70, 35.68, 3.2))
    assert created.status == 201
    assert ("Location", "/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:gauge-1") in created.headers
    got = await client.call("GET", "/entities/urn:ngsi-ld:WaterObserved:gauge-1")
    assert got.status == 200
    entity = got.json
    assert entity["type"] == "WaterObserved"
    assert entity["waterLevel"] == {
        "type": "Property",
        "value": 3.2,
        "unitCode": "MTR",
        "observedAt": "2026-03-01T08:50:00Z",
    }
    assert entity["refRiver"] == {"type": "Relationship", "object": "urn:ngsi-ld:River:tama"}
    assert "createdAt" not in entity
    link = dict(got.headers)["Link"]
    assert link.startswith(f"<{CORE_CONTEXT_URL}>")
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in link


async def test_create_twice_is_already_exists(client: Any, make_gauge: Any) -> None:
    assert (await client.call("POST", "/entities", make_gauge(1, 139.7, 35.6, 1))).status == 201
    again = await client.call("POST", "/entities", make_gauge(1, 139.7, 35.6, 1))
    assert again.status == 409
    assert again.json["type"] == ERR + "AlreadyExists"
    assert dict(again.headers)["Content-Type"] == "application/problem+json"


async def test_missing_entity_is_resource_not_found(client: Any) -> None:
    got = await client.call("GET", "/entities/urn:ngsi-ld:WaterObserved:none")
    assert (got.status, got.json["type"]) == (404, ERR + "ResourceNotFound")
    gone = await client.call("DELETE", "/entities/urn:ngsi-ld:WaterObserved:none")
    assert gone.status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"type": "WaterObserved"},  # no id
        {"id": "not a uri", "type": "WaterObserved"},
        {"id": "urn:x:1"},  # no type
        {"id": "urn:x:1", "type": "T", "a": {"type": "Property"}},  # no value
        {"id": "urn:x:1", "type": "T", "a": None},
        {"id": "urn:x:1", "type": "T", "bad name": 1},
        {
            "id": "urn:x:1",
            "type": "T",
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [200, 1]},
            },
        },
        {"id": "urn:x:1", "type": "T", "r": {"type": "Relationship", "object": "nope"}},
        {"id": "urn:x:1", "type": "T", "a": {"type": "Property", "value": 1, "observedAt": "soon"}},
    ],
)
async def test_bad_entities_are_bad_request_data(client: Any, body: dict[str, Any]) -> None:
    response = await client.call("POST", "/entities", body)
    assert response.status == 400
    assert response.json["type"] == ERR + "BadRequestData"


async def test_invalid_json_is_invalid_request(client: Any) -> None:
    response = await client.call("POST", "/entities", raw=b'{"id": "urn:x:1", "id": "urn:x:2"}')
    assert (response.status, response.json["type"]) == (400, ERR + "InvalidRequest")


async def test_concise_input_is_stored_as_normalized(client: Any) -> None:
    concise = {
        "id": "urn:ngsi-ld:Vehicle:plough-1",
        "type": "Vehicle",
        "speed": 12,
        "status": {"value": "working", "observedAt": "2026-03-01T08:00:00Z"},
        "owner": {"object": "urn:ngsi-ld:Org:city"},
        "location": {"type": "Point", "coordinates": [141.35, 43.06]},
    }
    assert (await client.call("POST", "/entities", concise)).status == 201
    got = (await client.call("GET", "/entities/urn:ngsi-ld:Vehicle:plough-1")).json
    assert got["speed"] == {"type": "Property", "value": 12}
    assert got["status"]["type"] == "Property"
    assert got["owner"] == {"type": "Relationship", "object": "urn:ngsi-ld:Org:city"}
    assert got["location"]["type"] == "GeoProperty"
    # And back to concise and keyValues (clause 4.5.3, 4.5.4).
    back = (
        await client.call("GET", "/entities/urn:ngsi-ld:Vehicle:plough-1", query="format=concise")
    ).json
    assert back["speed"] == 12
    assert back["status"] == {"value": "working", "observedAt": "2026-03-01T08:00:00Z"}
    assert back["owner"] == {"object": "urn:ngsi-ld:Org:city"}
    assert back["location"] == {"type": "Point", "coordinates": [141.35, 43.06]}
    simple = (
        await client.call(
            "GET", "/entities/urn:ngsi-ld:Vehicle:plough-1", query="options=keyValues"
        )
    ).json
    assert simple == {
        "id": "urn:ngsi-ld:Vehicle:plough-1",
        "type": "Vehicle",
        "speed": 12,
        "status": "working",
        "owner": "urn:ngsi-ld:Org:city",
        "location": {"type": "Point", "coordinates": [141.35, 43.06]},
    }


async def test_sys_attrs_only_when_asked(client: Any, make_gauge: Any) -> None:
    await client.call("POST", "/entities", make_gauge(1, 139.7, 35.6, 1))
    got = (
        await client.call(
            "GET", "/entities/urn:ngsi-ld:WaterObserved:gauge-1", query="options=sysAttrs"
        )
    ).json
    assert got["createdAt"] == "2026-03-01T09:00:00.000Z"
    assert got["waterLevel"]["modifiedAt"] == "2026-03-01T09:00:00.000Z"


async def test_json_ld_in_and_out_with_a_user_context(client: Any, make_gauge: Any) -> None:
    body = {**make_gauge(2, 139.7, 35.6, 2.5), "@context": [CTX, CORE_CONTEXT_URL]}
    created = await client.call("POST", "/entities", body, content_type="application/ld+json")
    assert created.status == 201
    # With the core context only, the type and the attribute show as full IRIs.
    plain = (await client.call("GET", "/entities/urn:ngsi-ld:WaterObserved:gauge-2")).json
    assert plain["type"] == CTX["WaterObserved"]
    assert plain[CTX["waterLevel"]]["value"] == 2.5
    assert plain["name"]["value"] == "Gauge 2"  # not in CTX: the core's default vocabulary
    inline = await client.call(
        "GET", "/entities/urn:ngsi-ld:WaterObserved:gauge-2", accept="application/ld+json"
    )
    assert dict(inline.headers)["Content-Type"] == "application/ld+json"
    assert inline.json["@context"] == CORE_CONTEXT_URL


async def test_ld_json_body_without_context_or_with_link_is_refused(
    client: Any, make_gauge: Any
) -> None:
    no_context = await client.call(
        "POST", "/entities", make_gauge(3, 1, 1, 1), content_type="application/ld+json"
    )
    assert (no_context.status, no_context.json["type"]) == (400, ERR + "BadRequestData")
    both = await client.call(
        "POST",
        "/entities",
        {**make_gauge(3, 1, 1, 1), "@context": CORE_CONTEXT_URL},
        content_type="application/ld+json",
        link=CORE_CONTEXT_URL,
    )
    assert both.status == 400
    inside_json = await client.call(
        "POST", "/entities", {**make_gauge(3, 1, 1, 1), "@context": CORE_CONTEXT_URL}
    )
    assert inside_json.status == 400


async def test_unregistered_context_is_not_fetched(client: Any, make_gauge: Any) -> None:
    response = await client.call(
        "POST",
        "/entities",
        make_gauge(4, 1, 1, 1),
        link="https://example.org/unknown-context.jsonld",
    )
    assert (response.status, response.json["type"]) == (503, ERR + "LdContextNotAvailable")


async def test_registered_context_is_used_by_link(client: Any, make_gauge: Any) -> None:
    added = await client.call("POST", "/jsonldContexts", {"@context": CTX})
    assert added.status == 201
    url = dict(added.headers)["Location"].rsplit("/", 1)[1]
    assert (
        await client.call("POST", "/entities", make_gauge(5, 1, 1, 4.0), link=url)
    ).status == 201
    got = await client.call("GET", "/entities/urn:ngsi-ld:WaterObserved:gauge-5", link=url)
    assert got.json["type"] == "WaterObserved"
    assert got.json["waterLevel"]["value"] == 4.0
    assert dict(got.headers)["Link"].startswith(f"<{url}>")
    listed = await client.call("GET", "/jsonldContexts")
    assert url in listed.json


async def test_accept_negotiation(client: Any, make_gauge: Any) -> None:
    await client.call("POST", "/entities", make_gauge(1, 1, 1, 1))
    path = "/entities/urn:ngsi-ld:WaterObserved:gauge-1"
    refused = await client.call("GET", path, accept="text/html")
    assert refused.status == 406
    ranked = await client.call("GET", path, accept="application/json;q=0.5, application/ld+json")
    assert dict(ranked.headers)["Content-Type"] == "application/ld+json"
    unsupported = await client.call(
        "POST", "/entities", make_gauge(9, 1, 1, 1), content_type="text/plain"
    )
    assert unsupported.status == 415


async def test_append_update_and_attribute_operations(client: Any, make_gauge: Any) -> None:
    await client.call("POST", "/entities", make_gauge(1, 1, 1, 1.0))
    base = "/entities/urn:ngsi-ld:WaterObserved:gauge-1"
    appended = await client.call(
        "POST", base + "/attrs", {"flow": {"type": "Property", "value": 9}}
    )
    assert appended.status == 204
    kept = await client.call("POST", base + "/attrs", {"flow": 10}, query="options=noOverwrite")
    assert kept.status == 207
    assert kept.json["notUpdated"][0]["attributeName"] == "flow"
    partial = await client.call("PATCH", base + "/attrs", {"waterLevel": 2.0, "nope": 1})
    assert partial.status == 207
    assert partial.json["updated"] == ["waterLevel"]
    assert partial.json["notUpdated"][0]["attributeName"] == "nope"
    patched = await client.call("PATCH", base + "/attrs/waterLevel", {"value": 2.5})
    assert patched.status == 204
    entity = (await client.call("GET", base)).json
    assert entity["flow"]["value"] == 9
    assert entity["waterLevel"]["value"] == 2.5
    replaced = await client.call("PUT", base + "/attrs/flow", {"type": "Property", "value": 11})
    assert replaced.status == 204
    assert (await client.call("DELETE", base + "/attrs/flow")).status == 204
    assert (await client.call("DELETE", base + "/attrs/flow")).status == 404
    assert "flow" not in (await client.call("GET", base)).json


async def test_replace_and_merge_entity(client: Any, make_gauge: Any) -> None:
    await client.call("POST", "/entities", make_gauge(1, 1, 1, 1.0))
    base = "/entities/urn:ngsi-ld:WaterObserved:gauge-1"
    merged = await client.call("PATCH", base, {"waterLevel": 5.0, "name": "urn:ngsi-ld:null"})
    assert merged.status == 204
    entity = (await client.call("GET", base)).json
    assert entity["waterLevel"]["value"] == 5.0
    assert entity["waterLevel"]["unitCode"] == "MTR"
    assert "name" not in entity
    replaced = await client.call("PUT", base, {"type": "WaterObserved", "waterLevel": 6.0})
    assert replaced.status == 204
    entity = (await client.call("GET", base)).json
    assert set(entity) == {"id", "type", "waterLevel"}


async def test_delete_entity(client: Any, make_gauge: Any) -> None:
    await client.call("POST", "/entities", make_gauge(1, 1, 1, 1.0))
    assert (
        await client.call("DELETE", "/entities/urn:ngsi-ld:WaterObserved:gauge-1")
    ).status == 204
    assert (await client.call("GET", "/entities/urn:ngsi-ld:WaterObserved:gauge-1")).status == 404


async def test_owners_do_not_see_each_others_entities(
    api: Any, client: Any, make_gauge: Any
) -> None:
    await client.call("POST", "/entities", make_gauge(1, 1, 1, 1.0))
    other = Client(api, owner="RENKEI/GOV/OTHER/sys")
    assert (await other.call("GET", "/entities/urn:ngsi-ld:WaterObserved:gauge-1")).status == 404
    assert (await other.call("GET", "/entities", query="type=WaterObserved")).json == []
    assert (await other.call("POST", "/entities", make_gauge(1, 1, 1, 1.0))).status == 201


async def test_unknown_resource_and_method(client: Any) -> None:
    assert (await client.call("GET", "/nowhere")).status == 404
    response = await client.call("DELETE", "/types")
    assert response.status == 405
    assert ("Allow", "GET") in response.headers

"""Distributed reads (federation.py) over real stores, legs answered by serving.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from certs.identifiers import ServiceId
from gateway.broker.federation import (
    Headers,
    Leg,
    LegFailed,
    RemoteEntities,
    merge_entities,
    warning,
)
from gateway.broker.registration import Source, store_registration
from gateway.broker.serving import answer_from_store
from gateway.broker.views import NgsiLdApi, NgsiRequest
from gateway.protocol import parse_exchange_request
from tests.unit.gateway.broker.conftest import OWNER, Client

RIVER = ServiceId.parse("RENKEI/GOV/RIVER/GAUGES/ngsi-ld")
TRANSIT = ServiceId.parse("RENKEI/COM/TRANSIT/STOPS/ngsi-ld")
QUERY = (
    "type=WaterObserved,GtfsStop&georel=near;maxDistance==2000"
    "&geometry=Point&coordinates=[139.70,35.68]"
)

Send = Callable[[str, ServiceId, str, Headers], Awaitable[tuple[int, bytes]]]


def stop(number: int, lon: float, lat: float) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:GtfsStop:stop-{number}",
        "type": "GtfsStop",
        "name": {"type": "Property", "value": f"Stop {number}"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
    }


def through_store(api: NgsiLdApi) -> Send:
    """A leg as the provider node answers it, without the network in between."""

    async def send(
        client: str, service: ServiceId, path: str, headers: Headers = ()
    ) -> tuple[int, bytes]:
        request = parse_exchange_request(
            "GET", f"/r1/{service}{path}", [("X-Road-Client", client), *headers],
            instance="RENKEI",
        )
        status, _, body = await answer_from_store(api, request)
        try:
            return status, body.content()
        finally:
            body.close()

    return send


def federated(
    api: NgsiLdApi, send: Send, sources: list[ServiceId | Source], deadline_s: float = 5.0
) -> Client:
    async def listed() -> list[Source]:
        return [s if isinstance(s, Source) else Source(s) for s in sources]

    remote = RemoteEntities(listed, send, api.contexts.core, deadline_s=deadline_s,
                            now=api.service.now)
    return Client(api.with_remote(remote), owner="RENKEI/GOV/DISASTER/OFFICE")


@pytest.fixture
async def providers(api: NgsiLdApi, make_gauge: Any) -> NgsiLdApi:
    river = Client(api, owner=str(RIVER.subsystem))
    transit = Client(api, owner=str(TRANSIT.subsystem))
    for body in (make_gauge(1, 139.705, 35.681, 2.4), make_gauge(2, 139.90, 35.80, 1.1)):
        assert (await river.call("POST", "/entities", body)).status == 201
    assert (await transit.call("POST", "/entities", stop(1, 139.701, 35.679))).status == 201
    return api


async def test_a_query_merges_every_source_by_entity_id(providers: NgsiLdApi) -> None:
    client = federated(providers, through_store(providers), [RIVER, TRANSIT])
    response = await client.call("GET", "/entities", query=QUERY + "&count=true")
    assert response.status == 200, response.json
    assert [e["id"] for e in response.json] == [
        "urn:ngsi-ld:GtfsStop:stop-1", "urn:ngsi-ld:WaterObserved:gauge-1"
    ]
    assert response.json[1]["waterLevel"]["value"] == 2.4
    assert ("NGSILD-Results-Count", "2") in response.headers
    assert not [h for h in response.headers if h[0] == "NGSILD-Warning"]
    # local=true reads the caller's own entities only: it has none.
    local = await client.call("GET", "/entities", query=QUERY + "&local=true")
    assert local.json == []


async def test_user_context_names_travel_expanded_and_come_back_compacted(
    providers: NgsiLdApi,
) -> None:
    client = federated(providers, through_store(providers), [RIVER])
    response = await client.call("GET", "/entities", query="type=WaterObserved&q=waterLevel>2")
    assert [e["id"] for e in response.json] == ["urn:ngsi-ld:WaterObserved:gauge-1"]
    assert "waterLevel" in response.json[0]


async def test_paging_runs_over_the_merged_answer(providers: NgsiLdApi) -> None:
    client = federated(providers, through_store(providers), [RIVER, TRANSIT])
    first = await client.call("GET", "/entities", query="type=WaterObserved,GtfsStop&limit=2")
    rest = await client.call(
        "GET", "/entities", query="type=WaterObserved,GtfsStop&limit=2&offset=2"
    )
    assert [e["id"].rsplit(":", 1)[1] for e in first.json + rest.json] == [
        "stop-1", "gauge-1", "gauge-2"
    ]


async def test_a_failed_source_is_reported_in_a_warning(providers: NgsiLdApi) -> None:
    answer = through_store(providers)

    async def send(
        client: str, service: ServiceId, path: str, headers: Headers = ()
    ) -> tuple[int, bytes]:
        if service == RIVER:
            raise LegFailed("server.clientproxy.network_error: cannot reach the river")
        return await answer(client, service, path, headers)

    response = await federated(providers, send, [RIVER, TRANSIT]).call(
        "GET", "/entities", query=QUERY
    )
    assert response.status == 200
    assert [e["id"] for e in response.json] == ["urn:ngsi-ld:GtfsStop:stop-1"]
    warnings = [value for name, value in response.headers if name == "NGSILD-Warning"]
    assert warnings == [
        '199 - "RENKEI/GOV/RIVER/GAUGES/ngsi-ld: '
        'server.clientproxy.network_error: cannot reach the river"'
    ]


async def test_a_source_past_the_deadline_is_reported_not_awaited(providers: NgsiLdApi) -> None:
    answer = through_store(providers)
    release = asyncio.Event()

    async def send(
        client: str, service: ServiceId, path: str, headers: Headers = ()
    ) -> tuple[int, bytes]:
        if service == RIVER:
            await release.wait()
        return await answer(client, service, path, headers)

    client = federated(providers, send, [RIVER, TRANSIT], deadline_s=0.2)
    response = await client.call("GET", "/entities", query=QUERY)
    release.set()
    assert [e["id"] for e in response.json] == ["urn:ngsi-ld:GtfsStop:stop-1"]
    warnings = [value for name, value in response.headers if name == "NGSILD-Warning"]
    assert len(warnings) == 1
    assert "RIVER/GAUGES/ngsi-ld: no answer within 0.2 s" in warnings[0]


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (403, b"{}", "the service answered 403"),
        (200, b"not json", "not JSON"),
        (200, b"{}", "not a list"),
        (200, json.dumps([{"id": "not an IRI"}]).encode(), "bad entity"),
    ],
)
async def test_an_unusable_answer_is_a_warning_not_data(
    providers: NgsiLdApi, status: int, body: bytes, reason: str
) -> None:
    async def send(
        client: str, service: ServiceId, path: str, headers: Headers = ()
    ) -> tuple[int, bytes]:
        return status, body

    response = await federated(providers, send, [RIVER]).call("GET", "/entities", query=QUERY)
    assert response.json == []
    warnings = [value for name, value in response.headers if name == "NGSILD-Warning"]
    assert len(warnings) == 1
    assert reason in warnings[0]


async def test_retrieval_by_id_asks_the_sources(providers: NgsiLdApi) -> None:
    client = federated(providers, through_store(providers), [RIVER, TRANSIT])
    found = await client.call("GET", "/entities/urn:ngsi-ld:WaterObserved:gauge-2")
    assert found.status == 200
    assert found.json["waterLevel"]["value"] == 1.1
    missing = await client.call("GET", "/entities/urn:ngsi-ld:WaterObserved:none")
    assert missing.status == 404
    assert not [h for h in missing.headers if h[0] == "NGSILD-Warning"]


async def test_retrieval_not_found_still_says_which_source_failed(providers: NgsiLdApi) -> None:
    async def send(
        client: str, service: ServiceId, path: str, headers: Headers = ()
    ) -> tuple[int, bytes]:
        raise LegFailed("server.serverproxy.access_denied: not allowed")

    missing = await federated(providers, send, [RIVER]).call(
        "GET", "/entities/urn:ngsi-ld:WaterObserved:gauge-2"
    )
    assert missing.status == 404
    assert any("access_denied" in value for name, value in missing.headers
               if name == "NGSILD-Warning")


async def test_a_consumer_never_asks_its_own_service(providers: NgsiLdApi) -> None:
    asked: list[ServiceId] = []

    async def send(
        client: str, service: ServiceId, path: str, headers: Headers = ()
    ) -> tuple[int, bytes]:
        asked.append(service)
        return 200, b"[]"

    api = providers
    remote = RemoteEntities(lambda: _listed([RIVER, TRANSIT]), send, api.contexts.core,
                            deadline_s=5, now=api.service.now)
    client = Client(api.with_remote(remote), owner=str(RIVER.subsystem))
    response = await client.call("GET", "/entities", query=QUERY)
    assert asked == [TRANSIT]
    assert [e["id"] for e in response.json] == ["urn:ngsi-ld:WaterObserved:gauge-1"]


async def _listed(sources: list[ServiceId]) -> list[Source]:
    return [Source(s) for s in sources]


async def test_the_store_service_answers_reads_only(providers: NgsiLdApi) -> None:
    for method, path in (("POST", "/entities"), ("DELETE", "/entities/urn:a:b"),
                         ("GET", "/jsonldContexts"), ("PATCH", "/entities/urn:a:b/attrs")):
        request = parse_exchange_request(
            method, f"/r1/{RIVER}{path}", [("X-Road-Client", OWNER)], instance="RENKEI"
        )
        status, headers, body = await answer_from_store(providers, request)
        body.close()
        assert status == 405
        assert ("allow", "GET") in headers


async def test_the_store_service_reads_the_service_subsystems_entities_only(
    providers: NgsiLdApi,
) -> None:
    # The transit service never answers with the river's gauges.
    status, _, body = await answer_from_store(providers, parse_exchange_request(
        "GET", f"/r1/{TRANSIT}/entities?type=WaterObserved", [("X-Road-Client", OWNER)],
        instance="RENKEI",
    ))
    assert status == 200
    assert json.loads(body.content()) == []


def test_merge_keeps_the_first_holders_attributes_and_adds_the_others() -> None:
    first = {"id": "urn:a:1", "type": "T", "attrs": {"x": {"type": "Property", "value": 1}}}
    second = {"id": "urn:a:1", "type": "T", "attrs": {"x": {"type": "Property", "value": 2},
                                                     "y": {"type": "Property", "value": 3}}}
    other = {"id": "urn:a:0", "type": "T", "attrs": {}}
    merged = merge_entities([[first], [second, other]])
    assert [e["id"] for e in merged] == ["urn:a:0", "urn:a:1"]
    assert merged[1]["attrs"] == {"x": {"type": "Property", "value": 1},
                                  "y": {"type": "Property", "value": 3}}
    assert first["attrs"] == {"x": {"type": "Property", "value": 1}}  # not changed in place


def test_a_warning_quotes_what_it_carries() -> None:
    value = warning(Leg(RIVER, failure='said "no" \\ twice'))
    assert value == '199 - "RENKEI/GOV/RIVER/GAUGES/ngsi-ld: said \\"no\\" \\\\ twice"'


async def test_a_source_is_asked_only_when_its_registration_may_hold_a_match(
    providers: NgsiLdApi,
) -> None:
    asked: list[ServiceId] = []
    answer = through_store(providers)

    async def send(
        client: str, service: ServiceId, path: str, headers: Headers = ()
    ) -> tuple[int, bytes]:
        asked.append(service)
        return await answer(client, service, path, headers)

    store = providers.service.store
    river = Source(RIVER, frozenset(
        t["type"] for t in (await store_registration(store, str(RIVER.subsystem)))
        ["information"][0]["entities"]
    ), True, await store.area(str(RIVER.subsystem)))
    stop_type = "https://uri.etsi.org/ngsi-ld/default-context/GtfsStop"
    # Registered as elsewhere: not asked by a geo-query near the shelter.
    transit = Source(TRANSIT, frozenset({stop_type}), True, (139.0, 35.0, 139.1, 35.1))
    client = federated(providers, send, [river, transit])
    stops = await client.call("GET", "/entities", query="type=GtfsStop")
    assert asked == [TRANSIT]  # the river holds no stops
    assert [e["id"] for e in stops.json] == ["urn:ngsi-ld:GtfsStop:stop-1"]
    asked.clear()
    near = await client.call("GET", "/entities", query=QUERY)
    assert asked == [RIVER]  # the transit source's area is far from the shelter
    assert [e["id"] for e in near.json] == ["urn:ngsi-ld:WaterObserved:gauge-1"]
    asked.clear()
    await client.call("GET", "/entities/urn:ngsi-ld:GtfsStop:stop-1")
    assert sorted(map(str, asked)) == sorted(map(str, [RIVER, TRANSIT]))  # by id: everyone


async def test_the_registration_says_what_the_store_holds(providers: NgsiLdApi) -> None:
    store = providers.service.store
    registration = await store_registration(store, str(RIVER.subsystem))
    information = registration["information"][0]
    assert [e["type"] for e in information["entities"]] == [
        "https://uri.etsi.org/ngsi-ld/default-context/WaterObserved"
    ]
    assert "https://uri.etsi.org/ngsi-ld/location" in information["propertyNames"]
    assert information["relationshipNames"] == [
        "https://uri.etsi.org/ngsi-ld/default-context/refRiver"
    ]
    assert registration["bbox"] == [139.705, 35.681, 139.9, 35.8]
    empty = await store_registration(store, "RENKEI/GOV/NOBODY/X")
    assert empty["information"][0]["entities"] == []
    assert empty["bbox"] is None


async def test_the_callers_exchange_headers_travel_with_every_leg(providers: NgsiLdApi) -> None:
    seen: list[Headers] = []

    async def send(
        client: str, service: ServiceId, path: str, headers: Headers = ()
    ) -> tuple[int, bytes]:
        seen.append(headers)
        return 200, b"[]"

    client = federated(providers, send, [RIVER, TRANSIT])
    carried = (("X-Road-Id", "office-42"), ("Renkei-Purpose", "evacuation"))
    await client.api.handle(client.owner, NgsiRequest(
        "GET", "/entities", "type=WaterObserved", {}, exchange_headers=carried
    ))
    await client.api.handle(client.owner, NgsiRequest(
        "GET", "/entities/urn:ngsi-ld:WaterObserved:none", "", {}, exchange_headers=carried
    ))
    assert seen == [carried] * 4


async def test_an_entity_whose_id_has_slashes_is_retrieved_from_its_holder(
    providers: NgsiLdApi,
) -> None:
    river = Client(providers, owner=str(RIVER.subsystem))
    body = {"id": "https://data.example.org/gauges/7", "type": "WaterObserved",
            "height": {"type": "Property", "value": 3.1}}
    assert (await river.call("POST", "/entities", body)).status == 201
    client = federated(providers, through_store(providers), [RIVER, TRANSIT])
    found = await client.call("GET", "/entities/https%3A%2F%2Fdata.example.org%2Fgauges%2F7")
    assert found.status == 200, found.json
    assert found.json["height"]["value"] == 3.1

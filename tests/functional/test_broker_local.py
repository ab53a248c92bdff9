"""A provider's system publishes NGSI-LD entities to its own node and reads them back."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.functional.sandbox_helpers import client_headers, node

PUBLISHER = "RENKEI/GOV/HOSP-B/EHR"
OUTSIDER = "RENKEI/COM/INSURER/CLAIMS"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"
GAUGE = {
    "id": "urn:ngsi-ld:WaterObserved:gauge-1",
    "type": "WaterObserved",
    "waterLevel": {"type": "Property", "value": 2.4, "unitCode": "MTR"},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [139.7, 35.68]}},
}


async def test_publish_and_query_on_the_client_port(federation: dict[str, Any]) -> None:
    base = f"{node(federation, HOSP_B)['client_url']}/ngsi-ld/v1"
    headers = client_headers(federation, PUBLISHER)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/entities", json=GAUGE, headers=headers) as created:
            assert created.status == 201, await created.text()
        async with session.get(
            f"{base}/entities",
            params={"type": "WaterObserved", "georel": "near;maxDistance==500",
                    "geometry": "Point", "coordinates": "[139.701,35.68]"},
            headers=headers,
        ) as found:
            assert found.status == 200
            assert [e["id"] for e in await found.json()] == [GAUGE["id"]]
            assert "rel=\"http://www.w3.org/ns/json-ld#context\"" in found.headers["Link"]
        # A caller that is not a client of this node is refused by the node itself.
        async with session.get(
            f"{base}/entities/{GAUGE['id']}", headers={"X-Road-Client": OUTSIDER}
        ) as refused:
            assert refused.status in (400, 401)
            assert "X-Road-Error" in refused.headers
        async with session.get(f"{base}/entities/{GAUGE['id']}") as anonymous:
            assert anonymous.status == 400
            assert anonymous.headers["X-Road-Error"] == "client.bad_request"

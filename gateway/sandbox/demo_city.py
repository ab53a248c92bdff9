"""``make demo`` (second scene): the city's data broker, with the data at its holders.

Starts the city federation (``city.toml``): the river authority and the transit
operator each publish NGSI-LD entities to their own node (water levels; the
transit operator's GTFS feed converted to stops, routes and trips), the disaster
office asks its own node for "water-level sensors within 2 km of the shelter"
and "bus stops near the shelter", and its node asks both providers as signed,
audited exchanges. The port authority's service grants nobody access: the
answer says so in an ``NGSILD-Warning`` header. Exits 0 only if every step
behaved as described.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp

from gateway.broker.convert.contexts import (
    CORE_CONTEXT,
    ENVIRONMENT_CONTEXT,
    URBAN_MOBILITY_CONTEXT,
)
from gateway.broker.convert.gtfs import convert_gtfs
from gateway.sandbox.demo import DemoFailed, _expect, _node, _say, _step
from gateway.sandbox.description import load_description
from gateway.sandbox.run import sandbox_running

__all__ = ["main"]

RIVER, TRANSIT, DISASTER = (
    "RENKEI/GOV/RIVER/ss1", "RENKEI/COM/TRANSIT/ss1", "RENKEI/GOV/DISASTER/ss1"
)
GAUGES, STOPS, CRANES, OFFICE = (
    "RENKEI/GOV/RIVER/GAUGES", "RENKEI/COM/TRANSIT/STOPS", "RENKEI/COM/PORT/CRANES",
    "RENKEI/GOV/DISASTER/OFFICE",
)
# The shelter, in Beatty (the sample GTFS feed's town), longitude first.
SHELTER = "[-116.7600,36.9050]"
NEAR = {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": SHELTER}
LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def _gauge(name: str, lon: float, lat: float, level: float) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:WaterObserved:amargosa-{name}",
        "type": "WaterObserved",
        "name": {"type": "Property", "value": f"Amargosa River at {name}"},
        "height": {"type": "Property", "value": level, "unitCode": "MTR",
                   "observedAt": "2026-03-01T09:00:00Z"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [lon, lat]}},
        "@context": [ENVIRONMENT_CONTEXT],
    }


GAUGES_DATA = [
    _gauge("beatty-bridge", -116.7580, 36.9020, 2.4),
    _gauge("narrows", -116.7700, 36.8950, 1.9),
    _gauge("tecopa", -116.2260, 35.8480, 0.6),  # far downstream
]
CRANE = {"id": "urn:ngsi-ld:Crane:crane-1", "type": "Crane",
         "location": {"type": "GeoProperty",
                      "value": {"type": "Point", "coordinates": [-116.76, 36.905]}},
         "@context": [CORE_CONTEXT]}


def _headers(document: dict[str, Any], subsystem: str, **extra: str) -> dict[str, str]:
    headers = {"X-Road-Client": subsystem, **extra}
    for node in document["nodes"]:
        token = node.get("clients", {}).get(subsystem, {}).get("token")
        if token is not None:
            headers["Renkei-Client-Token"] = token
    return headers


async def _upsert(session: aiohttp.ClientSession, document: dict[str, Any], node_id: str,
                  owner: str, entities: list[dict[str, Any]]) -> None:
    async with session.post(
        f"{_node(document, node_id)['client_url']}/ngsi-ld/v1/entityOperations/upsert",
        data=json.dumps(entities),
        headers=_headers(document, owner, **{"Content-Type": "application/ld+json"}),
    ) as response:
        _expect(response.status in (201, 204),
                f"{owner} published {len(entities)} entities to its own node")


async def _wait_for_catalogue(session: aiohttp.ClientSession, document: dict[str, Any]) -> None:
    for _ in range(120):
        async with session.get(f"{document['registry']['url']}/catalogue") as response:
            # Each registration says what its holder published: types and area.
            marked = [e["service"] for e in (await response.json())["services"]
                      if (e.get("openapi") or {}).get("x-ngsi-ld", {}).get("bbox")]
        if len(marked) == 3:
            _expect(True, f"the registry's catalogue lists {len(marked)} NGSI-LD services")
            return
        await asyncio.sleep(0.5)
    raise DemoFailed("the NGSI-LD services did not reach the registry's catalogue")


async def _ask(session: aiohttp.ClientSession, document: dict[str, Any], entity_type: str,
               context: str) -> tuple[list[dict[str, Any]], list[str]]:
    async with session.get(
        f"{_node(document, DISASTER)['client_url']}/ngsi-ld/v1/entities",
        params={"type": entity_type, **NEAR, "options": "keyValues"},
        headers=_headers(document, OFFICE, Link=LINK.format(context)),
    ) as response:
        _expect(response.status == 200, f"the office's node answered {response.status}")
        return list(await response.json()), response.headers.getall("NGSILD-Warning", [])


async def _demo(document: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        _step(2, "The holders publish to their own nodes; nothing central")
        await _upsert(session, document, RIVER, GAUGES, GAUGES_DATA)
        feed = resources.files("gateway.sandbox") / "data" / "gtfs"
        with resources.as_file(feed) as path:
            conversion = convert_gtfs(path, "beatty")
            entities = list(conversion.entities())
        _say(f"   GTFS feed converted: {dict(sorted(conversion.counts.items()))}")
        await _upsert(session, document, TRANSIT, STOPS, entities)
        await _upsert(session, document, TRANSIT, CRANES, [CRANE])
        await _wait_for_catalogue(session, document)

        _step(3, "Disaster office: water-level sensors within 2 km of the shelter")
        found, warnings = await _ask(session, document, "WaterObserved", ENVIRONMENT_CONTEXT)
        for entity in found:
            _say(f"   {entity['id']}: {entity['height']} m")
        _expect(sorted(e["id"].rsplit("-", 1)[-1] for e in found) == ["bridge", "narrows"],
                "the two gauges near the shelter, not the one downstream")
        _expect(not warnings, "only the river authority was asked: its registration "
                "is the one with water levels there")

        _step(4, "Disaster office: bus stops near the shelter")
        stops, _ = await _ask(session, document, "GtfsStop", URBAN_MOBILITY_CONTEXT)
        for stop in stops:
            _say(f"   {stop['id']}: {stop.get('name')}")
        _expect(bool(stops), f"{len(stops)} stop(s) of the transit operator near the shelter")

        _step(5, "Disaster office: cranes near the shelter (the port grants nobody)")
        cranes, warnings = await _ask(session, document, "Crane", CORE_CONTEXT)
        for warning in warnings:
            _say(f"   NGSILD-Warning: {warning}")
        _expect(not cranes and any(CRANES in w and "access_denied" in w for w in warnings),
                "the port's refusal is named in the answer, not left out silently")

        _step(6, "Every leg was an exchange, audited on both nodes")
        rows: dict[str, list[dict[str, Any]]] = {}
        for node_id in (DISASTER, RIVER):
            node = _node(document, node_id)
            async with session.get(
                f"{node['management_url']}/api/audit/rows",
                headers={"Authorization": f"Bearer {node['tokens']['auditor']}"},
            ) as response:
                rows[node_id] = list((await response.json())["rows"])
        legs = [r for r in rows[DISASTER] if r["service"] == f"{GAUGES}/ngsi-ld"]
        held = {r["request_hash"] for r in rows[RIVER] if r["role"] == "provider"}
        _expect(bool(legs) and all(r["request_hash"] in held for r in legs),
                f"{len(legs)} leg(s) to the river authority, each in both nodes' logs")


async def _run() -> int:
    work = Path(tempfile.mkdtemp(prefix="renkei-city-"))
    try:
        _step(1, "Starting the city federation (river, transit and port, disaster office)")
        started = time.perf_counter()
        city = resources.files("gateway.sandbox") / "city.toml"
        with resources.as_file(city) as path:
            description = load_description(path)
        async with sandbox_running(description, work) as (_, text):
            document = json.loads(text)
            _say(f"   ready in {time.perf_counter() - started:.1f} s")
            await _demo(document)
        _say()
        _say("City scene complete: the data stayed with its holders. The federation has stopped.")
        return 0
    except DemoFailed as exc:
        _say(f"\n   ✗ {exc}")
        _say(f"   (logs of the processes are in {work / 'logs'})")
        return 1
    finally:
        if sys.exc_info()[0] is None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    return asyncio.run(_run())


if __name__ == "__main__":
    sys.exit(main())

"""Distributed NGSI-LD reads: one consumer query fanned out to the providers.

A consumer's ``GET /ngsi-ld/v1/entities`` (or ``/entities/{id}``) to its own
node is answered from the node's own entities and from every provider NGSI-LD
service registered in the registry's catalogue, in parallel and within a
deadline (ETSI GS CIM 009 V1.8.1 clause 4.3.6, distributed operations). The
consumer node expands every name itself, so a leg carries full IRIs and needs no
user ``@context``. Each leg is a normal exchange made through the consumer
relay (``send``: signed with the client's member key, audited on both nodes, the
provider node enforcing access rights and consent as for any call). Results are
merged by entity id; a provider that refuses, fails or does not answer in time
is reported in an ``NGSILD-Warning`` header (clause 6.3.17), never left out
silently.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import structlog

from certs.identifiers import ServiceId
from gateway.broker.entities import Entity, parse_entity
from gateway.broker.errors import NgsiLdError
from gateway.broker.ldcontext import ActiveContext
from gateway.broker.registration import Source
from gateway.broker.service import EntityQuery

__all__ = [
    "WARNING_HEADER",
    "Headers",
    "Leg",
    "LegFailed",
    "RemoteEntities",
    "merge_entities",
    "warning",
]

log = structlog.get_logger(__name__)

WARNING_HEADER = "NGSILD-Warning"
# A leg asks a provider for at most this many entities (the API's own maximum).
LEG_LIMIT = 1000


class LegFailed(Exception):
    """A leg that brought no entities: refused, failed, or an unusable answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Headers = tuple[tuple[str, str], ...]
# (client, service, path and query below the service, the caller's exchange
# headers) -> (status, body); raises LegFailed. The production sender is the
# consumer relay (``gateway/broker/legs.py``).
Send = Callable[[str, ServiceId, str, Headers], Awaitable[tuple[int, bytes]]]


@dataclass(frozen=True)
class Leg:
    """What one provider service answered."""

    service: ServiceId
    entities: tuple[Entity, ...] = ()
    failure: str | None = None


def warning(leg: Leg) -> str:
    """An ``NGSILD-Warning`` value (HTTP Warning syntax, code 199) naming the source."""
    text = f"{leg.service}: {leg.failure}".replace("\\", "\\\\").replace('"', '\\"')
    return f'199 - "{text[:500]}"'


def merge_entities(groups: Sequence[Sequence[Entity]]) -> list[Entity]:
    """One entity per id, in id order; attributes the first holder lacks are added.

    Groups come in a fixed order (the node's own entities first, then the
    sources in catalogue order), so the answer does not depend on which leg
    answered first.
    """
    merged: dict[str, Entity] = {}
    for entities in groups:
        for entity in entities:
            held = merged.get(entity["id"])
            if held is None:
                merged[entity["id"]] = {**entity, "attrs": dict(entity["attrs"])}
                continue
            for name, attribute in entity["attrs"].items():
                held["attrs"].setdefault(name, attribute)
    return sorted(merged.values(), key=lambda entity: entity["id"])


def leg_query(query: EntityQuery, params: dict[str, str]) -> str:
    """The leg's query string: the consumer's query with every name expanded."""
    pairs: list[tuple[str, str]] = []
    if query.types is not None:
        pairs.append(("type", ",".join(query.types)))
    if query.ids is not None:
        pairs.append(("id", ",".join(query.ids)))
    if query.id_pattern is not None:
        pairs.append(("idPattern", query.id_pattern.pattern))
    if query.attrs is not None:
        pairs.append(("attrs", ",".join(query.attrs)))
    if query.geo is not None:
        for name in ("georel", "geometry", "coordinates"):
            pairs.append((name, params[name]))
        pairs.append(("geoproperty", query.geo_attribute or "location"))
    if query.q is not None and len(pairs) == 0:
        # q is applied here, on expanded names; a leg needs some other filter.
        pairs.append(("local", "true"))
    # q is evaluated on the merged entities, so a leg with q brings all it may.
    wanted = LEG_LIMIT if query.q is not None else min(LEG_LIMIT, query.offset + query.limit)
    pairs.append(("limit", str(max(wanted, 1))))
    return urlencode(pairs, quote_via=quote)


class RemoteEntities:
    """The providers' side of a consumer's read, over ``send``."""

    def __init__(
        self,
        sources: Callable[[], Awaitable[Sequence[Source]]],
        send: Send,
        core: Callable[[], ActiveContext],
        *,
        deadline_s: float,
        now: Callable[[], str],
    ) -> None:
        self._sources = sources
        self._send = send
        self._core = core
        self._deadline_s = deadline_s
        self._now = now
        # Legs past the deadline finish (and are audited) in the background.
        self._late: set[asyncio.Task[Leg]] = set()

    async def query(
        self, client: str, query: EntityQuery, params: dict[str, str], headers: Headers = ()
    ) -> list[Leg]:
        """Every source whose registration may hold a match, asked in parallel."""
        services = [s.service for s in await self._sources()
                    if s.may_hold(query) and str(s.service.subsystem) != client]
        target = "/entities?" + leg_query(query, params)
        return await self._fan_out(client, services, target, headers)

    async def retrieve(self, client: str, entity_id: str, headers: Headers = ()) -> list[Leg]:
        services = [s.service for s in await self._sources()
                    if str(s.service.subsystem) != client]
        # As a query by id: any IRI travels in the query string (an encoded "/" in
        # a path is refused on /r1/), and one access right (GET /entities) serves both.
        target = "/entities?" + urlencode([("id", entity_id), ("limit", "1")], quote_via=quote)
        return await self._fan_out(client, services, target, headers)

    async def _fan_out(
        self, client: str, services: list[ServiceId], target: str, headers: Headers
    ) -> list[Leg]:
        tasks = [
            asyncio.create_task(self._leg(client, service, target, headers))
            for service in services
        ]
        if not tasks:
            return []
        done, _pending = await asyncio.wait(tasks, timeout=self._deadline_s)
        legs = []
        for service, task in zip(services, tasks, strict=True):
            if task in done:
                legs.append(task.result())
            else:
                legs.append(Leg(service, failure=f"no answer within {self._deadline_s:g} s"))
                self._late.add(task)
                task.add_done_callback(self._late.discard)
        return legs

    async def _leg(
        self, client: str, service: ServiceId, target: str, headers: Headers
    ) -> Leg:
        try:
            status, body = await self._send(client, service, target, headers)
            if status != 200:
                raise LegFailed(f"the service answered {status}")
            return Leg(service, entities=tuple(self._entities(body)))
        except LegFailed as exc:
            log.info("ngsi_ld_leg_failed", service=str(service), reason=exc.reason[:300])
            return Leg(service, failure=exc.reason)

    def _entities(self, body: bytes) -> list[Entity]:
        try:
            items: Any = json.loads(body)
        except ValueError as exc:
            raise LegFailed("the service's answer is not JSON") from exc
        if not isinstance(items, list):
            raise LegFailed("the service's answer is not a list of entities")
        core, now = self._core(), self._now()
        try:
            return [parse_entity(item, core, now=now) for item in items]
        except NgsiLdError as exc:
            raise LegFailed(f"the service's answer holds a bad entity: {exc}") from exc

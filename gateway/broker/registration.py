"""What a provider's NGSI-LD service offers: its context-source registration.

The spirit of a CSourceRegistration (ETSI GS CIM 009 V1.8.1 clause 5.2.9):
``information`` (entity types, property and relationship names, all expanded
IRIs) and the area its entities lie in. An ``ngsi-ld:store`` service's
registration is read from the provider's own store each time the node
publishes its catalogue, so it says what is there, not what someone declared.
It travels in the catalogue as the ``x-ngsi-ld`` extension of the service's
OpenAPI description; a consumer node reads it back with :func:`source_of`.

A registration only narrows whom a consumer node asks: a source that says
nothing about types or area is asked for everything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from certs.identifiers import ServiceId
from gateway.broker.geoquery import BoundingBox
from gateway.broker.service import EntityQuery
from gateway.broker.store import EntityStore

if TYPE_CHECKING:
    from gateway.context import NodeContext
    from gateway.services import Service

__all__ = ["EXTENSION", "Source", "ngsi_ld_registration", "source_of", "store_registration"]

log = structlog.get_logger(__name__)

EXTENSION = "x-ngsi-ld"
VERSION = "1.8.1"
_MAX_TYPES = 1000


async def store_registration(store: EntityStore, owner: str) -> dict[str, Any]:
    """The registration of ``owner``'s entities in ``store``."""
    types = await store.types(owner)
    properties = sorted({name for _, _, attrs in types for name, kind in attrs
                         if kind != "Relationship"})
    relationships = sorted({name for _, _, attrs in types for name, kind in attrs
                            if kind == "Relationship"})
    area = await store.area(owner)
    return {
        "version": VERSION,
        "operations": ["query", "retrieve"],
        "information": [{
            "entities": [{"type": entity_type} for entity_type, _, _ in types],
            "propertyNames": properties,
            "relationshipNames": relationships,
        }],
        "bbox": list(area) if area is not None else None,
    }


def ngsi_ld_registration(
    ctx: NodeContext,
) -> Callable[[Service], Awaitable[dict[str, Any]]]:
    """The registrations a node publishes: its store's, for ``ngsi-ld:store`` services."""

    async def registration(service: Service) -> dict[str, Any]:
        unsaid = {"version": VERSION, "operations": ["query", "retrieve"]}
        if ctx.ngsi_ld is None:
            return unsaid
        try:
            return await store_registration(
                ctx.ngsi_ld.service.store, str(service.service.subsystem)
            )
        except (SQLAlchemyError, OSError) as exc:
            # Saying nothing makes consumers ask this service for everything.
            log.warning("ngsi_ld_registration_unread", service=str(service.service),
                        error=exc.__class__.__name__)
            return unsaid

    return registration


@dataclass(frozen=True)
class Source:
    """A provider NGSI-LD service as its registration describes it."""

    service: ServiceId
    types: frozenset[str] | None = None  # None: not said; asked for every type
    area_known: bool = False
    bbox: BoundingBox | None = None  # with area_known: None means no geometry at all

    def may_hold(self, query: EntityQuery) -> bool:
        """False only when the registration rules out every match of ``query``."""
        if query.types is not None and self.types is not None and (
            self.types.isdisjoint(query.types)
        ):
            return False
        if query.geo is None or not self.area_known:
            return True
        if self.bbox is None:
            return False  # nothing of this source has a geometry to match
        box = query.geo.candidate_box()
        if box is None:
            return True
        return not (box[2] < self.bbox[0] or self.bbox[2] < box[0]
                    or box[3] < self.bbox[1] or self.bbox[3] < box[1])


def source_of(service: ServiceId, registration: dict[str, Any]) -> Source:
    """A catalogue entry's source; what is malformed is taken as not said."""
    types: frozenset[str] | None = None
    information = registration.get("information")
    if isinstance(information, list) and len(information) == 1 and isinstance(
        information[0], dict
    ):
        entities = information[0].get("entities")
        if isinstance(entities, list) and len(entities) <= _MAX_TYPES:
            named = [e.get("type") for e in entities if isinstance(e, dict)]
            strings = [t for t in named if isinstance(t, str)]
            if len(strings) == len(entities):
                types = frozenset(strings)
    if "bbox" not in registration:
        return Source(service, types)
    bbox = registration["bbox"]
    if bbox is None:
        return Source(service, types, area_known=True)
    if (isinstance(bbox, list) and len(bbox) == 4
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)):
        return Source(service, types, True, (float(bbox[0]), float(bbox[1]),
                                             float(bbox[2]), float(bbox[3])))
    return Source(service, types)

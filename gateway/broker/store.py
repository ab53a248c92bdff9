"""The entity store: a provider's NGSI-LD entities in the node's own database.

Each entity row belongs to the provider subsystem that published it (``owner``):
one node may hold the entities of several subsystems, and a service serves only
its own subsystem's. Two side tables keep what queries need indexed:

- ``ngsi_entity_attrs``: which attributes an entity has (``attrs``, ``/types``,
  ``/attributes``);
- ``ngsi_entity_geo``: the bounding box of every GeoProperty, on plain numeric
  columns indexed with the owner, type and attribute, so a geo-query reads only
  the rows whose box can match; the exact test is made in Python (``geoquery``).
  Boxes taller than ``_SMALL_SPAN`` degrees are marked ``large`` and always read,
  so the latitude range stays narrow for the many small ones (points, buildings).

Entity bodies are stored as JSON text in the stored form of ``entities``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.broker.entities import Entity
from gateway.broker.errors import AlreadyExists, ResourceNotFound
from gateway.broker.geoquery import BoundingBox, bounding_box, parse_geometry
from gateway.db import Base, is_sqlite, read_only

__all__ = [
    "ATTRS",
    "CONTEXTS",
    "ENTITIES",
    "GEO",
    "Candidates",
    "EntityStore",
]

_ID = 1024
_Pk = BigInteger().with_variant(Integer, "sqlite")
_SMALL_SPAN = 0.1  # degrees of latitude, about 11 km
_PAGE = 500

ENTITIES = Table(
    "ngsi_entities",
    Base.metadata,
    Column("pk", _Pk, primary_key=True, autoincrement=True),
    Column("owner", String(_ID), nullable=False),
    Column("entity_id", String(_ID), nullable=False),
    Column("entity_type", String(_ID), nullable=False),
    Column("body", Text, nullable=False),
    Column("modified_at", String(40), nullable=False),
    UniqueConstraint("owner", "entity_id", name="uq_ngsi_entities_owner_id"),
    Index("ix_ngsi_entities_owner_type", "owner", "entity_type"),
)
ATTRS = Table(
    "ngsi_entity_attrs",
    Base.metadata,
    Column("entity_pk", _Pk, ForeignKey("ngsi_entities.pk", ondelete="CASCADE"),
           primary_key=True),
    Column("attribute", String(_ID), primary_key=True),
    Column("owner", String(_ID), nullable=False),
    Column("entity_type", String(_ID), nullable=False),
    Column("kind", String(32), nullable=False),
    Index("ix_ngsi_entity_attrs_owner_attr", "owner", "attribute"),
)
GEO = Table(
    "ngsi_entity_geo",
    Base.metadata,
    Column("entity_pk", _Pk, ForeignKey("ngsi_entities.pk", ondelete="CASCADE"),
           primary_key=True),
    Column("attribute", String(_ID), primary_key=True),
    Column("owner", String(_ID), nullable=False),
    Column("entity_type", String(_ID), nullable=False),
    Column("large", Boolean, nullable=False),
    Column("min_lon", Float, nullable=False),
    Column("min_lat", Float, nullable=False),
    Column("max_lon", Float, nullable=False),
    Column("max_lat", Float, nullable=False),
    Index("ix_ngsi_entity_geo_box", "owner", "entity_type", "attribute", "large", "min_lat"),
)
CONTEXTS = Table(
    "ngsi_contexts",
    Base.metadata,
    Column("url", String(_ID), primary_key=True),
    Column("body", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)


@dataclass(frozen=True)
class Candidates:
    """What the database can narrow a query by; the rest is tested in Python."""

    types: Sequence[str] | None = None
    ids: Sequence[str] | None = None
    any_attrs: Sequence[str] | None = None
    geo_attribute: str | None = None
    geo_box: BoundingBox | None = None
    require_geo: bool = False  # the entity must have the geo attribute at all


class EntityStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = read_only(engine)
        self._sqlite = is_sqlite(str(engine.url))

    async def create_schema(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(
                lambda sync: Base.metadata.create_all(
                    sync, tables=[ENTITIES, ATTRS, GEO, CONTEXTS]
                )
            )

    # --- reading ---------------------------------------------------------

    async def get(self, owner: str, entity_id: str) -> Entity:
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(
                    select(ENTITIES.c.body).where(
                        ENTITIES.c.owner == owner, ENTITIES.c.entity_id == entity_id
                    )
                )
            ).first()
        if row is None:
            raise ResourceNotFound(f"no entity {entity_id}")
        entity: Entity = json.loads(row.body)
        return entity

    async def candidates(self, owner: str, narrow: Candidates) -> AsyncIterator[Entity]:
        """Entities of ``owner`` that may match, in a stable order, read page by page."""
        boxes = [False, True] if narrow.geo_box is not None else [None]
        for large in boxes:
            last = 0
            while True:
                query = self._select(owner, narrow, large).where(ENTITIES.c.pk > last)
                async with self._reader.connect() as conn:
                    rows = (
                        await conn.execute(query.order_by(ENTITIES.c.pk).limit(_PAGE))
                    ).all()
                for row in rows:
                    yield json.loads(row.body)
                if len(rows) < _PAGE:
                    break
                last = rows[-1].pk

    def _select(self, owner: str, narrow: Candidates, large: bool | None) -> Any:
        query = select(ENTITIES.c.pk, ENTITIES.c.body).where(ENTITIES.c.owner == owner)
        if narrow.types is not None:
            query = query.where(ENTITIES.c.entity_type.in_(list(narrow.types)))
        if narrow.ids is not None:
            query = query.where(ENTITIES.c.entity_id.in_(list(narrow.ids)))
        if narrow.any_attrs is not None:
            having = select(ATTRS.c.entity_pk).where(
                ATTRS.c.owner == owner, ATTRS.c.attribute.in_(list(narrow.any_attrs))
            )
            query = query.where(ENTITIES.c.pk.in_(having))
        if narrow.geo_attribute is not None and (narrow.geo_box is not None or narrow.require_geo):
            geo = GEO.c
            conditions = [geo.owner == owner, geo.attribute == narrow.geo_attribute]
            if narrow.types is not None:
                conditions.append(geo.entity_type.in_(list(narrow.types)))
            if narrow.geo_box is not None:
                min_lon, min_lat, max_lon, max_lat = narrow.geo_box
                conditions += [geo.large == bool(large), geo.max_lat >= min_lat,
                               geo.min_lon <= max_lon, geo.max_lon >= min_lon]
                if large:
                    conditions.append(geo.min_lat <= max_lat)
                else:
                    # Small boxes start at most _SMALL_SPAN below the query box.
                    conditions.append(geo.min_lat.between(min_lat - _SMALL_SPAN, max_lat))
            query = query.join(GEO, and_(GEO.c.entity_pk == ENTITIES.c.pk, *conditions))
        return query

    async def types(self, owner: str) -> list[tuple[str, int, list[tuple[str, str]]]]:
        """Each entity type with its entity count and its (attribute, kind) pairs."""
        async with self._reader.connect() as conn:
            counts = (
                await conn.execute(
                    select(ENTITIES.c.entity_type, func.count())
                    .where(ENTITIES.c.owner == owner)
                    .group_by(ENTITIES.c.entity_type)
                )
            ).all()
            attrs = (
                await conn.execute(
                    select(ATTRS.c.entity_type, ATTRS.c.attribute, ATTRS.c.kind)
                    .where(ATTRS.c.owner == owner)
                    .group_by(ATTRS.c.entity_type, ATTRS.c.attribute, ATTRS.c.kind)
                )
            ).all()
        by_type: dict[str, list[tuple[str, str]]] = {}
        for row in attrs:
            by_type.setdefault(row.entity_type, []).append((row.attribute, row.kind))
        return sorted(
            (row.entity_type, int(row[1]), sorted(by_type.get(row.entity_type, [])))
            for row in counts
        )

    async def area(self, owner: str) -> tuple[float, float, float, float] | None:
        """The box around every GeoProperty of ``owner``'s entities, None without any."""
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(
                    select(func.min(GEO.c.min_lon), func.min(GEO.c.min_lat),
                           func.max(GEO.c.max_lon), func.max(GEO.c.max_lat))
                    .where(GEO.c.owner == owner)
                )
            ).one()
        if row[0] is None:
            return None
        return float(row[0]), float(row[1]), float(row[2]), float(row[3])

    async def attributes(self, owner: str) -> list[tuple[str, int, list[str], list[str]]]:
        """Each attribute with the number of entities having it, its kinds and types."""
        async with self._reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(ATTRS.c.attribute, ATTRS.c.kind, ATTRS.c.entity_type, func.count())
                    .where(ATTRS.c.owner == owner)
                    .group_by(ATTRS.c.attribute, ATTRS.c.kind, ATTRS.c.entity_type)
                )
            ).all()
        table: dict[str, tuple[int, set[str], set[str]]] = {}
        for attribute, kind, entity_type, count in rows:
            total, kinds, types = table.get(attribute, (0, set(), set()))
            kinds.add(kind)
            types.add(entity_type)
            table[attribute] = (total + int(count), kinds, types)
        return sorted(
            (name, total, sorted(kinds), sorted(types))
            for name, (total, kinds, types) in table.items()
        )

    # --- writing ---------------------------------------------------------

    def transaction(self) -> Any:
        return self._engine.begin()

    async def insert(self, conn: AsyncConnection, owner: str, entity: Entity) -> None:
        try:
            async with conn.begin_nested():
                result = await conn.execute(insert(ENTITIES).values(**_row(owner, entity)))
                pk = int(result.inserted_primary_key[0])  # type: ignore[index]
                await self._index(conn, owner, pk, entity)
        except IntegrityError as exc:
            raise AlreadyExists(f"entity {entity['id']} exists") from exc

    async def existing(self, conn: AsyncConnection, owner: str, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            rows = await conn.execute(
                select(ENTITIES.c.entity_id).where(
                    ENTITIES.c.owner == owner, ENTITIES.c.entity_id.in_(wanted[start:start + 500])
                )
            )
            found.update(row.entity_id for row in rows)
        return found

    async def load_for_update(
        self, conn: AsyncConnection, owner: str, entity_id: str
    ) -> tuple[int, Entity]:
        query = select(ENTITIES.c.pk, ENTITIES.c.body).where(
            ENTITIES.c.owner == owner, ENTITIES.c.entity_id == entity_id
        )
        if not self._sqlite:
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        if row is None:
            raise ResourceNotFound(f"no entity {entity_id}")
        entity: Entity = json.loads(row.body)
        return int(row.pk), entity

    async def save(self, conn: AsyncConnection, owner: str, pk: int, entity: Entity) -> None:
        values = _row(owner, entity)
        await conn.execute(update(ENTITIES).where(ENTITIES.c.pk == pk).values(**values))
        await conn.execute(delete(ATTRS).where(ATTRS.c.entity_pk == pk))
        await conn.execute(delete(GEO).where(GEO.c.entity_pk == pk))
        await self._index(conn, owner, pk, entity)

    async def remove(self, conn: AsyncConnection, owner: str, entity_id: str) -> None:
        query = select(ENTITIES.c.pk).where(
            ENTITIES.c.owner == owner, ENTITIES.c.entity_id == entity_id
        )
        pk = (await conn.execute(query)).scalar()
        if pk is None:
            raise ResourceNotFound(f"no entity {entity_id}")
        # Explicitly, since SQLite enforces the cascade only with foreign keys on.
        await conn.execute(delete(ATTRS).where(ATTRS.c.entity_pk == pk))
        await conn.execute(delete(GEO).where(GEO.c.entity_pk == pk))
        await conn.execute(delete(ENTITIES).where(ENTITIES.c.pk == pk))

    async def _index(self, conn: AsyncConnection, owner: str, pk: int, entity: Entity) -> None:
        attrs, boxes = [], []
        for name, attribute in entity["attrs"].items():
            attrs.append({"entity_pk": pk, "attribute": name, "owner": owner,
                          "entity_type": entity["type"], "kind": attribute["type"]})
            if attribute["type"] == "GeoProperty":
                min_lon, min_lat, max_lon, max_lat = bounding_box(
                    parse_geometry(attribute["value"])
                )
                boxes.append({
                    "entity_pk": pk, "attribute": name, "owner": owner,
                    "entity_type": entity["type"], "large": max_lat - min_lat > _SMALL_SPAN,
                    "min_lon": min_lon, "min_lat": min_lat, "max_lon": max_lon,
                    "max_lat": max_lat,
                })
        if attrs:
            await conn.execute(insert(ATTRS), attrs)
        if boxes:
            await conn.execute(insert(GEO), boxes)

    # --- registered @contexts -------------------------------------------

    async def context(self, url: str) -> dict[str, Any] | None:
        async with self._reader.connect() as conn:
            query = select(CONTEXTS.c.body).where(CONTEXTS.c.url == url)
            body = (await conn.execute(query)).scalar()
        return None if body is None else dict(json.loads(body))

    async def context_urls(self) -> list[str]:
        async with self._reader.connect() as conn:
            query = select(CONTEXTS.c.url).order_by(CONTEXTS.c.url)
            return list((await conn.execute(query)).scalars())

    async def add_context(self, url: str, document: dict[str, Any], now: str) -> bool:
        async with self._engine.begin() as conn:
            query = select(CONTEXTS.c.url).where(CONTEXTS.c.url == url)
            exists = (await conn.execute(query)).first()
            if exists is not None:
                return False
            await conn.execute(
                insert(CONTEXTS).values(url=url, body=json.dumps(document), created_at=now)
            )
            return True

    async def remove_context(self, url: str) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(CONTEXTS).where(CONTEXTS.c.url == url))
        if not result.rowcount:
            raise ResourceNotFound(f"no registered @context {url}")


def _row(owner: str, entity: Entity) -> dict[str, Any]:
    return {
        "owner": owner,
        "entity_id": entity["id"],
        "entity_type": entity["type"],
        "body": json.dumps(entity, separators=(",", ":")),
        "modified_at": entity["modifiedAt"],
    }



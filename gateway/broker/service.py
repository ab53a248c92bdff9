"""The NGSI-LD operations of ETSI GS CIM 009 V1.8.1 clause 5 on one owner's entities.

Everything here works on the stored form (``entities``); the HTTP binding
(``views``) parses requests into it and renders answers from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from gateway.broker.entities import Attribute, Entity, merge_attribute, replaced
from gateway.broker.errors import (
    AlreadyExists,
    BadRequestData,
    NgsiLdError,
    ResourceNotFound,
)
from gateway.broker.geoquery import GeoQuery, parse_geometry
from gateway.broker.qlang import Query
from gateway.broker.store import Candidates, EntityStore

__all__ = ["BatchResult", "EntityQuery", "EntityService", "UpdateResult", "timestamp"]

_T = TypeVar("_T")


def timestamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class EntityQuery:
    """A query of clause 5.7.2, names already expanded."""

    types: Sequence[str] | None = None
    ids: Sequence[str] | None = None
    id_pattern: re.Pattern[str] | None = None
    q: Query | None = None
    attrs: Sequence[str] | None = None
    geo: GeoQuery | None = None
    geo_attribute: str | None = None
    limit: int = 20
    offset: int = 0
    count: bool = False


@dataclass
class UpdateResult:
    """Clause 5.2.18: what was updated, and what was not with the reason."""

    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class BatchResult:
    """Clause 5.2.16: entity ids that succeeded, and each failure as a ProblemDetails."""

    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


class EntityService:
    def __init__(self, store: EntityStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self._clock = clock

    def now(self) -> str:
        return timestamp(self._clock())

    async def create(self, owner: str, entity: Entity) -> None:
        async with self.store.transaction() as conn:
            await self.store.insert(conn, owner, entity)

    async def retrieve(self, owner: str, entity_id: str) -> Entity:
        return await self.store.get(owner, entity_id)

    async def delete(self, owner: str, entity_id: str) -> None:
        async with self.store.transaction() as conn:
            await self.store.remove(conn, owner, entity_id)

    async def _change(
        self, owner: str, entity_id: str, change: Callable[[Entity], _T]
    ) -> _T:
        async with self.store.transaction() as conn:
            pk, entity = await self.store.load_for_update(conn, owner, entity_id)
            result = change(entity)
            entity["modifiedAt"] = self.now()
            await self.store.save(conn, owner, pk, entity)
            return result

    async def append(
        self, owner: str, entity_id: str, attrs: dict[str, Attribute], *, no_overwrite: bool
    ) -> UpdateResult:
        """Clause 5.6.3: add attributes, replacing existing ones unless noOverwrite."""
        return await self._change(owner, entity_id, lambda e: _append(e, attrs, no_overwrite))

    async def update(self, owner: str, entity_id: str, attrs: dict[str, Attribute]) -> UpdateResult:
        """Clause 5.6.2: replace existing attributes; others are reported not updated."""
        return await self._change(owner, entity_id, lambda e: _update(e, attrs))

    async def patch_attribute(
        self, owner: str, entity_id: str, name: str, fragment: Attribute
    ) -> None:
        """Clause 5.6.4: members given replace the attribute's, the others stay."""

        def change(entity: Entity) -> None:
            old = entity["attrs"].get(name)
            if old is None:
                raise ResourceNotFound(f"entity {entity_id} has no attribute {name}")
            entity["attrs"][name] = merge_attribute(old, fragment)

        await self._change(owner, entity_id, change)

    async def replace_attribute(
        self, owner: str, entity_id: str, name: str, attribute: Attribute
    ) -> None:
        """Clause 5.6.19: the attribute replaced whole; it must exist."""

        def change(entity: Entity) -> None:
            old = entity["attrs"].get(name)
            if old is None:
                raise ResourceNotFound(f"entity {entity_id} has no attribute {name}")
            entity["attrs"][name] = replaced(old, attribute)

        await self._change(owner, entity_id, change)

    async def delete_attribute(self, owner: str, entity_id: str, name: str) -> None:
        """Clause 5.6.5."""

        def change(entity: Entity) -> None:
            if entity["attrs"].pop(name, None) is None:
                raise ResourceNotFound(f"entity {entity_id} has no attribute {name}")

        await self._change(owner, entity_id, change)

    async def replace(self, owner: str, entity_id: str, new: Entity) -> None:
        """Clause 5.6.18: every attribute replaced; the id stays, the type may change."""

        def change(entity: Entity) -> None:
            entity["type"] = new.get("type", entity["type"])
            entity["attrs"] = {
                name: replaced(entity["attrs"].get(name), attribute)
                for name, attribute in new["attrs"].items()
            }

        await self._change(owner, entity_id, change)

    async def merge(
        self, owner: str, entity_id: str, new_type: str | None, attrs: dict[str, Attribute | None]
    ) -> None:
        """Clause 5.6.17: attributes merged in; an NGSI-LD Null removes one."""

        def change(entity: Entity) -> None:
            if new_type is not None:
                entity["type"] = new_type
            for name, attribute in attrs.items():
                old = entity["attrs"].get(name)
                if attribute is None:
                    entity["attrs"].pop(name, None)
                elif old is None:
                    entity["attrs"][name] = attribute
                else:
                    entity["attrs"][name] = merge_attribute(old, attribute)

        await self._change(owner, entity_id, change)

    async def query(self, owner: str, query: EntityQuery) -> tuple[list[Entity], int | None]:
        """Clause 5.7.2: the page asked for, and the total when ``count`` is asked."""
        narrow = Candidates(
            types=query.types,
            ids=query.ids,
            any_attrs=query.attrs,
            geo_attribute=query.geo_attribute,
            geo_box=query.geo.candidate_box() if query.geo is not None else None,
            require_geo=query.geo is not None,
        )
        page: list[Entity] = []
        matched = 0
        async for entity in self.store.candidates(owner, narrow):
            if not _matches(entity, query):
                continue
            if query.offset <= matched < query.offset + query.limit:
                page.append(entity)
            matched += 1
            if not query.count and matched >= query.offset + query.limit:
                break
        return page, matched if query.count else None

    async def batch_create(self, owner: str, items: Sequence[Entity | NgsiLdError]) -> BatchResult:
        """Clause 5.6.7: each entity created, or its error reported."""
        result = BatchResult()
        async with self.store.transaction() as conn:
            ids = [item["id"] for item in items if isinstance(item, dict)]
            existing = await self.store.existing(conn, owner, ids)
            seen: set[str] = set()
            for item in items:
                if isinstance(item, NgsiLdError):
                    result.errors.append(("", item))
                elif item["id"] in existing or item["id"] in seen:
                    result.errors.append((item["id"], AlreadyExists(f"entity {item['id']} exists")))
                else:
                    seen.add(item["id"])
                    await self.store.insert(conn, owner, item)
                    result.success.append(item["id"])
                    result.created.append(item["id"])
        return result

    async def batch_upsert(
        self, owner: str, items: Sequence[Entity | NgsiLdError], *, replace: bool
    ) -> BatchResult:
        """Clause 5.6.8: created when new, else replaced (or updated with options=update)."""
        result = BatchResult()
        async with self.store.transaction() as conn:
            existing = await self.store.existing(
                conn, owner, [item["id"] for item in items if isinstance(item, dict)]
            )
            for item in items:
                if isinstance(item, NgsiLdError):
                    result.errors.append(("", item))
                    continue
                if item["id"] not in existing:
                    await self.store.insert(conn, owner, item)
                    existing.add(item["id"])
                    result.created.append(item["id"])
                else:
                    pk, entity = await self.store.load_for_update(conn, owner, item["id"])
                    if replace:
                        entity["attrs"] = {n: replaced(entity["attrs"].get(n), a)
                                           for n, a in item["attrs"].items()}
                    else:
                        _append(entity, item["attrs"], no_overwrite=False)
                    entity["type"] = item.get("type", entity["type"])
                    entity["modifiedAt"] = self.now()
                    await self.store.save(conn, owner, pk, entity)
                result.success.append(item["id"])
        return result

    async def batch_update(
        self, owner: str, items: Sequence[Entity | NgsiLdError], *, no_overwrite: bool
    ) -> BatchResult:
        """Clause 5.6.9: attributes of existing entities appended or replaced."""
        result = BatchResult()
        async with self.store.transaction() as conn:
            for item in items:
                if isinstance(item, NgsiLdError):
                    result.errors.append(("", item))
                    continue
                try:
                    pk, entity = await self.store.load_for_update(conn, owner, item["id"])
                except ResourceNotFound as exc:
                    result.errors.append((item["id"], exc))
                    continue
                _append(entity, item["attrs"], no_overwrite=no_overwrite)
                entity["modifiedAt"] = self.now()
                await self.store.save(conn, owner, pk, entity)
                result.success.append(item["id"])
        return result

    async def batch_delete(self, owner: str, ids: Sequence[str]) -> BatchResult:
        """Clause 5.6.10."""
        result = BatchResult()
        async with self.store.transaction() as conn:
            for entity_id in ids:
                try:
                    await self.store.remove(conn, owner, entity_id)
                except ResourceNotFound as exc:
                    result.errors.append((entity_id, exc))
                else:
                    result.success.append(entity_id)
        return result


def _append(entity: Entity, attrs: dict[str, Attribute], no_overwrite: bool) -> UpdateResult:
    result = UpdateResult()
    for name, attribute in attrs.items():
        old = entity["attrs"].get(name)
        if old is not None and no_overwrite:
            result.not_updated.append((name, "the attribute exists and noOverwrite is set"))
            continue
        entity["attrs"][name] = replaced(old, attribute)
        result.updated.append(name)
    return result


def _update(entity: Entity, attrs: dict[str, Attribute]) -> UpdateResult:
    result = UpdateResult()
    for name, attribute in attrs.items():
        old = entity["attrs"].get(name)
        if old is None:
            result.not_updated.append((name, "the entity has no such attribute"))
            continue
        entity["attrs"][name] = replaced(old, attribute)
        result.updated.append(name)
    return result


def _matches(entity: Entity, query: EntityQuery) -> bool:
    if query.id_pattern is not None and query.id_pattern.fullmatch(entity["id"]) is None:
        return False
    if query.attrs is not None and not any(name in entity["attrs"] for name in query.attrs):
        return False
    if query.geo is not None:
        attribute = entity["attrs"].get(query.geo_attribute or "")
        if attribute is None or attribute.get("type") != "GeoProperty":
            return False
        if not query.geo.matches(parse_geometry(attribute["value"])):
            return False
    return query.q is None or query.q(entity)


def check_limits(limit: int, offset: int, maximum: int) -> None:
    if limit < 0 or offset < 0:
        raise BadRequestData("limit and offset are non-negative")

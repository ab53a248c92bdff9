"""Persistent policies of one node: access rights, local groups, declarations, consents.

``PolicyStore`` wraps an ``AsyncEngine`` (SQLite via aiosqlite or PostgreSQL via asyncpg)
and speaks in the library's value types. Reads that sit on the request path
(``access_policy``, ``active_consents``, ``service_declaration``, ``purpose``) are one or
two indexed SELECTs and read fresh data, so a change applies to the next request.
Access rights, local groups and declarations are cached per store (so per process)
and re-read when the ``policy_version`` row, bumped by every change to them in the
change's own transaction, has moved: one primary-key SELECT per request. Consents
are not cached.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, Row, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certs.identifiers import GlobalGroupId, IdentifierError, MemberId, ServiceId, SubsystemId
from policies import models
from policies.access import AccessPolicy, AccessRight, LocalGroupRef, parse_grantee
from policies.consent import (
    ANY_CONSUMER,
    ANY_PURPOSE,
    Consent,
    Consumer,
    FhirCode,
    check_consent_fields,
    parse_consumer,
)
from policies.declarations import PurposeDeclaration, ServiceDeclaration, SubjectLocator
from policies.errors import (
    AccessRightNotFound,
    ConsentError,
    ConsentNotFound,
    DeclarationError,
    PolicyStoreError,
)

__all__ = ["BoundPolicyStore", "PolicyStore"]

_T = TypeVar("_T")
# Cached reads per store; past this many keys (e.g. unknown purpose codes) start over.
_CACHE_LIMIT = 4096
_VERSION_ROW = 1


def _consumer(text: str) -> Consumer:
    return parse_consumer(text)


def _right(row: Row[Any]) -> AccessRight:
    return AccessRight(
        service=ServiceId.parse(row.service),
        grantee=parse_grantee(row.grantee),
        method=row.method,
        path=row.path,
        id=row.id,
        granted_at=row.granted_at,
    )


def _consent(row: Row[Any]) -> Consent:
    return Consent(
        id=UUID(row.id),
        subject=row.subject,
        consumer=_consumer(row.consumer),
        service=ServiceId.parse(row.service),
        purpose=row.purpose,
        fields=tuple(row.fields),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        granted_at=row.granted_at,
        revoked_at=row.revoked_at,
        decision=row.decision,
        depth=row.depth,
        resource_types=tuple(row.resource_types),
        resources=tuple(row.resources),
        labels=tuple(row.labels),
        data_from=row.data_from,
        data_until=row.data_until,
        actor=row.actor,
        origin=row.origin,
        provision=row.provision,
    )


def _consent_values(consent: Consent) -> dict[str, Any]:
    return {
        "id": str(consent.id),
        "subject": consent.subject,
        "consumer": str(consent.consumer),
        "service": str(consent.service),
        "purpose": consent.purpose,
        "fields": list(consent.fields),
        "valid_from": consent.valid_from,
        "valid_until": consent.valid_until,
        "granted_at": consent.granted_at,
        "revoked_at": consent.revoked_at,
        "decision": consent.decision,
        "depth": consent.depth,
        "resource_types": list(consent.resource_types),
        "resources": list(consent.resources),
        "labels": list(consent.labels),
        "data_from": consent.data_from,
        "data_until": consent.data_until,
        "actor": consent.actor,
        "origin": consent.origin,
        "provision": consent.provision,
    }


def _declaration(row: Row[Any]) -> ServiceDeclaration:
    return ServiceDeclaration(
        service=ServiceId.parse(row.service),
        media_types=tuple(row.media_types),
        fields=tuple(row.fields),
        public_fields=tuple(row.public_fields),
        consent_governed=row.consent_governed,
        subject=SubjectLocator(row.subject_kind, row.subject_name),
        description=row.description,
        subject_fields=tuple(row.subject_fields),
        impersonal=tuple(row.impersonal),
        response_headers=tuple(row.response_headers),
    )


def _declaration_values(declaration: ServiceDeclaration) -> dict[str, Any]:
    return {
        "provider": str(declaration.service.subsystem),
        "media_types": list(declaration.media_types),
        "fields": list(declaration.fields),
        "public_fields": list(declaration.public_fields),
        "consent_governed": declaration.consent_governed,
        "subject_kind": declaration.subject.kind,
        "subject_name": declaration.subject.name,
        "description": declaration.description,
        "subject_fields": list(declaration.subject_fields),
        "impersonal": list(declaration.impersonal),
        "response_headers": list(declaration.response_headers),
    }


class PolicyStore:
    """Policies kept in the node's database; see the module docstring."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Reads begin deferred on SQLite instead of taking the write lock; the
        # option name is gateway.db.READ_ONLY_OPTION (policies may not import gateway).
        self._reader = engine.execution_options(renkei_read_only=True)
        # key -> (policy version it was read at, value)
        self._cache: dict[tuple[str, ...], tuple[int, object]] = {}

    async def create_schema(self) -> None:
        """Create the ``policy_*`` tables if missing (Alembic handles upgrades)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(models.metadata.create_all)
            await self._bump_version(conn)

    @contextlib.asynccontextmanager
    async def atomic(self) -> AsyncIterator[BoundPolicyStore]:
        """One transaction for several changes: every one of them is kept, or none.

        The store it yields reads and writes on that transaction (uncached), so a
        plan computed with it sees the state it changes; the policy version moves once.
        """
        async with self._begin() as conn:
            yield BoundPolicyStore(self._engine, conn)

    async def drop_schema(self) -> None:
        """Drop the ``policy_*`` tables (tests and sandbox teardown)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(models.metadata.drop_all)

    # -- access rights -------------------------------------------------------------

    async def grant_access(self, right: AccessRight, *, now: datetime | None = None) -> AccessRight:
        """Store ``right`` (idempotent: an identical right is returned as stored).

        ``granted_at`` is the right's own, else ``now``; with neither it stays unknown.
        """
        granted_at = right.granted_at or now
        stored = AccessRight(
            service=right.service,
            grantee=right.grantee,
            method=right.method,
            path=right.path,
            id=right.id or str(uuid4()),
            granted_at=granted_at,
        )
        table = models.access_rights
        same = and_(
            table.c.service == str(right.service),
            table.c.grantee == str(right.grantee),
            table.c.method == right.method,
            table.c.path == right.path,
        )
        async with self._begin() as conn:
            existing = (await conn.execute(select(table).where(same))).first()
            if existing is not None:
                return _right(existing)
            await conn.execute(
                insert(table).values(
                    id=stored.id,
                    service=str(stored.service),
                    provider=str(stored.service.subsystem),
                    grantee=str(stored.grantee),
                    method=stored.method,
                    path=stored.path,
                    granted_at=granted_at,
                )
            )
        return stored

    async def revoke_access(self, right_id: str) -> None:
        """Delete an access right; raise AccessRightNotFound if there is none."""
        async with self._begin() as conn:
            result = await conn.execute(
                delete(models.access_rights).where(models.access_rights.c.id == right_id)
            )
        if result.rowcount == 0:
            raise AccessRightNotFound(f"no access right has id {right_id!r}")

    async def list_access(self, service: ServiceId | None = None) -> list[AccessRight]:
        query = select(models.access_rights).order_by(
            models.access_rights.c.service, models.access_rights.c.granted_at
        )
        if service is not None:
            query = query.where(models.access_rights.c.service == str(service))
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_right(row) for row in rows]

    async def access_policy(self) -> AccessPolicy:
        """Every access right and local group, as of the latest committed change."""
        return await self._cached(("access",), self._load_access_policy)

    @staticmethod
    async def _load_access_policy(conn: AsyncConnection) -> AccessPolicy:
        groups, members = models.local_groups, models.local_group_members
        rights = (await conn.execute(select(models.access_rights))).all()
        member_rows = (
            await conn.execute(
                select(groups.c.provider, groups.c.code, members.c.member).join(
                    members, members.c.group_id == groups.c.id
                )
            )
        ).all()
        local: dict[LocalGroupRef, set[SubsystemId]] = {}
        for row in member_rows:
            ref = LocalGroupRef(SubsystemId.parse(row.provider), row.code)
            local.setdefault(ref, set()).add(SubsystemId.parse(row.member))
        return AccessPolicy(
            [_right(row) for row in rights],
            {ref: frozenset(subsystems) for ref, subsystems in local.items()},
        )

    # -- local groups --------------------------------------------------------------

    async def add_local_group(self, group: LocalGroupRef, description: str = "") -> None:
        """Create a local group (no-op if it exists; the description is updated)."""
        table = models.local_groups
        async with self._begin() as conn:
            group_id = await self._group_id(conn, group)
            if group_id is None:
                await conn.execute(
                    insert(table).values(
                        provider=str(group.provider), code=group.code, description=description
                    )
                )
            else:
                await conn.execute(
                    update(table).where(table.c.id == group_id).values(description=description)
                )

    async def add_local_group_member(self, group: LocalGroupRef, member: SubsystemId) -> None:
        """Add ``member`` to an existing local group (no-op if already a member)."""
        await self.set_local_group_members(group, None, add=(member,))

    async def remove_local_group_member(self, group: LocalGroupRef, member: SubsystemId) -> None:
        async with self._begin() as conn:
            group_id = await self._require_group(conn, group)
            table = models.local_group_members
            await conn.execute(
                delete(table).where(table.c.group_id == group_id, table.c.member == str(member))
            )

    async def set_local_group_members(
        self,
        group: LocalGroupRef,
        members: Iterable[SubsystemId] | None,
        *,
        add: Iterable[SubsystemId] = (),
    ) -> None:
        """Make the group's members exactly ``members`` (or, if None, add ``add``)."""
        table = models.local_group_members
        async with self._begin() as conn:
            group_id = await self._require_group(conn, group)
            current = {
                row.member
                for row in await conn.execute(
                    select(table.c.member).where(table.c.group_id == group_id)
                )
            }
            wanted = (
                current | {str(m) for m in add} if members is None else {str(m) for m in members}
            )
            if current - wanted:
                await conn.execute(
                    delete(table).where(
                        table.c.group_id == group_id, table.c.member.in_(current - wanted)
                    )
                )
            for member in sorted(wanted - current):
                await conn.execute(insert(table).values(group_id=group_id, member=member))

    async def local_group_description(self, group: LocalGroupRef) -> str | None:
        """The group's description, or None when there is no such group."""
        table = models.local_groups
        query = select(table.c.description).where(
            table.c.provider == str(group.provider), table.c.code == group.code
        )
        async with self._connect() as conn:
            found: str | None = (await conn.execute(query)).scalar_one_or_none()
        return found

    async def list_local_groups(self) -> dict[LocalGroupRef, frozenset[SubsystemId]]:
        """Every local group with its members (empty groups included)."""
        groups, members = models.local_groups, models.local_group_members
        query = select(groups.c.provider, groups.c.code, members.c.member).outerjoin(
            members, members.c.group_id == groups.c.id
        )
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        result: dict[LocalGroupRef, set[SubsystemId]] = {}
        for row in rows:
            found = result.setdefault(
                LocalGroupRef(SubsystemId.parse(row.provider), row.code), set()
            )
            if row.member is not None:
                found.add(SubsystemId.parse(row.member))
        return {ref: frozenset(found) for ref, found in result.items()}

    # -- declarations --------------------------------------------------------------

    async def declare_service(self, declaration: ServiceDeclaration) -> None:
        """Create or replace the declaration of ``declaration.service``."""
        table = models.service_declarations
        values = _declaration_values(declaration)
        async with self._begin() as conn:
            changed = await conn.execute(
                update(table).where(table.c.service == str(declaration.service)).values(**values)
            )
            if changed.rowcount == 0:
                await conn.execute(insert(table).values(service=str(declaration.service), **values))

    async def remove_service_declaration(self, service: ServiceId) -> None:
        table = models.service_declarations
        async with self._begin() as conn:
            await conn.execute(delete(table).where(table.c.service == str(service)))

    async def service_declaration(self, service: ServiceId) -> ServiceDeclaration | None:
        table = models.service_declarations

        async def load(conn: AsyncConnection) -> ServiceDeclaration | None:
            query = select(table).where(table.c.service == str(service))
            row = (await conn.execute(query)).first()
            return None if row is None else _declaration(row)

        return await self._cached(("service", str(service)), load)

    async def list_services(self) -> list[ServiceDeclaration]:
        table = models.service_declarations
        async with self._connect() as conn:
            rows = (await conn.execute(select(table).order_by(table.c.service))).all()
        return [_declaration(row) for row in rows]

    async def declare_purpose(self, declaration: PurposeDeclaration) -> None:
        """Create or replace a consumer's purpose declaration."""
        table = models.purpose_declarations
        key = and_(table.c.consumer == str(declaration.consumer), table.c.code == declaration.code)
        async with self._begin() as conn:
            changed = await conn.execute(update(table).where(key).values(text=declaration.text))
            if changed.rowcount == 0:
                await conn.execute(
                    insert(table).values(
                        consumer=str(declaration.consumer),
                        code=declaration.code,
                        text=declaration.text,
                    )
                )

    async def remove_purpose(self, consumer: SubsystemId, code: str) -> None:
        table = models.purpose_declarations
        async with self._begin() as conn:
            await conn.execute(
                delete(table).where(table.c.consumer == str(consumer), table.c.code == code)
            )

    async def purpose(self, consumer: SubsystemId, code: str) -> PurposeDeclaration | None:
        table = models.purpose_declarations
        query = select(table).where(table.c.consumer == str(consumer), table.c.code == code)

        async def load(conn: AsyncConnection) -> PurposeDeclaration | None:
            row = (await conn.execute(query)).first()
            return None if row is None else PurposeDeclaration(consumer, row.code, row.text)

        return await self._cached(("purpose", str(consumer), code), load)

    async def list_purposes(self) -> list[PurposeDeclaration]:
        table = models.purpose_declarations
        async with self._connect() as conn:
            rows = (
                await conn.execute(select(table).order_by(table.c.consumer, table.c.code))
            ).all()
        return [
            PurposeDeclaration(SubsystemId.parse(row.consumer), row.code, row.text) for row in rows
        ]

    # -- consents ------------------------------------------------------------------

    async def grant_consent(
        self,
        subject: str,
        consumer: Consumer,
        service: ServiceId,
        purpose: str,
        fields: Sequence[str],
        valid_from: datetime,
        valid_until: datetime | None,
        now: datetime,
    ) -> Consent:
        """Record a consent; its fields must be among the service's declared fields."""
        declaration = await self.service_declaration(service)
        if declaration is None:
            raise ConsentError(f"service {service} has no declaration")
        check_consent_fields(declaration, fields)
        consent = Consent(
            id=uuid4(),
            subject=subject,
            consumer=consumer,
            service=service,
            purpose=purpose,
            fields=tuple(fields),
            valid_from=valid_from,
            valid_until=valid_until,
            granted_at=now,
        )
        async with self._begin(bump=False) as conn:
            await conn.execute(insert(models.consents).values(_consent_values(consent)))
        return consent

    async def grant_rules(self, rules: Sequence[Consent]) -> None:
        """Record the rules of one imported consent, all or none; fields are checked
        against the service's declaration as for :meth:`grant_consent`."""
        if not rules:
            raise ConsentError("a consent has at least one rule")
        for service in {rule.service for rule in rules}:
            declaration = await self.service_declaration(service)
            if declaration is None:
                raise ConsentError(f"service {service} has no declaration")
            for rule in rules:
                if rule.service == service:
                    check_consent_fields(declaration, rule.fields)
        async with self._begin(bump=False) as conn:
            await conn.execute(insert(models.consents), [_consent_values(rule) for rule in rules])

    async def consents_of_origin(self, origin: str) -> list[Consent]:
        """The rules imported from one FHIR Consent, shallowest first."""
        table = models.consents
        query = (
            select(table)
            .where(table.c.origin == origin)
            .order_by(table.c.depth, table.c.granted_at, table.c.id)
        )
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_consent(row) for row in rows]

    async def revoke_origin(self, origin: str, now: datetime) -> int:
        """Revoke every rule of one imported consent from ``now`` on; how many were open."""
        table = models.consents
        async with self._begin(bump=False) as conn:
            result = await conn.execute(
                update(table)
                .where(table.c.origin == origin, table.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return int(result.rowcount)

    # -- the operator's FHIR mapping table ------------------------------------------

    async def set_fhir_code(
        self, kind: str, code: str, target: str, *, break_glass: bool = False
    ) -> None:
        """Map a FHIR purpose ``system|code`` (kind ``purpose``) onto a purpose code, a
        FHIR reference (kind ``actor``) onto a consumer, ``*`` or ``self``, or set a
        service's base policy (kind ``base``: ``opt-in``, the default, or ``opt-out``)."""
        if kind not in ("purpose", "actor", "base"):
            raise ConsentError(f"mapping kind {kind!r} is not purpose, actor or base")
        try:
            if kind == "purpose":
                Consent.check_purpose(target)
            elif kind == "base":
                ServiceId.parse(code)
                if target not in ("opt-in", "opt-out"):
                    raise ConsentError("a service's base policy is opt-in or opt-out")
            elif target != "self":
                parse_consumer(target)
        except IdentifierError as exc:
            raise ConsentError(f"{kind} mapping {code!r} -> {target!r}: {exc}") from exc
        if break_glass and kind != "purpose":
            raise ConsentError("only a purpose can be break-glass")
        table = models.fhir_codes
        async with self._begin(bump=False) as conn:
            await conn.execute(delete(table).where(table.c.kind == kind, table.c.code == code))
            await conn.execute(
                insert(table).values(kind=kind, code=code, target=target, break_glass=break_glass)
            )

    async def remove_fhir_code(self, kind: str, code: str) -> None:
        table = models.fhir_codes
        async with self._begin(bump=False) as conn:
            await conn.execute(delete(table).where(table.c.kind == kind, table.c.code == code))

    async def fhir_codes(self) -> list[FhirCode]:
        table = models.fhir_codes
        async with self._connect() as conn:
            rows = (await conn.execute(select(table).order_by(table.c.kind, table.c.code))).all()
        return [FhirCode(row.kind, row.code, row.target, row.break_glass) for row in rows]

    async def is_opt_out(self, service: ServiceId) -> bool:
        """Whether the operator put ``service`` under an opt-out base policy (kind
        ``base``): released unless the data subject's rules take data away."""
        table = models.fhir_codes
        query = select(table.c.target).where(table.c.kind == "base", table.c.code == str(service))
        async with self._connect() as conn:
            return (await conn.execute(query)).scalar() == "opt-out"

    async def is_break_glass(self, purpose: str) -> bool:
        """Whether the operator lets ``purpose`` override a deny (break-glass)."""
        table = models.fhir_codes
        query = select(table.c.code).where(
            table.c.kind == "purpose", table.c.target == purpose, table.c.break_glass.is_(True)
        )
        async with self._connect() as conn:
            return (await conn.execute(query.limit(1))).first() is not None

    async def revoke_consent(self, consent_id: UUID | str, now: datetime) -> Consent:
        """Revoke a consent from ``now`` on; revoking twice keeps the first time."""
        table = models.consents
        key = table.c.id == str(self._uuid(consent_id))
        async with self._begin(bump=False) as conn:
            await conn.execute(
                update(table).where(key, table.c.revoked_at.is_(None)).values(revoked_at=now)
            )
            row = (await conn.execute(select(table).where(key))).first()
        if row is None:
            raise ConsentNotFound(f"no consent has id {consent_id}")
        return _consent(row)

    async def consent(self, consent_id: UUID | str) -> Consent:
        table = models.consents
        async with self._connect() as conn:
            row = (
                await conn.execute(select(table).where(table.c.id == str(self._uuid(consent_id))))
            ).first()
        if row is None:
            raise ConsentNotFound(f"no consent has id {consent_id}")
        return _consent(row)

    async def list_consents(
        self,
        subject: str | None = None,
        service: ServiceId | None = None,
        include_inactive: bool = False,
        *,
        now: datetime,
    ) -> list[Consent]:
        """Consents, newest first, optionally of one subject and/or service."""
        table = models.consents
        query = select(table).order_by(table.c.granted_at.desc(), table.c.id)
        if subject is not None:
            query = query.where(table.c.subject == subject)
        if service is not None:
            query = query.where(table.c.service == str(service))
        if not include_inactive:
            query = query.where(*self._active(now))
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_consent(row) for row in rows]

    async def active_consents(
        self,
        subject: str,
        consumer: SubsystemId | MemberId,
        consumer_groups: Iterable[GlobalGroupId],
        service: ServiceId,
        purpose: str,
        now: datetime,
        actor: str | None = None,
    ) -> list[Consent]:
        """Consents in force at ``now`` for this subject, consumer (its member, one of its
        global groups, or any consumer), service and purpose (or any purpose), and for
        ``actor`` (the person the consumer states it acts for) or for no one in
        particular: one SELECT on the lookup index."""
        table = models.consents
        member = consumer.member if isinstance(consumer, SubsystemId) else consumer
        consumers = [
            str(consumer),
            str(member),
            str(ANY_CONSUMER),
            *(str(group) for group in consumer_groups),
        ]
        actors: ColumnElement[bool] = table.c.actor.is_(None)
        if actor is not None:
            actors = or_(actors, table.c.actor == actor)
        query = select(table).where(
            table.c.subject == subject,
            table.c.service == str(service),
            table.c.purpose.in_([purpose, ANY_PURPOSE]),
            table.c.consumer.in_(consumers),
            actors,
            *self._active(now),
        )
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_consent(row) for row in rows]

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    def _active(now: datetime) -> list[Any]:
        table = models.consents
        return [
            table.c.valid_from <= now,
            or_(table.c.valid_until.is_(None), table.c.valid_until > now),
            or_(table.c.revoked_at.is_(None), table.c.revoked_at > now),
        ]

    @staticmethod
    def _uuid(value: UUID | str) -> UUID:
        try:
            return value if isinstance(value, UUID) else UUID(value)
        except ValueError as exc:
            raise ConsentNotFound(f"{value!r} is not a consent id") from exc

    @staticmethod
    async def _group_id(conn: AsyncConnection, group: LocalGroupRef) -> int | None:
        table = models.local_groups
        return (
            await conn.execute(
                select(table.c.id).where(
                    table.c.provider == str(group.provider), table.c.code == group.code
                )
            )
        ).scalar_one_or_none()

    async def _require_group(self, conn: AsyncConnection, group: LocalGroupRef) -> int:
        group_id = await self._group_id(conn, group)
        if group_id is None:
            raise DeclarationError(f"local group {group} does not exist")
        return group_id

    async def _cached(
        self, key: tuple[str, ...], load: Callable[[AsyncConnection], Awaitable[_T]]
    ) -> _T:
        """``load``'s value, re-read only when the policy version moved."""
        table = models.policy_version
        async with self._connect() as conn:
            version = (
                await conn.execute(select(table.c.version).where(table.c.id == _VERSION_ROW))
            ).scalar_one_or_none()
            stamp = -1 if version is None else int(version)
            hit = self._cache.get(key)
            if hit is not None and hit[0] == stamp:
                return cast(_T, hit[1])
            # Read in the same transaction as the version: never older than the stamp.
            value = await load(conn)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (stamp, value)
        return value

    @staticmethod
    async def _bump_version(conn: AsyncConnection) -> None:
        table = models.policy_version
        bumped = await conn.execute(
            update(table).where(table.c.id == _VERSION_ROW).values(version=table.c.version + 1)
        )
        if bumped.rowcount == 0:
            await conn.execute(insert(table).values(id=_VERSION_ROW, version=1))

    def _begin(self, *, bump: bool = True) -> _Translated:
        """A write transaction; ``bump`` moves the policy version (not for consents)."""
        return _Translated(self._engine, begin=True, bump=bump)

    def _connect(self) -> _Translated:
        return _Translated(self._reader, begin=False)


class BoundPolicyStore(PolicyStore):
    """A store whose every read and write joins one open transaction (``atomic``).

    ``connection`` is that transaction, for a caller that records something with
    the change (a node's seed marker).
    """

    def __init__(self, engine: AsyncEngine, conn: AsyncConnection) -> None:
        super().__init__(engine)
        self._conn = conn

    @property
    def connection(self) -> AsyncConnection:
        return self._conn

    @contextlib.asynccontextmanager
    async def atomic(self) -> AsyncIterator[BoundPolicyStore]:
        yield self

    async def _cached(
        self, key: tuple[str, ...], load: Callable[[AsyncConnection], Awaitable[_T]]
    ) -> _T:
        return await load(self._conn)

    def _begin(self, *, bump: bool = True) -> _Translated:
        return _Joined(self._conn)

    def _connect(self) -> _Translated:
        return _Joined(self._conn)


class _Translated:
    """A connection context that turns database errors into PolicyStoreError."""

    def __init__(self, engine: AsyncEngine, *, begin: bool, bump: bool = False) -> None:
        self._context = engine.begin() if begin else engine.connect()
        self._bump = bump

    async def __aenter__(self) -> AsyncConnection:
        try:
            conn = await self._context.__aenter__()
        except SQLAlchemyError as exc:
            raise PolicyStoreError(f"the policy database is unavailable: {exc}") from exc
        if not self._bump:
            return conn
        try:
            await PolicyStore._bump_version(conn)
        except SQLAlchemyError as exc:
            await self._context.__aexit__(type(exc), exc, exc.__traceback__)
            raise PolicyStoreError(f"the policy database is unavailable: {exc}") from exc
        return conn

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        error = exc_info[1]
        try:
            await self._context.__aexit__(*exc_info)
        except IntegrityError as exc:
            raise DeclarationError(f"conflicting policy change: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise PolicyStoreError(f"the policy database failed: {exc}") from exc
        if isinstance(error, IntegrityError):
            raise DeclarationError(f"conflicting policy change: {error.orig}") from error
        if isinstance(error, SQLAlchemyError):
            raise PolicyStoreError(f"the policy database failed: {error}") from error
        if isinstance(error, IdentifierError):
            raise PolicyStoreError(f"the policy database holds a malformed id: {error}") from error
        return None


class _Joined(_Translated):
    """The open transaction's connection: errors translated, commit left to its owner."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._bump = False

    async def __aenter__(self) -> AsyncConnection:
        return self._conn

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        error = exc_info[1]
        if isinstance(error, IntegrityError):
            raise DeclarationError(f"conflicting policy change: {error.orig}") from error
        if isinstance(error, SQLAlchemyError):
            raise PolicyStoreError(f"the policy database failed: {error}") from error
        if isinstance(error, IdentifierError):
            raise PolicyStoreError(f"the policy database holds a malformed id: {error}") from error
        return None

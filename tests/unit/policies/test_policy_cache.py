"""Cached policy reads: a change made through any store applies to the next read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from certs.identifiers import SubsystemId
from policies import models
from policies.access import AccessPolicy, AccessRight, LocalGroupRef
from policies.declarations import PurposeDeclaration, ServiceDeclaration, SubjectLocator
from policies.errors import AccessDenied
from policies.store import PolicyStore

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
PROVIDER = SubsystemId.parse("EE/GOV/B/records")
SERVICE = PROVIDER.service("patients")
CLIENT = SubsystemId.parse("EE/GOV/A/clinic")
DECLARATION = ServiceDeclaration(
    SERVICE,
    media_types=("application/json",),
    fields=("name", "birthDate"),
    public_fields=("name",),
    subject=SubjectLocator.path("/Patient/{subject}"),
    description="Patient records",
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'policies.db'}")
    await PolicyStore(engine).create_schema()
    yield engine
    await engine.dispose()


async def _version(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(models.policy_version.c.version))).scalar_one())


def _allowed(policy: AccessPolicy) -> bool:
    try:
        policy.check_query(CLIENT, frozenset(), SERVICE, "GET", "/Patient/1")
    except AccessDenied:
        return False
    return True


async def test_a_grant_by_another_process_applies_to_the_next_read(engine: AsyncEngine) -> None:
    reader, writer = PolicyStore(engine), PolicyStore(engine)
    assert not _allowed(await reader.access_policy())  # cached: denied
    right = await writer.grant_access(AccessRight(SERVICE, CLIENT), now=NOW)
    assert _allowed(await reader.access_policy())
    await writer.revoke_access(right.id or "")
    assert not _allowed(await reader.access_policy())


async def test_local_group_changes_move_the_version(engine: AsyncEngine) -> None:
    store = PolicyStore(engine)
    group = LocalGroupRef(PROVIDER, "clinics")
    before = await _version(engine)
    await store.add_local_group(group)
    await store.add_local_group_member(group, CLIENT)
    assert await _version(engine) == before + 2


async def test_declarations_and_purposes_are_reread_after_a_change(engine: AsyncEngine) -> None:
    reader, writer = PolicyStore(engine), PolicyStore(engine)
    assert await reader.service_declaration(SERVICE) is None
    assert await reader.purpose(CLIENT, "care") is None
    await writer.declare_service(DECLARATION)
    await writer.declare_purpose(PurposeDeclaration(CLIENT, "care", "Care"))
    assert await reader.service_declaration(SERVICE) == DECLARATION
    assert await reader.purpose(CLIENT, "care") == PurposeDeclaration(CLIENT, "care", "Care")
    await writer.remove_service_declaration(SERVICE)
    await writer.remove_purpose(CLIENT, "care")
    assert await reader.service_declaration(SERVICE) is None
    assert await reader.purpose(CLIENT, "care") is None


async def test_a_change_without_a_version_bump_is_not_seen(engine: AsyncEngine) -> None:
    # The contract: only changes through PolicyStore (which bump) invalidate caches.
    reader = PolicyStore(engine)
    await PolicyStore(engine).declare_purpose(PurposeDeclaration(CLIENT, "care", "Care"))
    assert (await reader.purpose(CLIENT, "care")) is not None
    async with engine.begin() as conn:
        table = models.purpose_declarations
        await conn.execute(update(table).values(text="Changed behind the store's back"))
    cached = await reader.purpose(CLIENT, "care")
    assert cached is not None
    assert cached.text == "Care"
    await PolicyStore(engine).declare_purpose(PurposeDeclaration(CLIENT, "other", "Other"))
    fresh = await reader.purpose(CLIENT, "care")
    assert fresh is not None
    assert fresh.text == "Changed behind the store's back"


async def test_consent_changes_do_not_invalidate_cached_policies(engine: AsyncEngine) -> None:
    store = PolicyStore(engine)
    await store.declare_service(DECLARATION)
    before = await _version(engine)
    consent = await store.grant_consent(
        "p-1", CLIENT, SERVICE, "care", ["birthDate"], NOW, None, NOW
    )
    await store.revoke_consent(consent.id, NOW)
    assert await _version(engine) == before
    # Consents themselves are read fresh: the revocation applies to the next read.
    assert await store.active_consents("p-1", CLIENT, (), SERVICE, "care", NOW) == []

"""A node's policy file seeds its database once; a restart never overwrites API changes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from certs.identifiers import ServiceId, SubsystemId
from gateway.bootstrap import NODE_SEEDS, seed_policy_file
from gateway.operator_log import NODE_OPERATOR_LOG
from gateway.schema import upgrade_node_schema
from policies.access import AccessRight
from policies.store import PolicyStore
from tests.unit.gateway.db_fixtures import EngineFactory, engines  # noqa: F401 - fixture

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
ECHO = ServiceId.parse("RENKEI/GOV/HOSP-B/EHR/echo")
CLINIC = SubsystemId.parse("RENKEI/GOV/HOSP-A/EHR")
INSURER = SubsystemId.parse("RENKEI/COM/INSURER/CLAIMS")
POLICY = f"""
[[service]]
id = "{ECHO}"
media_types = ["application/json"]
fields = ["name"]
consent_governed = false

[[access]]
service = "{ECHO}"
grantee = "{CLINIC}"
"""


async def _start(engine: AsyncEngine, path: Path) -> PolicyStore:
    """What a node start does with its database and policy file."""
    await upgrade_node_schema(engine)
    store = PolicyStore(engine)
    await store.create_schema()
    await seed_policy_file(engine, store, path, now=NOW)
    return store


async def _trail(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(NODE_OPERATOR_LOG))).mappings().all()
    return [dict(row) for row in rows]


async def test_api_changes_survive_a_restart(engines: EngineFactory, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    first = engines()
    store = await _start(first, path)
    [seeded] = await store.list_access()
    assert (seeded.service, seeded.grantee) == (ECHO, CLINIC)
    trail = await _trail(first)
    assert [(r["actor"], r["action"], r["target"]) for r in trail] == [
        ("node.toml", "/policy/seed", str(path))
    ]
    # What the management API does: revoke the seeded right, grant another.
    await store.revoke_access(str(seeded.id))
    granted = await store.grant_access(AccessRight(ECHO, INSURER), now=NOW)
    await first.dispose()

    second = engines()  # the node restarts with the same file
    store = await _start(second, path)
    assert await store.list_access() == [granted]
    assert len(await _trail(second)) == 1  # nothing was applied, so nothing recorded


async def test_a_changed_file_is_not_applied_at_start(
    engines: EngineFactory, tmp_path: Path  # noqa: F811
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    engine = engines()
    store = await _start(engine, path)
    path.write_text(POLICY.replace(str(CLINIC), str(INSURER)))
    assert await seed_policy_file(engine, store, path, now=NOW + timedelta(hours=1)) is None
    [right] = await store.list_access()
    assert right.grantee == CLINIC


async def test_the_seed_and_its_marker_are_one_transaction(
    engines: EngineFactory, tmp_path: Path  # noqa: F811
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    engine = engines()
    await upgrade_node_schema(engine)
    store = PolicyStore(engine)
    await store.create_schema()
    async with engine.begin() as conn:  # a marker already there: the insert conflicts
        await conn.execute(
            NODE_SEEDS.insert().values(name="policy_file", sha256="x", source="y", applied_at="")
        )
    assert await seed_policy_file(engine, store, path, now=NOW) is None
    assert await store.list_access() == []


async def test_a_node_that_ran_before_is_not_seeded_again(
    engines: EngineFactory, tmp_path: Path  # noqa: F811
) -> None:
    """Upgrading: the database already holds what the file said at the last start."""
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    engine = engines()
    await upgrade_node_schema(engine, "0011")  # the revision before seeding
    store = PolicyStore(engine)
    ran_before = await store.grant_access(AccessRight(ECHO, INSURER), now=NOW)
    await upgrade_node_schema(engine)
    await store.create_schema()
    await seed_policy_file(engine, store, path, now=NOW)
    assert await store.list_access() == [ran_before]
    async with engine.connect() as conn:  # adopted: a later change of the file is reported
        marker = (await conn.execute(select(NODE_SEEDS.c.sha256))).scalar_one()
    assert marker == hashlib.sha256(POLICY.encode()).hexdigest()

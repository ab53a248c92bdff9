"""Node schema migrations: head matches the models, upgrades keep data and the audit chain."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import gateway.bootstrap  # registers the node seeds table
import gateway.broker.store  # registers the NGSI-LD entity store tables
import gateway.client_auth_store  # registers the client authentication tables
import gateway.dedup  # registers the message-id claims table
import gateway.operator_log  # registers the operator trail table
import gateway.replay
from gateway.audit.chain import fetch_rows, verify_chain
from gateway.audit.hashing import ROW_FORMAT, entry_hash
from gateway.audit.models import AuditEntry, AuditRow, ChainHead
from gateway.audit.writer import row_fields
from gateway.db import Base, create_engine
from gateway.schema import NODE_SCHEMA, upgrade_node_schema
from member_registry.operator_log import OperatorAction, OperatorLog
from member_registry.schema import current_revision, head_revision
from policies import models as policy_models
from tests.conftest import POSTGRES_SERVER, require_postgres

NODE = "RENKEI/GOV/HOSP-B/ss1"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        sqlite = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
        yield sqlite
        await sqlite.dispose()
        return
    require_postgres()
    schema = f"node_ops_{uuid.uuid4().hex}"
    admin = create_async_engine(POSTGRES_SERVER)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    postgres = create_async_engine(
        POSTGRES_SERVER, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        yield postgres
    finally:
        await postgres.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def _write_chain(engine: AsyncEngine, count: int) -> None:
    """Rows as the audit writer of the baseline revision stored them."""
    prev = "0" * 64
    async with engine.begin() as connection:
        for seq in range(1, count + 1):
            entry = AuditEntry(
                role="provider",
                message_id=f"m-{seq}",
                logged_at=datetime(2026, 1, 1, 12, 0, seq, tzinfo=UTC),
                client="RENKEI/GOV/HOSP-A/EHR",
                service="RENKEI/GOV/HOSP-B/EHR/patients",
                status=200,
            )
            fields = row_fields(entry, node_id=NODE, seq=seq, prev_hash=prev)
            # Before migration 0015 rows carried no format and hashed without one (rule 1).
            del fields["format"], fields["entry_hash"]
            fields["entry_hash"] = entry_hash(prev, fields)
            await connection.execute(insert(AuditRow.__table__).values(**fields))
            prev = fields["entry_hash"]
        await connection.execute(
            insert(ChainHead.__table__).values(node_id=NODE, seq=count, entry_hash=prev)
        )


def _differences(connection: Any) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"version_table": NODE_SCHEMA.version_table}
    )
    both: Any = [Base.metadata, policy_models.metadata]
    return list(compare_metadata(context, both))


async def test_head_matches_the_models(engine: AsyncEngine) -> None:
    await upgrade_node_schema(engine)
    assert await current_revision(engine, NODE_SCHEMA) == head_revision(NODE_SCHEMA)
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == [], "a model changed without a migration (gateway/migrations)"


async def test_upgrade_from_the_baseline_keeps_rows_and_chain(engine: AsyncEngine) -> None:
    await upgrade_node_schema(engine, "0001")
    await _write_chain(engine, 5)
    await upgrade_node_schema(engine)
    await upgrade_node_schema(engine)  # idempotent, as every start runs it
    rows = await fetch_rows(engine, NODE)
    assert verify_chain(rows) == 5
    assert [row["message_id"] for row in rows] == [f"m-{n}" for n in range(1, 6)]
    assert {row["format"] for row in rows} == {None}  # rule 1, as they were written


async def test_rows_written_after_the_format_migration_chain_onto_older_ones(
    engine: AsyncEngine,
) -> None:
    await upgrade_node_schema(engine, "0014")
    await _write_chain(engine, 2)
    await upgrade_node_schema(engine)
    head = (await fetch_rows(engine, NODE))[-1]
    entry = AuditEntry(role="consumer", message_id="m-3",
                       logged_at=datetime(2026, 1, 2, tzinfo=UTC))
    fields = row_fields(entry, node_id=NODE, seq=3, prev_hash=head["entry_hash"])
    async with engine.begin() as connection:
        await connection.execute(insert(AuditRow.__table__).values(**fields))
    rows = await fetch_rows(engine, NODE)
    assert [row["format"] for row in rows] == [None, None, ROW_FORMAT]
    assert verify_chain(rows) == 3


async def test_database_from_before_migrations_is_stamped_and_upgraded(
    engine: AsyncEngine,
) -> None:
    # What create_all made before migrations existed: the baseline tables, no version table.
    async with engine.begin() as connection:
        await connection.run_sync(
            lambda sync: Base.metadata.create_all(
                sync, tables=[AuditRow.__table__, ChainHead.__table__]
            )
        )
        # The rows of that time named no format (migration 0015 adds it).
        await connection.execute(text("ALTER TABLE audit_log DROP COLUMN format"))
    await _write_chain(engine, 3)
    await upgrade_node_schema(engine)
    assert await current_revision(engine, NODE_SCHEMA) == head_revision(NODE_SCHEMA)
    assert verify_chain(await fetch_rows(engine, NODE)) == 3


async def test_operator_trail_rows_from_before_the_chain_are_chained(
    engine: AsyncEngine,
) -> None:
    await upgrade_node_schema(engine, "0010")
    async with engine.begin() as connection:
        for n in range(3):
            await connection.execute(
                text(
                    "INSERT INTO node_operator_log (at, actor, role, method, action, target,"
                    " status, result) VALUES (:at, 'ops', 'admin', 'POST', '/api/access',"
                    " '/api/access', 201, 'ok')"
                ),
                {"at": f"2026-01-01T00:00:0{n}+00:00"},
            )
    await upgrade_node_schema(engine)
    trail = OperatorLog(engine, gateway.operator_log.NODE_OPERATOR_LOG)
    assert await trail.verify() == 3
    await trail.record(OperatorAction(
        at=datetime.now(UTC), actor="ops", role="admin", token_id=None, method="DELETE",
        action="/api/access/{right_id}", target="/api/access/1", status=200, source=None,
        change={"before": {"id": "1"}, "after": None},
    ))  # fmt: skip
    assert await trail.verify() == 4

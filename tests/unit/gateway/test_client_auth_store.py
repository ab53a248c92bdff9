"""Client authentication in the node database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from certs.identifiers import SubsystemId
from certs.internal_tls import self_signed_tls_certificate
from certs.keys import fingerprint, generate_key
from gateway.client_auth import ClientAuthSnapshot, ConnectionType
from gateway.client_auth_store import ClientAuthNotFound, ClientAuthState, ClientAuthStore
from gateway.db import create_engine
from gateway.schema import upgrade_node_schema
from gateway.tokens import ClientTokens
from tests.conftest import POSTGRES_SERVER, require_postgres

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOSPITAL = SubsystemId.parse("RENKEI/GOV/HOSP-A/EHR")
INSURER = SubsystemId.parse("RENKEI/COM/INSURER/CLAIMS")
TOKENS = ClientTokens(ec.generate_private_key(ec.SECP256R1()), "RENKEI/GOV/HOSP-A/ss1")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        sqlite = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
        await upgrade_node_schema(sqlite)
        yield sqlite
        await sqlite.dispose()
        return
    require_postgres()
    schema = f"client_auth_{uuid.uuid4().hex}"
    admin = create_async_engine(POSTGRES_SERVER)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    postgres = create_async_engine(
        POSTGRES_SERVER, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        await upgrade_node_schema(postgres)
        yield postgres
    finally:
        await postgres.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def test_changes_reach_the_snapshot(engine: AsyncEngine) -> None:
    store = ClientAuthStore(engine)
    empty = await store.snapshot()
    assert (empty.connection_types, empty.certificates, empty.tokens) == ({}, {}, {})

    await store.set_connection_type(HOSPITAL, ConnectionType.HTTPS, now=NOW)
    await store.set_connection_type(HOSPITAL, ConnectionType.TOKEN, now=NOW)
    cert = self_signed_tls_certificate(generate_key(), "his", role="client", now=NOW)
    sha = await store.add_certificate(HOSPITAL, cert, now=NOW)
    assert sha == fingerprint(cert)
    assert await store.add_certificate(HOSPITAL, cert, now=NOW) == sha  # idempotent
    await store.add_certificate(INSURER, cert, now=NOW)  # one system, two subsystems
    _, claims = TOKENS.issue(client=str(HOSPITAL), now=NOW, ttl=timedelta(hours=1))
    await store.record_token(HOSPITAL, claims, now=NOW)

    snapshot = await store.snapshot()
    assert snapshot.version > empty.version
    assert snapshot.connection_types == {str(HOSPITAL): ConnectionType.TOKEN}
    assert snapshot.certificates == {sha: frozenset({str(HOSPITAL), str(INSURER)})}
    assert len(snapshot.certificate_pems) == 1
    assert snapshot.tokens == {claims.token_id: str(HOSPITAL)}

    await store.revoke_token(HOSPITAL, claims.token_id, now=NOW)
    await store.remove_certificate(INSURER, sha)
    after = await store.snapshot()
    assert after.tokens == {}
    assert after.certificates == {sha: frozenset({str(HOSPITAL)})}
    summaries = {summary.subsystem: summary for summary in await store.clients()}
    assert summaries[str(HOSPITAL)].tokens[0].revoked_at is not None
    assert summaries[str(HOSPITAL)].connection_type is ConnectionType.TOKEN
    assert str(INSURER) not in summaries  # nothing left for it


async def test_unknown_items_are_not_found(engine: AsyncEngine) -> None:
    store = ClientAuthStore(engine)
    with pytest.raises(ClientAuthNotFound):
        await store.remove_certificate(HOSPITAL, "00" * 32)
    _, claims = TOKENS.issue(client=str(HOSPITAL), now=NOW, ttl=timedelta(hours=1))
    with pytest.raises(ClientAuthNotFound):
        await store.revoke_token(HOSPITAL, claims.token_id, now=NOW)
    await store.record_token(HOSPITAL, claims, now=NOW)
    # A token is revoked for the subsystem it was issued for, and only once.
    with pytest.raises(ClientAuthNotFound):
        await store.revoke_token(INSURER, claims.token_id, now=NOW)
    await store.revoke_token(HOSPITAL, claims.token_id, now=NOW)
    with pytest.raises(ClientAuthNotFound):
        await store.revoke_token(HOSPITAL, claims.token_id, now=NOW)


async def test_another_process_sees_a_change_within_the_poll(engine: AsyncEngine) -> None:
    seen: list[ClientAuthSnapshot] = []
    state = ClientAuthState(ClientAuthStore(engine), poll_s=0.05, on_change=seen.append)
    await state.reload()
    poller = asyncio.create_task(state.run())
    try:
        # The other process: its own store on the same database.
        await ClientAuthStore(engine).set_connection_type(
            INSURER, ConnectionType.HTTPS, now=NOW
        )
        for _ in range(100):
            if state.current.connection_types:
                break
            await asyncio.sleep(0.05)
    finally:
        poller.cancel()
    assert state.current.connection_types == {str(INSURER): ConnectionType.HTTPS}
    assert seen[-1] is state.current

"""The NGSI-LD API over a real entity store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.broker.ldcontext import ContextCache
from gateway.broker.service import EntityService
from gateway.broker.store import EntityStore
from gateway.broker.views import NgsiLdApi, NgsiRequest, NgsiResponse
from gateway.db import create_engine
from tests.conftest import POSTGRES_SERVER, require_postgres

OWNER = "RENKEI/GOV/RIVER/sensors"
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        sqlite = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
        yield sqlite
        await sqlite.dispose()
        return
    require_postgres()
    schema = f"broker_{uuid.uuid4().hex}"
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


class Client:
    """Calls the API as an information system would, without HTTP in between."""

    def __init__(self, api: NgsiLdApi, owner: str = OWNER) -> None:
        self.api = api
        self.owner = owner

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: str = "",
        content_type: str = "application/json",
        accept: str | None = None,
        link: str | None = None,
        raw: bytes | None = None,
    ) -> NgsiResponse:
        headers = {}
        if body is not None or raw is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        links = (
            (f'<{link}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"',)
            if link
            else ()
        )
        payload = (
            raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        )
        return await self.api.handle(
            self.owner,
            NgsiRequest(
                method=method,
                path=path,
                query=query,
                headers=headers,
                link_headers=links,
                body=payload,
            ),
        )


@pytest.fixture
async def api(engine: AsyncEngine) -> NgsiLdApi:
    store = EntityStore(engine)
    await store.create_schema()
    return NgsiLdApi(EntityService(store, lambda: NOW), ContextCache())


@pytest.fixture
def client(api: NgsiLdApi) -> Client:
    return Client(api)


def gauge(number: int, lon: float, lat: float, level: float) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:WaterObserved:gauge-{number}",
        "type": "WaterObserved",
        "waterLevel": {
            "type": "Property",
            "value": level,
            "unitCode": "MTR",
            "observedAt": "2026-03-01T08:50:00Z",
        },
        "name": {"type": "Property", "value": f"Gauge {number}"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
        "refRiver": {"type": "Relationship", "object": "urn:ngsi-ld:River:tama"},
    }


@pytest.fixture
def make_gauge() -> Any:
    return gauge

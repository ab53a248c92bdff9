"""The node's services in its database: validation, changes, snapshots, the first seed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certs.identifiers import ServiceId
from gateway.bootstrap import seed_services
from gateway.schema import upgrade_node_schema
from gateway.services import (
    NGSI_LD_STORE,
    Service,
    ServiceConflict,
    ServiceError,
    ServiceNotFound,
    ServiceState,
    ServiceStore,
    parse_openapi,
)
from gateway.settings import ServiceBackend
from tests.unit.gateway.db_fixtures import EngineFactory, engines  # noqa: F401 - fixture

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
PATIENTS = ServiceId.parse("RENKEI/GOV/HOSP-B/EHR/patients")
ECHO = ServiceId.parse("RENKEI/GOV/HOSP-B/EHR/echo")
OPENAPI = {"openapi": "3.0.3", "paths": {"/Patient/{id}": {"get": {}}, "/Patient": {"post": {}}}}


def test_an_openapi_service_has_its_operations_as_endpoints() -> None:
    service = Service(PATIENTS, "https://fhir.example/r4/", openapi=OPENAPI)
    assert service.url == "https://fhir.example/r4"
    assert service.service_type == "OPENAPI"
    assert service.endpoints() == [("GET", "/Patient/*"), ("POST", "/Patient")]
    assert Service(ECHO, "http://b/e").service_type == "REST"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"url": "ftp://b/e"}, "http:// or https://"),
        ({"url": "ngsi-ld:elsewhere"}, "ngsi-ld:store"),
        ({"timeout_s": 0.0}, "timeout_s"),
        ({"timeout_s": 7200.0}, "timeout_s"),
        ({"openapi": {"openapi": "2.0", "paths": {}}}, "3.x expected"),
        ({"openapi": {"openapi": "3.1.0", "paths": []}}, "paths must be an object"),
        ({"url": "https://b/e", "tls_ca_pem": "not a certificate"}, "tls_ca_pem"),
    ],
)
def test_a_bad_definition_is_refused(changes: dict[str, object], fragment: str) -> None:
    fields: dict[str, object] = {"url": "http://b/e", **changes}
    with pytest.raises(ServiceError, match=fragment):
        Service(ECHO, **fields)  # type: ignore[arg-type]


def test_an_ngsi_ld_service_is_answered_from_the_nodes_store() -> None:
    service = Service(ECHO, NGSI_LD_STORE)
    assert service.serves_own_entities
    assert service.ssl is None
    assert not Service(ECHO, "http://b/ngsi-ld/v1").serves_own_entities


def test_backend_tls_settings() -> None:
    assert Service(ECHO, "http://b/e").ssl is None  # plain HTTP
    assert Service(ECHO, "https://b/e").ssl is None  # the default checks, system roots
    assert Service(ECHO, "https://b/e", tls_verify=False).ssl is False


def test_openapi_bytes_are_checked() -> None:
    assert parse_openapi(json.dumps(OPENAPI).encode(), "x") == OPENAPI
    with pytest.raises(ServiceError, match="not JSON"):
        parse_openapi(b"openapi: 3.0.3", "x.yaml")
    with pytest.raises(ServiceError, match="larger"):
        parse_openapi(b" " * (4 * 1024 * 1024 + 1), "x")


async def test_changes_move_the_version_and_reach_the_snapshot(engines: EngineFactory) -> None:  # noqa: F811
    engine = engines()
    await upgrade_node_schema(engine)
    store = ServiceStore(engine)
    seen: list[int] = []
    state = ServiceState(store, on_change=lambda snapshot: seen.append(snapshot.version))
    assert (await state.reload()).all() == ()
    await store.add(Service(PATIENTS, "http://b/p", openapi=OPENAPI), now=NOW)
    with pytest.raises(ServiceConflict):
        await store.add(Service(PATIENTS, "http://b/other"), now=NOW)
    snapshot = await state.reload()
    assert snapshot.get(PATIENTS) == Service(PATIENTS, "http://b/p", openapi=OPENAPI)
    before, after = await store.update(PATIENTS, {"enabled": False, "timeout_s": 5.0}, now=NOW)
    assert (before.enabled, after.enabled, after.timeout_s) == (True, False, 5.0)
    assert (await state.reload()).get(PATIENTS) == after
    await store.remove(PATIENTS)
    assert (await state.reload()).get(PATIENTS) is None
    with pytest.raises(ServiceNotFound):
        await store.remove(PATIENTS)
    with pytest.raises(ServiceNotFound):
        await store.update(PATIENTS, {"enabled": True}, now=NOW)
    assert len(seen) == 4
    assert seen == sorted(seen)


async def test_node_toml_services_seed_once_and_api_changes_survive_a_restart(
    engines: EngineFactory, tmp_path: Path  # noqa: F811
) -> None:
    described = tmp_path / "patients.json"
    described.write_text(json.dumps(OPENAPI))
    backends = (
        ServiceBackend(PATIENTS, "http://b/p", openapi=described),
        ServiceBackend(ECHO, "http://b/e", timeout_s=5),
    )
    first = engines()
    await upgrade_node_schema(first)
    store = ServiceStore(first)
    assert await seed_services(first, store, backends, now=NOW) == 2
    assert (await store.get(PATIENTS)).openapi == OPENAPI  # read once, kept in the database
    # The management API: echo removed, patients disabled, another service added.
    await store.remove(ECHO)
    await store.update(PATIENTS, {"enabled": False}, now=NOW)
    added = await store.add(Service(ECHO.subsystem.service("lab"), "http://b/l"), now=NOW)
    await first.dispose()

    second = engines()  # a restart with the same node.toml
    await upgrade_node_schema(second)
    store = ServiceStore(second)
    assert await seed_services(second, store, backends, now=NOW) is None
    snapshot = await store.snapshot()
    assert sorted(str(s.service) for s in snapshot.all()) == [str(added.service), str(PATIENTS)]
    assert snapshot.get(PATIENTS).enabled is False  # type: ignore[union-attr]


async def test_another_process_sees_a_change_within_its_poll(engines: EngineFactory) -> None:  # noqa: F811
    """Two processes of one node: a change made by one is served by the other."""
    engine = engines()
    await upgrade_node_schema(engine)
    here, there = ServiceStore(engine), ServiceState(ServiceStore(engines()), poll_s=0.05)
    await there.reload()
    polling = asyncio.create_task(there.run())
    try:
        await here.add(Service(ECHO, "http://b/e"), now=NOW)
        async with asyncio.timeout(10):
            while there.current.get(ECHO) is None:
                await asyncio.sleep(0.02)
    finally:
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling

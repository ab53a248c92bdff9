"""The node's catalogue push: what it describes, that the registry verifies it, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from certs.identifiers import NodeId, SubsystemId
from certs.keys import fingerprint, private_key_pem, save_certificate
from gateway.catalogue_push import describe_services, publish_catalogue, publish_url
from gateway.services import Service
from member_registry.catalogue import CatalogueEntry, CatalogueRefused, verify_publication
from member_registry.globalconf import Node
from member_registry.signing import generate_signing_identity
from policies.declarations import ServiceDeclaration

NOW = datetime.now(UTC).replace(microsecond=0)
NODE = NodeId.parse("I/GOV/B/ss1")
EHR = SubsystemId.parse("I/GOV/B/EHR")


class Declarations:
    """A stand-in for the policy store: one declared service."""

    async def service_declaration(self, service: object) -> ServiceDeclaration | None:
        if service == EHR.service("patients"):
            return ServiceDeclaration(
                EHR.service("patients"),
                media_types=("application/json",),
                fields=("name",),
                description="Patient records",
            )
        return None


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    key, certificate = generate_signing_identity("I", NOW - timedelta(days=1))
    (tmp_path / "auth.key").write_bytes(private_key_pem(key))
    save_certificate(certificate, tmp_path / "auth.pem")
    described = {"openapi": "3.0.3", "info": {"title": "Echo", "description": "Echoes"}}
    return SimpleNamespace(
        node_id=NODE,
        auth_key=tmp_path / "auth.key",
        auth_certificate=tmp_path / "auth.pem",
        fingerprint=fingerprint(certificate),
        services=(
            Service(EHR.service("patients"), "http://b/p"),
            Service(EHR.service("echo"), "http://b/e", openapi=described),
            Service(EHR.service("paused"), "http://b/x", enabled=False),
            Service(EHR.service("listMethods"), "http://b/shadow"),
            Service(EHR.service("feeds"), "http://b/f", description="News feeds"),
            Service(EHR.service("bare"), "http://b/b"),
        ),
    )


def test_publish_url_is_beside_the_download_url() -> None:
    assert publish_url("http://127.0.0.1:8000/globalconf") == "http://127.0.0.1:8000/catalogue/publish"


async def test_describe_services_uses_declarations_and_openapi(settings: Any) -> None:
    described = {s["id"]: s for s in await describe_services(settings.services, Declarations())}  # type: ignore[arg-type]
    # A disabled service and a metaservice code are not published.
    assert sorted(described) == [f"{EHR}/bare", f"{EHR}/echo", f"{EHR}/feeds", f"{EHR}/patients"]
    patients = described[f"{EHR}/patients"]
    assert (patients["title"], patients["description"]) == ("patients", "Patient records")
    assert patients["declaration"]["consent_governed"] is True
    echo = described[f"{EHR}/echo"]
    assert (echo["title"], echo["description"], echo["declaration"]) == ("Echo", "Echoes", None)
    assert echo["openapi"] == described_openapi(settings)


async def test_a_service_without_openapi_still_has_a_title_and_description(
    settings: Any,
) -> None:
    described = {s["id"]: s for s in await describe_services(settings.services, Declarations())}  # type: ignore[arg-type]
    feeds = described[f"{EHR}/feeds"]
    assert (feeds["title"], feeds["description"], feeds["openapi"]) == ("feeds", "News feeds", None)
    # Nothing configured at all: the service still says what it is.
    bare = described[f"{EHR}/bare"]
    assert (bare["title"], bare["description"]) == ("bare", f"The bare service of {EHR}.")


@pytest.fixture
async def registry(settings: Any) -> AsyncIterator[tuple[TestServer, list[Any]]]:
    received: list[Any] = []
    nodes = (Node(NODE, "127.0.0.1", 1, (settings.fingerprint,), (EHR,)),)

    async def publish(request: web.Request) -> web.Response:
        token = (await request.read()).decode()
        try:
            node, entries = verify_publication(token, nodes, NOW)
        except CatalogueRefused as exc:
            return web.json_response({"message": exc.message}, status=403)
        received.append((node, entries))
        return web.json_response({"node": str(node), "services": len(entries)})

    app = web.Application()
    app.router.add_post("/catalogue/publish", publish)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, received
    await server.close()


async def test_the_registry_verifies_the_signed_publication(
    settings: Any, registry: tuple[TestServer, list[Any]]
) -> None:
    server, received = registry
    async with aiohttp.ClientSession() as session:
        count = await publish_catalogue(
            session, settings, settings.services, Declarations(),  # type: ignore[arg-type]
            url=str(server.make_url("/catalogue/publish")), now=NOW,
        )
    assert count == 4
    node, entries = received[0]
    assert node == NODE
    assert all(isinstance(entry, CatalogueEntry) for entry in entries)


async def test_a_refused_publication_raises(
    settings: Any, registry: tuple[TestServer, list[Any]]
) -> None:
    server, received = registry
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RuntimeError, match="403"):
            await publish_catalogue(
                session, settings, settings.services, Declarations(),  # type: ignore[arg-type]
                url=str(server.make_url("/catalogue/publish")),
                now=NOW - timedelta(hours=1),  # stale: the registry refuses it
            )
    assert received == []


def described_openapi(settings: Any) -> Any:
    return next(s.openapi for s in settings.services if s.service == EHR.service("echo"))


async def test_an_ngsi_ld_store_service_is_marked_for_consumer_nodes() -> None:
    from gateway.broker.legs import sources_of
    from gateway.services import NGSI_LD_STORE

    services = (Service(EHR.service("ngsi-ld"), NGSI_LD_STORE),
                Service(EHR.service("echo"), "http://127.0.0.1:1/echo"))
    described = await describe_services(services, Declarations())  # type: ignore[arg-type]
    marked = {s["id"]: s["openapi"] for s in described}
    assert marked[f"{EHR}/ngsi-ld"]["x-ngsi-ld"]["version"] == "1.8.1"
    assert marked[f"{EHR}/echo"] is None
    # What a consumer node reads back from the catalogue: the NGSI-LD service only.
    catalogue = {"services": [{"service": s["id"], "openapi": s["openapi"]} for s in described]}
    assert [str(s.service) for s in sources_of(catalogue)] == [f"{EHR}/ngsi-ld"]


async def test_the_registration_of_an_ngsi_ld_service_is_published() -> None:
    from gateway.services import NGSI_LD_STORE

    async def registration(service: Service) -> dict[str, Any]:
        return {"information": [{"entities": [{"type": f"urn:{service.service.service_code}"}]}]}

    described = await describe_services(
        (Service(EHR.service("ngsi-ld"), NGSI_LD_STORE),), Declarations(),  # type: ignore[arg-type]
        registration,
    )
    assert described[0]["openapi"]["x-ngsi-ld"]["information"][0]["entities"] == [
        {"type": "urn:ngsi-ld"}
    ]


async def test_debounced_sets_the_event_once_per_gap() -> None:
    import asyncio

    from gateway.catalogue_push import Debounced

    event = asyncio.Event()
    debounced = Debounced(event, 0.05)
    for _ in range(100):
        debounced.touch()
    assert not event.is_set()
    await asyncio.wait_for(event.wait(), 5)
    event.clear()
    await asyncio.sleep(0.1)
    assert not event.is_set()  # a hundred touches, one push

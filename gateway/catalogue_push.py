"""Publishing this node's services to the registry's API catalogue.

At start, whenever its services change, and then periodically, the node
describes each of its enabled services
(title and description from its OpenAPI document or its declaration, the
declaration itself, the OpenAPI document), signs the list with its auth key
(``member_registry.catalogue.sign_publication``) and POSTs it to the
registry's ``/catalogue/publish``, beside the configuration download URL the
anchor names. A failed push is logged and retried at the next period: the
catalogue is informative, so it never stops the node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from certs.keys import load_certificate, load_private_key
from gateway.metaservices import is_metaservice
from gateway.services import Service
from gateway.settings import NodeSettings
from member_registry.anchor import load_anchor
from member_registry.catalogue import CatalogueRefused, sign_publication
from policies.declarations import ServiceDeclaration
from policies.store import PolicyStore

__all__ = [
    "DEFAULT_INTERVAL_S",
    "REGISTRATION_GAP_S",
    "Debounced",
    "catalogue_pushing",
    "describe_services",
    "publish_catalogue",
    "publish_url",
]

log = structlog.get_logger(__name__)

DEFAULT_INTERVAL_S = 300.0


def publish_url(download_url: str) -> str:
    """The registry's publication endpoint, beside the configuration it serves."""
    parts = urlsplit(download_url)
    return f"{parts.scheme}://{parts.netloc}/catalogue/publish"


def _declaration_json(declaration: ServiceDeclaration) -> dict[str, Any]:
    return {
        "media_types": list(declaration.media_types),
        "fields": list(declaration.fields),
        "public_fields": list(declaration.public_fields),
        "consent_governed": declaration.consent_governed,
    }


def _title(backend: Service, info: dict[str, Any]) -> str:
    title = info.get("title")
    if isinstance(title, str) and title.strip():
        return title
    return backend.title or backend.service.service_code


def _description(
    backend: Service, declaration: ServiceDeclaration | None, info: dict[str, Any]
) -> str:
    """The first description that says something; a service always has one."""
    candidates = (
        declaration.description if declaration is not None else "",
        backend.description,
        info.get("description"),
    )
    for text in candidates:
        if isinstance(text, str) and text.strip():
            return text
    service = backend.service
    return f"The {service.service_code} service of {service.subsystem}."


# An NGSI-LD service's context-source registration (gateway/broker/registration.py).
Registration = Callable[[Service], Awaitable[dict[str, Any]]]


async def _no_registration(_: Service) -> dict[str, Any]:
    return {"version": "1.8.1", "operations": ["query", "retrieve"]}


async def describe_services(
    services: tuple[Service, ...], policy: PolicyStore,
    registration: Registration = _no_registration,
) -> list[dict[str, Any]]:
    """The catalogue document's services: what integrators need to find and call them."""
    described = []
    for backend in services:
        if is_metaservice(backend.service) or not backend.enabled:
            continue
        declaration = await policy.service_declaration(backend.service)
        openapi = dict(backend.openapi) if backend.openapi is not None else None
        if backend.serves_own_entities:
            # What marks it as an NGSI-LD source for consumer nodes (gateway/broker/legs.py).
            openapi = openapi or {"openapi": "3.0.3", "info": {"title": _title(backend, {})},
                                  "paths": {}}
            openapi["x-ngsi-ld"] = await registration(backend)
        info = openapi.get("info") if openapi is not None else None
        info = info if isinstance(info, dict) else {}
        described.append(
            {
                "id": str(backend.service),
                "title": _title(backend, info),
                "description": _description(backend, declaration, info),
                "declaration": _declaration_json(declaration) if declaration else None,
                "openapi": openapi,
            }
        )
    return described


async def publish_catalogue(
    session: aiohttp.ClientSession,
    settings: NodeSettings,
    services: tuple[Service, ...],
    policy: PolicyStore,
    *,
    url: str,
    now: datetime,
    registration: Registration = _no_registration,
) -> int:
    """Sign and POST the node's catalogue once; the number of services published.

    Raises ``aiohttp.ClientError`` or ``TimeoutError`` when the registry cannot
    be reached, ``RuntimeError`` when it refuses the publication.
    """
    described = await describe_services(services, policy, registration)
    token = sign_publication(
        load_private_key(settings.auth_key),
        load_certificate(settings.auth_certificate),
        settings.node_id,
        described,
        now,
    )
    async with session.post(
        url,
        data=token.encode(),
        headers={"Content-Type": "application/jose"},
        timeout=aiohttp.ClientTimeout(total=30),
    ) as response:
        if response.status != 200:
            text = (await response.content.read(2048)).decode("utf-8", "replace")
            raise RuntimeError(f"the registry refused the catalogue ({response.status}): {text}")
    return len(described)


# Entity writes republish the registrations at most this often.
REGISTRATION_GAP_S = 5.0


class Debounced:
    """Sets ``event`` once per ``gap_s`` at most, however often it is touched."""

    def __init__(self, event: asyncio.Event, gap_s: float) -> None:
        self._event = event
        self._gap_s = gap_s
        self._pending: asyncio.TimerHandle | None = None

    def touch(self) -> None:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self._gap_s, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._event.set()


@contextlib.asynccontextmanager
async def catalogue_pushing(
    settings: NodeSettings,
    services: Callable[[], tuple[Service, ...]],
    policy: PolicyStore,
    clock: Callable[[], datetime],
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    registration: Registration = _no_registration,
) -> AsyncIterator[asyncio.Event]:
    """Push the catalogue now and every ``interval_s`` while the block runs.

    Setting the event it yields pushes at once (the node's services changed).
    """
    url = publish_url(load_anchor(settings.anchor).download_urls[0])
    wake = asyncio.Event()

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                wake.clear()
                try:
                    count = await publish_catalogue(
                        session, settings, services(), policy, url=url, now=clock(),
                        registration=registration,
                    )
                    log.info("catalogue_published", services=count)
                except (aiohttp.ClientError, TimeoutError, RuntimeError, CatalogueRefused) as exc:
                    log.warning("catalogue_publish_failed", url=url, error=str(exc)[:500])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), interval_s)

    task = asyncio.create_task(run(), name="catalogue-push")
    try:
        yield wake
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""Where a consumer node's distributed NGSI-LD reads go, and how each leg travels.

Sources are the provider services the registry's API catalogue marks as
NGSI-LD (``x-ngsi-ld`` in their OpenAPI description: the registration the
provider node publishes for each ``ngsi-ld:store`` service, ``registration.py``),
read at most every ``ttl_s``. The catalogue only says where to ask: who may
read what is decided by each provider node on the signed leg, and a provider
left out of the catalogue is simply not asked.

Each leg is an r1 exchange through :func:`gateway.consumer.exchange_leg`: the
same signing, relay, verification and audit as an information system's call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from certs.identifiers import IdentifierError, ServiceId
from gateway.broker.federation import Headers, LegFailed, RemoteEntities
from gateway.broker.registration import EXTENSION, Source, source_of
from gateway.consumer import exchange_leg
from gateway.context import NodeContext
from gateway.errors import GatewayError
from gateway.protocol import parse_exchange_request
from member_registry.anchor import load_anchor

__all__ = ["DEADLINE_S", "CatalogueSources", "relay_remote", "sources_of"]

log = structlog.get_logger(__name__)

# A leg's answer is an NGSI-LD page of at most 1000 entities.
MAX_LEG_BYTES = 16 * 1024 * 1024
# How long a consumer's distributed read waits for its slowest provider.
DEADLINE_S = 10.0


def sources_of(catalogue: Any) -> list[Source]:
    """The NGSI-LD services of a ``GET /catalogue`` document, malformed entries skipped."""
    services = catalogue.get("services") if isinstance(catalogue, dict) else None
    found = []
    for entry in services if isinstance(services, list) else []:
        openapi = entry.get("openapi") if isinstance(entry, dict) else None
        registration = openapi.get(EXTENSION) if isinstance(openapi, dict) else None
        if not isinstance(registration, dict):
            continue
        try:
            found.append(source_of(ServiceId.parse(str(entry.get("service"))), registration))
        except IdentifierError:
            continue
    return found


class CatalogueSources:
    """The registry catalogue's NGSI-LD services, cached for ``ttl_s``."""

    def __init__(self, url: Callable[[], str], *, ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url_of = url
        self._url: str | None = None
        self._ttl_s = ttl_s
        self._clock = clock
        self._sources: list[Source] = []
        self._read_at: float | None = None

    @classmethod
    def beside_anchor(cls, ctx: NodeContext) -> CatalogueSources:
        def url() -> str:
            parts = urlsplit(load_anchor(ctx.settings.anchor).download_urls[0])
            return f"{parts.scheme}://{parts.netloc}/catalogue"

        return cls(url)

    async def __call__(self) -> Sequence[Source]:
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self._ttl_s:
            return self._sources
        if self._url is None:
            self._url = self._url_of()
        try:
            async with aiohttp.ClientSession() as session, session.get(
                self._url, timeout=aiohttp.ClientTimeout(total=10), allow_redirects=False
            ) as response:  # fmt: skip
                if response.status != 200:
                    raise aiohttp.ClientError(f"the catalogue answered {response.status}")
                self._sources = sources_of(await response.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # The last good list stays in use; a node that never read one asks nobody.
            log.warning("ngsi_ld_sources_unread", url=self._url, error=str(exc)[:300])
        self._read_at = now
        return self._sources


def relay_remote(ctx: NodeContext, *, deadline_s: float) -> RemoteEntities:
    """The providers' entities, each leg an audited exchange of this node."""
    assert ctx.ngsi_ld is not None
    service = ctx.ngsi_ld.service
    contexts = ctx.ngsi_ld.contexts

    async def send(
        client: str, target: ServiceId, path: str, headers: Headers
    ) -> tuple[int, bytes]:
        try:
            # The caller's X-Road-Id, user, issue and purpose, parsed and checked as
            # on /r1/ (a purpose the client has not declared is refused below).
            request = parse_exchange_request(
                "GET", f"/r1/{target}{path}",
                [("X-Road-Client", client), ("Accept", "application/json"), *headers],
                instance=ctx.settings.node_id.instance,
            )  # fmt: skip
            answer = await exchange_leg(ctx, request, max_body_bytes=MAX_LEG_BYTES)
        except GatewayError as exc:
            raise LegFailed(f"{exc.code}: {exc.message}") from exc
        return answer.status, answer.body

    return RemoteEntities(
        CatalogueSources.beside_anchor(ctx), send, contexts.core,
        deadline_s=deadline_s, now=service.now,
    )  # fmt: skip

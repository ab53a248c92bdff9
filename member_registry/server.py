"""Running the registry: opening its service from settings and serving the HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog
from aiohttp import web

from member_registry.api import create_app
from member_registry.database import create_engine
from member_registry.schema import upgrade_registry_schema
from member_registry.service import RegistryService
from member_registry.settings import RegistrySettings
from member_registry.signing import load_certificate, load_signing_key

__all__ = ["open_service", "serve"]

_log = structlog.get_logger("member_registry.server")


@asynccontextmanager
async def open_service(settings: RegistrySettings) -> AsyncIterator[RegistryService]:
    """A ``RegistryService`` on the configured database (schema created if missing)."""
    key = load_signing_key(settings.signing_key_path)
    certificate = load_certificate(settings.signing_cert_path)
    engine = create_engine(settings.database_url)
    try:
        service = RegistryService(engine, key, certificate, settings.instance,
                                  settings.global_conf_settings())
        await upgrade_registry_schema(engine)
        yield service
    finally:
        await engine.dispose()


async def serve(
    settings: RegistrySettings,
    stop: asyncio.Event,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the registry until ``stop`` is set; ``on_ready`` gets the base URL."""
    async with open_service(settings) as service:
        runner = web.AppRunner(create_app(service, settings), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.listen_host, settings.listen_port)
            await site.start()
            host, port = runner.addresses[0][:2]
            url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
            _log.info("registry.listening", url=url, instance=settings.instance)
            if on_ready is not None:
                on_ready(url)
            await stop.wait()
            _log.info("registry.stopping")
        finally:
            await runner.cleanup()

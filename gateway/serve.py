"""Running a node process: three listeners on one event loop until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from aiohttp import web

from gateway.app import client_app, management_app, peer_app
from gateway.broker.registration import ngsi_ld_registration
from gateway.catalogue_push import REGISTRATION_GAP_S, Debounced, catalogue_pushing
from gateway.console.app import install_console
from gateway.console.links import CitizenLinks
from gateway.context import Clock, NodeContext, open_node, utcnow
from gateway.guard import GuardedRunner, GuardedSite, Port
from gateway.ops_api import NodeOps, install_ops
from gateway.preflight import Listeners, preflight
from gateway.refusals import audit_sink
from gateway.schema import migrate_node_database
from gateway.settings import NodeSettings
from gateway.tokens import TokenIssuer

__all__ = ["RunningNode", "run_node", "running_node", "token_issuer"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RunningNode:
    context: NodeContext
    client_port: int
    peer_port: int
    management_port: int
    # The client TLS port ([client_tls]), if the node has one.
    client_tls_port: int | None = None


def token_issuer(settings: NodeSettings) -> TokenIssuer:
    return TokenIssuer.from_key_file(settings.token_key, audience=str(settings.node_id))


def _bound_port(site: web.BaseSite) -> int:
    server = site._server  # aiohttp exposes the bound socket only here
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def running_node(
    settings: NodeSettings, *, clock: Clock = utcnow
) -> AsyncIterator[RunningNode]:
    """Start a node's listeners; stop them, draining in-flight exchanges, on exit.

    Raises :class:`~gateway.preflight.StartupError` before writing anything when a
    file, key, port or the database is not usable.
    """
    listeners = await preflight(settings)
    try:
        async with _serving(settings, listeners, clock) as running:
            yield running
    finally:
        listeners.close()


@contextlib.asynccontextmanager
async def _serving(
    settings: NodeSettings, listeners: Listeners, clock: Clock
) -> AsyncIterator[RunningNode]:
    await migrate_node_database(settings.database_url)
    async with open_node(settings, clock=clock) as ctx:
        runners: list[web.AppRunner] = []
        client_tls_port: int | None = None
        try:
            ports = []
            port_name: Port
            apps = (client_app(ctx), peer_app(ctx), management_app(ctx, token_issuer(settings)))
            ops = NodeOps.from_settings(settings)
            install_ops(ctx, ops, client=apps[0], peer=apps[1], management=apps[2])
            install_console(apps[2], maintenance=ops.maintenance, links=CitizenLinks.from_key_file(
                settings.token_key, node_id=str(settings.node_id)))
            for port_name, app, listen, sock, ssl_context in (
                ("client", apps[0], settings.client, listeners.client, None),
                ("peer", apps[1], settings.peer, listeners.peer, ctx.server_ssl),
                ("management", apps[2], settings.management, listeners.management, None),
            ):
                # The guard: framing, sizes, deadlines and caps (gateway/guard.py).
                runner = GuardedRunner(
                    app, port=port_name, limits=settings.limits,
                    max_body_bytes=settings.max_body_bytes, sink=audit_sink(ctx, port_name),
                    access_log=None, handle_signals=False, shutdown_timeout=10,
                )
                await runner.setup()
                runners.append(runner)
                site = GuardedSite(
                    runner, listen.host, listen.port, ssl_context=ssl_context, sock=sock,
                    reuse_port=listen.reuse_port or None,
                    handshake_timeout_s=settings.limits.tls_handshake_timeout_s,
                )
                await site.start()
                ports.append(_bound_port(site))
                if port_name == "client" and settings.client_tls is not None:
                    # One application, one guard: the same client port over TLS.
                    assert listeners.client_tls is not None  # bound by the preflight
                    tls_site = web.SockSite(
                        runner, listeners.client_tls, ssl_context=ctx.client_ssl
                    )
                    await tls_site.start()
                    client_tls_port = _bound_port(tls_site)
            log.info(
                "node_started",
                node=ctx.node_id,
                client_port=ports[0],
                client_tls_port=client_tls_port,
                peer_port=ports[1],
                management_port=ports[2],
            )
            # The registry's API catalogue learns this node's services (gateway/catalogue_push.py).
            snapshot = ctx.service_snapshot
            async with catalogue_pushing(
                settings, lambda: snapshot().all(), ctx.policy, clock,
                registration=ngsi_ld_registration(ctx),
            ) as republish:
                # A service added, changed or removed (here or by another process)
                # reaches the registry's catalogue at once, not at the next period.
                ctx.on_services_change(lambda _: republish.set())
                # Entities published here change the NGSI-LD registrations: soon, not
                # at every write.
                ctx.entity_listeners.append(Debounced(republish, REGISTRATION_GAP_S).touch)
                yield RunningNode(ctx, ports[0], ports[1], ports[2], client_tls_port)
        finally:
            for started in reversed(runners):
                await started.cleanup()


async def run_node(settings: NodeSettings) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_node(settings):
        await stop.wait()
    log.info("node_stopped", node=str(settings.node_id))

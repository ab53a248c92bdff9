"""Running one small aiohttp application until SIGINT/SIGTERM (the OCSP and TSA servers)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

__all__ = ["bound_url", "serve_until_stopped"]


def bound_url(runner: web.AppRunner) -> str:
    """``http://host:port`` of the first socket ``runner`` listens on (port 0 resolved)."""
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


async def serve_until_stopped(
    app: web.Application, *, host: str, port: int, announce: Callable[[str], None]
) -> None:
    """Serve ``app`` on ``host:port``, call ``announce(url)`` once listening, stop on a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        announce(bound_url(runner))
        await stop.wait()
    finally:
        await runner.cleanup()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

"""Run one aiohttp application on loopback until SIGTERM, announcing its port."""

from __future__ import annotations

import asyncio
import signal
import ssl

from aiohttp import web

__all__ = ["serve_forever", "use_uvloop"]


def use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional speed-up, as in the node
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve_forever(
    app: web.Application, *, port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> None:
    """Serve ``app``; print ``PORT <n>`` once listening; stop on SIGTERM or SIGINT."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()

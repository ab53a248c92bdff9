"""A sandbox federation whose processes a test can kill and restart.

``renkei sandbox up`` runs the registry and the nodes as its own children.
A fault is injected by finding one of them by the command line that names
this sandbox's own config file, and signalling that pid alone; the
replacement is started here, as our child, with the same config (same
ports, same database), and stopped by its pid at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.functional.sandbox_helpers import sandbox_process


def pids_running(config: Path) -> list[int]:
    """Pids of ``renkei ... serve --config CONFIG`` processes (this sandbox's only)."""
    wanted = str(config).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and wanted in argv:
            found.append(int(entry.name))
    return found


class Federation:
    def __init__(self, document: dict[str, Any], log_dir: Path) -> None:
        self.document = document
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def node(self, node_id: str) -> dict[str, Any]:
        return next(n for n in self.document["nodes"] if n["id"] == node_id)

    @property
    def registry_config(self) -> Path:
        return Path(self.document["dir"]) / "registry" / "registry.toml"

    def kill(self, config: Path, sig: signal.Signals = signal.SIGKILL) -> int:
        killed = 0
        for pid in pids_running(config):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                killed += 1
        return killed

    def start(self, kind: str, config: Path) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"restart-{config.parent.name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", kind, "serve", "--config", str(config)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=dict(os.environ),
        )
        log.close()
        self.started.append(process)
        return process

    async def wait_gone(self, config: Path, timeout: float = 20) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while pids_running(config) and asyncio.get_running_loop().time() < deadline:
            for process in self.started:
                process.poll()  # reap our own children so they leave /proc
            await asyncio.sleep(0.1)

    async def wait_ready(self, url: str, timeout: float = 60) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            return True
                await asyncio.sleep(0.2)
        return False

    def stop_started(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@contextlib.contextmanager
def running_federation(
    directory: Path, *, database: str | None = None, environ: dict[str, str] | None = None
) -> Iterator[Federation]:
    saved = {name: os.environ.get(name) for name in environ or {}}
    os.environ.update(environ or {})
    try:
        with sandbox_process(directory, database=database) as document:
            federation = Federation(document, directory.parent)
            try:
                yield federation
            finally:
                federation.stop_started()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

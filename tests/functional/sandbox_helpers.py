"""Running ``renkei sandbox up`` as a real process for functional tests."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 90


@contextmanager
def sandbox_process(
    directory: Path, *, database: str | None = None, description: Path | None = None
) -> Iterator[dict[str, Any]]:
    """Start a sandbox federation, yield its JSON description, stop it by its pid."""
    argv = [sys.executable, "-m", "gateway.cli", "sandbox", "up", "--dir", str(directory)]
    if description is not None:
        argv.insert(5, str(description))
    if database is not None:
        argv += ["--database", database]
    stderr = (directory.parent / f"{directory.name}.stderr").open("wb")
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=dict(os.environ)
    )
    try:
        stderr_path = directory.parent / f"{directory.name}.stderr"
        document = _read_document(
            process, lambda: stderr_path.read_text("utf-8", "replace")[-3000:]
        )
        yield document
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stderr.close()


def _read_document(process: subprocess.Popen[bytes], _tail: Callable[[], str]) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    buffer = b""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sandbox exited early with code {process.returncode}: {_tail()}")
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        buffer += chunk
        try:
            return dict(json.loads(buffer))
        except ValueError:
            continue
    raise RuntimeError("the sandbox did not print its description in time")


def node(document: dict[str, Any], node_id: str) -> dict[str, Any]:
    for entry in document["nodes"]:
        if entry["id"] == node_id:
            return dict(entry)
    raise KeyError(node_id)


def client_headers(document: dict[str, Any], subsystem: str) -> dict[str, str]:
    """``X-Road-Client`` and, where the sandbox issued one, the subsystem's client token."""
    headers = {"X-Road-Client": subsystem}
    for entry in document["nodes"]:
        token = entry.get("clients", {}).get(subsystem, {}).get("token")
        if token is not None:
            headers["Renkei-Client-Token"] = token
    return headers

"""``renkei sandbox up``: build a federation, run it, describe it, stop it cleanly.

The registry and every node run as separate ``renkei`` processes, exactly as
an operator would run them; the sample backends run in this process. Only
once every node reports ready is the JSON description printed on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway import cli_output
from gateway.sandbox.backends import backend_app
from gateway.sandbox.build import BuiltSandbox, build_sandbox, client_slug, describe
from gateway.sandbox.description import (
    DescriptionError,
    SandboxDescription,
    default_description,
    load_description,
)
from gateway.sandbox.postgres import create_databases, drop_databases

__all__ = ["SandboxProcesses", "run_sandbox", "sandbox_running"]

READY_TIMEOUT_S = 60.0


class SandboxError(RuntimeError):
    code = "sandbox.failed"


class SandboxProcesses:
    """The child processes of a sandbox, stopped by their own pids only."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self.children: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, name: str, *argv: str) -> asyncio.subprocess.Process:
        log = (self._log_dir / f"{name}.log").open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        self.children[name] = process
        return process

    async def stop(self, name: str, *, timeout_s: float = 15.0) -> None:
        process = self.children.pop(name, None)
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def stop_all(self) -> None:
        for name in reversed(list(self.children)):
            await self.stop(name)


async def _wait_ready(
    session: aiohttp.ClientSession,
    url: str,
    process: asyncio.subprocess.Process,
    what: str,
    log_file: Path,
) -> None:
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        if process.returncode is not None:
            tail = await asyncio.to_thread(_tail, log_file)
            raise SandboxError(f"{what} exited with code {process.returncode}:\n{tail}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise SandboxError(f"{what} was not ready within {READY_TIMEOUT_S:.0f} s")


def _tail(log_file: Path) -> str:
    return log_file.read_text("utf-8", "replace")[-2000:] if log_file.exists() else ""


async def _issue_tokens(built: BuiltSandbox, now: datetime) -> None:
    from gateway.serve import token_issuer
    from gateway.settings import load_node_settings

    for node in built.nodes:
        issuer = token_issuer(load_node_settings(node.config))
        for role in ("admin", "auditor", "consent"):
            node.tokens[role] = issuer.issue(
                role=role, subject=f"sandbox-{role}", now=now, ttl=timedelta(days=1)
            )


async def _authenticate_clients(session: aiohttp.ClientSession, built: BuiltSandbox) -> None:
    """Set each client subsystem up to prove who it is, through the management API.

    Every subsystem gets a registered TLS client certificate and a client
    token. Where a node hosts several members, their subsystems must prove
    themselves (connection type TOKEN: a token, or the certificate over TLS);
    elsewhere the default (plain HTTP on loopback) is kept.
    """
    for node in built.nodes:
        base = f"http://127.0.0.1:{node.management_port}/api/clients"
        admin = {"Authorization": f"Bearer {node.tokens['admin']}"}
        several = len({subsystem.member for subsystem in node.spec.subsystems}) > 1
        for subsystem in node.spec.subsystems:
            path = f"{base}/{subsystem.instance}/{subsystem.member_class}/" + (
                f"{subsystem.member_code}/{subsystem.subsystem_code}"
            )
            slug = client_slug(str(subsystem))
            keys = node.directory / "keys"
            certificate = (keys / f"is-{slug}.pem").read_text("ascii")
            calls: list[tuple[str, str, dict[str, Any]]] = [
                ("POST", f"{path}/certificates", {"certificate": certificate}),
                ("POST", f"{path}/tokens", {"ttl_s": 86400}),
            ]
            if several:
                calls.append(("PUT", f"{path}/connection-type", {"connection_type": "TOKEN"}))
            entry: dict[str, str] = {
                "tls_certificate": str(keys / f"is-{slug}.pem"),
                "tls_key": str(keys / f"is-{slug}.key"),
            }
            for method, url, body in calls:
                async with session.request(method, url, json=body, headers=admin) as response:
                    document = await response.json()
                    if response.status >= 300:
                        raise SandboxError(f"setting up client {subsystem} failed: {document}")
                    if "token" in document:
                        entry["token"] = document["token"]
            entry["connection_type"] = "TOKEN" if several else "HTTP"
            node.clients[str(subsystem)] = entry


async def _seed_consents(
    session: aiohttp.ClientSession, built: BuiltSandbox, description: SandboxDescription
) -> list[dict[str, Any]]:
    """Grant the description's consents through each data holder's management API."""
    granted = []
    for consent in description.consents:
        holder = description.node_of(consent.service.subsystem)
        node = next(n for n in built.nodes if n.spec.id == holder.id)
        async with session.post(
            f"http://127.0.0.1:{node.management_port}/api/consents",
            json={
                "subject": consent.subject,
                "consumer": consent.consumer,
                "service": str(consent.service),
                "purpose": consent.purpose,
                "fields": list(consent.fields),
            },
            headers={"Authorization": f"Bearer {node.tokens['consent']}"},
        ) as response:
            document = await response.json()
            if response.status != 201:
                raise SandboxError(f"granting a sandbox consent failed: {document}")
            granted.append(dict(document["consent"]))
    return granted


@contextlib.asynccontextmanager
async def sandbox_running(
    description: SandboxDescription,
    directory: Path,
    *,
    database: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> AsyncIterator[tuple[BuiltSandbox, str]]:
    """Run a whole federation; yield it with its JSON description; stop it on exit.

    ``progress`` hears a line per step (``renkei sandbox up`` shows them on stderr).
    """
    runner = web.AppRunner(backend_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    backend_port = runner.addresses[0][1]
    processes = SandboxProcesses(directory / "logs")
    databases: list[str] = []
    try:
        (directory / "logs").mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        if database is not None:
            suffix = secrets.token_hex(3)
            names = [
                f"renkei_sbx_{node.slug.replace('-', '_')}_{suffix}"
                for node in description.nodes
            ]
            databases = await create_databases(database, names)
        progress(f"building the federation in {directory}: CA, registry, "
                 f"{len(description.nodes)} node(s)")
        built = await asyncio.to_thread(
            build_sandbox,
            description,
            directory,
            backend_url=f"http://127.0.0.1:{backend_port}",
            now=now,
            databases=databases or None,
        )
        await _issue_tokens(built, now)
        async with aiohttp.ClientSession() as session:
            ca_dir = str(built.ca_cert.parent)
            for name, argv, url in (
                ("ocsp", ("ocsp", "serve", "--ca-dir", ca_dir, "--port", str(built.ocsp_port)),
                 built.ocsp_url),
                ("tsa", ("tsa", "serve", "--ca-dir", ca_dir, "--port", str(built.tsa_port)),
                 built.tsa_url),
            ):
                progress(f"starting the {name.upper()} server")
                process = await processes.start(name, *argv)
                await _wait_ready(
                    session, f"{url}/healthz", process, f"the {name} server",
                    directory / "logs" / f"{name}.log",
                )
            progress("starting the registry")
            registry = await processes.start(
                "registry", "registry", "serve", "--config", str(built.registry_config)
            )
            await _wait_ready(
                session,
                f"http://127.0.0.1:{built.registry_port}/globalconf",
                registry,
                "the registry",
                directory / "logs" / "registry.log",
            )
            progress(f"starting {len(built.nodes)} node(s)")
            started = []
            for node in built.nodes:
                process = await processes.start(
                    node.spec.slug, "node", "serve", "--config", str(node.config)
                )
                started.append((node, process))
            for node, process in started:
                await _wait_ready(
                    session,
                    f"http://127.0.0.1:{node.management_port}/readyz",
                    process,
                    f"node {node.spec.id}",
                    directory / "logs" / f"{node.spec.slug}.log",
                )
                progress(f"node {node.spec.id} ready")
            await _authenticate_clients(session, built)
            consents = await _seed_consents(session, built, description)
        document = json.loads(
            describe(
                built, description, consents, backend_url=f"http://127.0.0.1:{backend_port}"
            )
        )
        # Child pids let fault-injection tests stop one component (never others').
        document["processes"] = {
            name: process.pid for name, process in processes.children.items()
        }
        yield built, json.dumps(document, indent=2)
    finally:
        await processes.stop_all()
        await runner.cleanup()
        if databases and database is not None:
            await drop_databases(database, databases)


def summary(document: dict[str, Any], seconds: float) -> str:
    """What ``renkei sandbox up`` tells a person on stderr (stdout has the JSON)."""
    lines = [
        f"sandbox {document['instance']} ready in {seconds:.0f} s, in {document['dir']}",
        f"  registry  {document['registry']['url']}",
    ]
    for node in document["nodes"]:
        lines.append(
            f"  node {node['id']}: client {node['client_url']}, "
            f"management {node['management_url']}"
        )
    for service in document["services"]:
        governed = ", consent-governed" if service.get("consent_governed") else ""
        lines.append(f"  service {service['id']}{governed}")
    lines.append("The JSON description (with the tokens) is on stdout; Ctrl-C stops it.")
    return "\n".join(lines)


async def run_sandbox(
    description_path: Path | None, directory: Path | None, *, database: str | None = None
) -> int:
    try:
        description = (
            load_description(description_path) if description_path else default_description()
        )
    except DescriptionError as exc:
        print(f"renkei: error: {exc}", file=sys.stderr)
        return 1
    temporary = directory is None
    work = Path(tempfile.mkdtemp(prefix="renkei-sandbox-")) if directory is None else directory
    if not temporary and work.exists() and any(work.iterdir()):
        print(f"renkei: error: {work} is not empty", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = time.monotonic()
    try:
        async with sandbox_running(
            description, work, database=database, progress=cli_output.progress
        ) as (_, document):
            print(document, flush=True)
            cli_output.progress(summary(json.loads(document), time.monotonic() - started))
            await stop.wait()
    except SandboxError as exc:
        print(f"renkei: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if temporary and not os.environ.get("RENKEI_SANDBOX_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    return 0

"""Checks a node makes before it writes anything: files, keys, ports, database.

``renkei node serve`` runs :func:`preflight` first; only when every check has
passed does the node migrate its database, seed it and start serving. Each
failure is one :class:`StartupError` with a stable code and the process exit
code documented in docs/operations.md ("Exit codes"), so a port in use or an
unreachable database never leaves a half-applied change behind.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from certs.errors import CertsError
from certs.keys import load_certificate, load_certificates, load_private_key
from gateway.db import create_engine, is_sqlite
from gateway.services import ServiceError, read_openapi_file
from gateway.settings import ListenSettings, NodeSettings
from gateway.tokens import TokenIssuer
from member_registry.anchor import load_anchor
from member_registry.errors import AnchorError
from policies.errors import PolicyFileError
from policies.files import load_policy_file

__all__ = [
    "EXIT_CONFIG",
    "EXIT_DATABASE",
    "EXIT_KEYS",
    "EXIT_PORT",
    "Listeners",
    "StartupError",
    "bind_listeners",
    "check_database",
    "check_files",
    "preflight",
]

EXIT_CONFIG = 3
EXIT_PORT = 4
EXIT_DATABASE = 5
EXIT_KEYS = 6
DATABASE_TIMEOUT_S = 10.0


class StartupError(Exception):
    """A node cannot start; nothing has been written."""

    def __init__(self, code: str, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code
        self.message = message


@dataclass
class Listeners:
    """The node's listening sockets, bound before anything is written."""

    client: socket.socket
    peer: socket.socket
    management: socket.socket
    client_tls: socket.socket | None = None

    def close(self) -> None:
        for sock in (self.client, self.peer, self.management, self.client_tls):
            if sock is not None:
                sock.close()


def _key_error(what: str, exc: Exception) -> StartupError:
    return StartupError("node.key_unavailable", EXIT_KEYS, f"{what}: {exc}")


def check_files(settings: NodeSettings) -> None:
    """Every key, certificate, anchor and policy file the node reads at start."""
    try:
        load_private_key(settings.auth_key)
        load_certificate(settings.auth_certificate)
    except CertsError as exc:
        raise _key_error("keys.auth_key/auth_certificate", exc) from exc
    try:
        TokenIssuer.from_key_file(settings.token_key, audience=str(settings.node_id))
    except (CertsError, ValueError) as exc:
        raise _key_error("keys.token_key", exc) from exc
    if settings.client_tls is not None:
        try:
            load_private_key(settings.client_tls.key)
            load_certificates(settings.client_tls.certificate)
        except CertsError as exc:
            raise _key_error("client_tls", exc) from exc
    for entry in settings.sign_keys:
        try:
            load_private_key(entry.key)
            load_certificates(entry.certificate)
        except CertsError as exc:
            raise _key_error(f"keys.sign {entry.member}", exc) from exc
    try:
        load_anchor(settings.anchor)
    except AnchorError as exc:
        raise StartupError("config.invalid", EXIT_CONFIG, f"anchor: {exc.message}") from exc
    if settings.policy_file is not None:
        try:
            load_policy_file(settings.policy_file)
        except PolicyFileError as exc:
            raise StartupError("config.invalid", EXIT_CONFIG, str(exc)) from exc
    for backend in settings.services:
        if backend.openapi is None:
            continue
        try:
            read_openapi_file(backend.openapi)
        except ServiceError as exc:
            raise StartupError(
                "config.invalid", EXIT_CONFIG, f"service {backend.service}: {exc.message}"
            ) from exc


def _bind(name: str, listen: ListenSettings) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise StartupError(
            "node.port_unavailable", EXIT_PORT, f"{name} port: cannot resolve {listen.host}: {exc}"
        ) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if listen.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise StartupError(
            "node.port_unavailable",
            EXIT_PORT,
            f"{name} port {listen.host}:{listen.port}: {reason}",
        ) from exc
    return sock


def bind_listeners(settings: NodeSettings) -> Listeners:
    """Bind the client, peer, management (and client TLS) ports; on any failure none
    stays bound."""
    ports = [("client", settings.client), ("peer", settings.peer),
             ("management", settings.management)]  # fmt: skip
    if settings.client_tls is not None:
        ports.append(("client TLS", settings.client_tls.listen))
    bound: list[socket.socket] = []
    try:
        for name, listen in ports:
            bound.append(_bind(name, listen))
    except StartupError:
        for sock in bound:
            sock.close()
        raise
    return Listeners(*bound)


async def check_database(url: str, *, timeout_s: float = DATABASE_TIMEOUT_S) -> None:
    """The database answers a query; for SQLite (where connecting creates the file),
    its directory exists and is writable."""
    if is_sqlite(url):
        path = Path(url.split("///", 1)[-1])
        directory = path.parent
        if str(path) != ":memory:" and not (
            directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)
        ):
            raise StartupError(
                "node.database_unavailable",
                EXIT_DATABASE,
                f"database: the directory {directory} does not exist or is not writable",
            )
        return
    engine = create_engine(url)
    try:
        async with asyncio.timeout(timeout_s):
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = "no answer in time" if isinstance(exc, TimeoutError) else _first_line(exc)
        raise StartupError(
            "node.database_unavailable", EXIT_DATABASE, f"database unreachable: {reason}"
        ) from exc
    finally:
        await engine.dispose()


def _first_line(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__ or exc
    text = str(getattr(exc, "orig", None) or cause or exc) or exc.__class__.__name__
    return text.splitlines()[0][:300]


async def preflight(settings: NodeSettings) -> Listeners:
    """Every check before the first write; the bound listeners on success."""
    check_files(settings)
    listeners = bind_listeners(settings)
    try:
        await check_database(settings.database_url)
    except StartupError:
        listeners.close()
        raise
    return listeners

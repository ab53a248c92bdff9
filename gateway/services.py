"""The services a node provides, in its database: added, changed, disabled, removed at runtime.

A service is X-Road's kind of thing: a service code of one of the node's
provider subsystems, a backend URL with its timeout and TLS settings, and
either an OpenAPI description (its operations are the service's endpoints,
which access rights can name; ``service_type`` OPENAPI) or none (a plain REST
service, ``service_type`` REST). The description is stored with the service,
fetched once from the file or URL it came from, so serving never reads a file.

Every change bumps ``node_services_version`` in its own transaction; each node
process serves from a :class:`ServiceSnapshot` and reloads it when that version
moves: at once in the process that made the change, within ``poll_s`` in the
others (:class:`ServiceState`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certs.identifiers import IdentifierError, ServiceId
from gateway.db import Base, read_only

__all__ = [
    "NGSI_LD_STORE",
    "SERVICES",
    "SERVICES_VERSION",
    "Service",
    "ServiceConflict",
    "ServiceError",
    "ServiceNotFound",
    "ServiceSnapshot",
    "ServiceState",
    "ServiceStore",
    "check_openapi",
    "openapi_endpoints",
    "parse_openapi",
    "read_openapi_file",
]

log = structlog.get_logger(__name__)

_VERSION_ROW = 1
_ID = 1300
_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
MAX_TIMEOUT_S = 3600.0
# An OpenAPI description bigger than this is a mistake, not a description.
MAX_OPENAPI_BYTES = 4 * 1024 * 1024

SERVICES = Table(
    "node_services",
    Base.metadata,
    Column("service", String(_ID), primary_key=True),
    Column("provider", String(_ID), nullable=False, index=True),
    Column("backend_url", Text, nullable=False),
    Column("timeout_s", Float, nullable=False),
    Column("openapi", Text, nullable=True),
    Column("openapi_source", Text, nullable=False),
    Column("path_parameters", Boolean, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("tls_verify", Boolean, nullable=False),
    Column("tls_ca_pem", Text, nullable=True),
    Column("updated_at", String(40), nullable=False),
)
SERVICES_VERSION = Table(
    "node_services_version",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)


class ServiceError(Exception):
    """A service definition the node refuses (the management API answers 400)."""

    code = "management.service_invalid"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServiceNotFound(ServiceError):
    code = "management.service_not_found"
    status = 404


class ServiceConflict(ServiceError):
    code = "management.service_exists"
    status = 409


def check_openapi(document: Any) -> dict[str, Any]:
    """An OpenAPI 3 description as JSON, or ServiceError saying why not."""
    if not isinstance(document, dict):
        raise ServiceError("the OpenAPI description must be a JSON object")
    version = document.get("openapi")
    if not (isinstance(version, str) and version.startswith("3.")):
        raise ServiceError(f"incompatible OpenAPI version {version!r}; 3.x expected")
    if not isinstance(document.get("paths", {}), dict):
        raise ServiceError("the OpenAPI description's paths must be an object")
    return document


def parse_openapi(data: bytes, source: str) -> dict[str, Any]:
    """An OpenAPI description from its bytes (JSON), size-capped and checked."""
    if len(data) > MAX_OPENAPI_BYTES:
        raise ServiceError(f"the OpenAPI description {source} is larger than 4 MiB")
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise ServiceError(f"the OpenAPI description {source} is not JSON: {exc}") from exc
    return check_openapi(document)


def read_openapi_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_OPENAPI_BYTES + 1)
    except OSError as exc:
        raise ServiceError(f"cannot read the OpenAPI description {path}: {exc.strerror}") from exc
    return parse_openapi(data, str(path))


def openapi_endpoints(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Its operations as X-Road endpoints (``/pet/{id}`` -> ``/pet/*``), as X-Road imports."""
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return []
    endpoints: list[tuple[str, str]] = []
    for template, item in paths.items():
        if not isinstance(template, str) or not template.startswith("/"):
            continue
        if not isinstance(item, dict):
            continue
        path = "/".join(
            "*" if part.startswith("{") and part.endswith("}") else part
            for part in template.split("/")
        )
        endpoints.extend((method.upper(), path) for method in _OPERATIONS if method in item)
    return endpoints


# The backend of an NGSI-LD service whose entities the provider keeps in its own
# node (published to the node's /ngsi-ld/v1/ API): the node answers it itself.
NGSI_LD_STORE = "ngsi-ld:store"


@dataclass(frozen=True)
class Service:
    """One service of this node, as the proxies serve it."""

    service: ServiceId
    url: str
    timeout_s: float = 30.0
    # The service's OpenAPI description (getOpenAPI, listMethods, the catalogue).
    openapi: Mapping[str, Any] | None = None
    # Where the description came from (a file name or URL), for operators.
    openapi_source: str = ""
    # The backend uses ";parameters" in path segments (matrix parameters). Off by
    # default: a ';' in the path is refused, since backends that cut parameters off
    # before routing would reach another path than the access right was checked on.
    path_parameters: bool = False
    # What the API catalogue shows when no OpenAPI document or declaration says it.
    title: str = ""
    description: str = ""
    enabled: bool = True
    # TLS towards an https:// backend: verify its certificate (against tls_ca_pem
    # when given, else the system's roots).
    tls_verify: bool = True
    tls_ca_pem: str | None = None
    _ssl: ssl.SSLContext | bool | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def serves_own_entities(self) -> bool:
        """An NGSI-LD service answered from this node's entity store (gateway/broker)."""
        return self.url == NGSI_LD_STORE

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")) and self.url != NGSI_LD_STORE:
            raise ServiceError(
                f"{self.service}: backend must be an http:// or https:// URL or {NGSI_LD_STORE}"
            )
        if not 0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise ServiceError(f"{self.service}: timeout_s must be in (0, {MAX_TIMEOUT_S:.0f}]")
        if self.openapi is not None:
            check_openapi(self.openapi)
        object.__setattr__(self, "url", self.url.rstrip("/"))
        object.__setattr__(self, "_ssl", self._make_ssl())

    def _make_ssl(self) -> ssl.SSLContext | bool | None:
        if not self.url.startswith("https://"):
            return None
        if not self.tls_verify:
            return False
        if self.tls_ca_pem is None:
            return None
        try:
            return ssl.create_default_context(cadata=self.tls_ca_pem)
        except (ssl.SSLError, ValueError) as exc:
            raise ServiceError(f"{self.service}: tls_ca_pem is not a PEM certificate") from exc

    @property
    def ssl(self) -> ssl.SSLContext | bool | None:
        """What aiohttp's ``ssl=`` takes for this backend (None: the default checks)."""
        return self._ssl

    @property
    def service_type(self) -> str:
        return "OPENAPI" if self.openapi is not None else "REST"

    def endpoints(self) -> list[tuple[str, str]]:
        return openapi_endpoints(self.openapi) if self.openapi is not None else []

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.service),
            "service_type": self.service_type,
            "backend": self.url,
            "timeout_s": self.timeout_s,
            "enabled": self.enabled,
            "path_parameters": self.path_parameters,
            "title": self.title,
            "description": self.description,
            "openapi_source": self.openapi_source or None,
            "endpoints": [{"method": m, "path": p} for m, p in self.endpoints()],
            "tls": {"verify": self.tls_verify, "ca_pem": self.tls_ca_pem},
        }


@dataclass(frozen=True)
class ServiceSnapshot:
    """Every service of the node at one version of the table."""

    version: int
    services: Mapping[ServiceId, Service] = field(default_factory=dict)

    def get(self, service: ServiceId) -> Service | None:
        return self.services.get(service)

    def all(self) -> tuple[Service, ...]:
        return tuple(self.services[key] for key in sorted(self.services))


def _service(row: Any) -> Service:
    return Service(
        service=ServiceId.parse(row.service),
        url=row.backend_url,
        timeout_s=float(row.timeout_s),
        openapi=json.loads(row.openapi) if row.openapi is not None else None,
        openapi_source=row.openapi_source,
        path_parameters=bool(row.path_parameters),
        title=row.title,
        description=row.description,
        enabled=bool(row.enabled),
        tls_verify=bool(row.tls_verify),
        tls_ca_pem=row.tls_ca_pem,
    )


def _values(service: Service, now: datetime) -> dict[str, Any]:
    return {
        "provider": str(service.service.subsystem),
        "backend_url": service.url,
        "timeout_s": service.timeout_s,
        "openapi": (
            json.dumps(service.openapi, separators=(",", ":"), ensure_ascii=False)
            if service.openapi is not None
            else None
        ),
        "openapi_source": service.openapi_source[:2048],
        "path_parameters": service.path_parameters,
        "title": service.title,
        "description": service.description,
        "enabled": service.enabled,
        "tls_verify": service.tls_verify,
        "tls_ca_pem": service.tls_ca_pem,
        "updated_at": now.isoformat(),
    }


class ServiceStore:
    """The node's services in its database (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = read_only(engine)

    async def version(self) -> int:
        async with self._reader.begin() as conn:
            return await _version(conn)

    async def snapshot(self) -> ServiceSnapshot:
        async with self._reader.begin() as conn:
            version = await _version(conn)
            rows = (await conn.execute(select(SERVICES))).all()
        services = {}
        for row in rows:
            try:
                service = _service(row)
            except (IdentifierError, ServiceError, ValueError) as exc:
                # One bad row must not take every other service down with it.
                log.error("service_row_unusable", service=row.service, error=str(exc))
                continue
            services[service.service] = service
        return ServiceSnapshot(version=version, services=services)

    async def get(self, service: ServiceId) -> Service:
        async with self._reader.begin() as conn:
            row = (
                await conn.execute(select(SERVICES).where(SERVICES.c.service == str(service)))
            ).first()
        if row is None:
            raise ServiceNotFound(f"{service} is not a service of this node")
        return _service(row)

    async def add(self, service: Service, *, now: datetime) -> Service:
        try:
            async with self._change() as conn:
                await conn.execute(
                    insert(SERVICES).values(service=str(service.service), **_values(service, now))
                )
        except IntegrityError as exc:
            raise ServiceConflict(f"{service.service} already exists; change it instead") from exc
        return service

    async def seed(
        self,
        services: tuple[Service, ...],
        *,
        now: datetime,
        marker: Callable[[AsyncConnection], Awaitable[None]],
    ) -> None:
        """Add ``services`` and run ``marker`` in one transaction (a node's first start)."""
        async with self._change() as conn:
            await marker(conn)
            for service in services:
                await conn.execute(
                    insert(SERVICES).values(service=str(service.service), **_values(service, now))
                )

    async def replace(self, service: Service, *, now: datetime) -> Service:
        async with self._change() as conn:
            changed = await conn.execute(
                update(SERVICES)
                .where(SERVICES.c.service == str(service.service))
                .values(**_values(service, now))
            )
            if changed.rowcount == 0:
                raise ServiceNotFound(f"{service.service} is not a service of this node")
        return service

    async def update(
        self, service: ServiceId, changes: Mapping[str, Any], *, now: datetime
    ) -> tuple[Service, Service]:
        """Change some of a service's settings; (before, after)."""
        before = await self.get(service)
        after = replace(before, **changes)
        await self.replace(after, now=now)
        return before, after

    async def remove(self, service: ServiceId) -> Service:
        before = await self.get(service)
        async with self._change() as conn:
            await conn.execute(delete(SERVICES).where(SERVICES.c.service == str(service)))
        return before

    @contextlib.asynccontextmanager
    async def _change(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.begin() as conn:
                yield conn
                bumped = await conn.execute(
                    update(SERVICES_VERSION)
                    .where(SERVICES_VERSION.c.id == _VERSION_ROW)
                    .values(version=SERVICES_VERSION.c.version + 1)
                )
                if bumped.rowcount == 0:
                    await conn.execute(insert(SERVICES_VERSION).values(id=_VERSION_ROW, version=1))
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise ServiceError(f"the services database failed: {exc.__class__.__name__}") from exc


async def _version(conn: AsyncConnection) -> int:
    row = (
        await conn.execute(
            select(SERVICES_VERSION.c.version).where(SERVICES_VERSION.c.id == _VERSION_ROW)
        )
    ).first()
    return int(row.version) if row is not None else 0


class ServiceState:
    """The snapshot one node process serves from, replaced when the database moves.

    ``on_change`` sees each new snapshot (the catalogue push publishes at once).
    """

    def __init__(
        self,
        store: ServiceStore,
        *,
        poll_s: float = 1.0,
        on_change: Callable[[ServiceSnapshot], None] | None = None,
    ) -> None:
        self.store = store
        self._poll_s = poll_s
        self._on_change = on_change
        self._snapshot = ServiceSnapshot(version=-1)
        self._lock = asyncio.Lock()

    @property
    def current(self) -> ServiceSnapshot:
        return self._snapshot

    def on_change(self, callback: Callable[[ServiceSnapshot], None]) -> None:
        self._on_change = callback

    async def reload(self) -> ServiceSnapshot:
        async with self._lock:
            snapshot = await self.store.snapshot()
            if snapshot.version != self._snapshot.version:
                self._snapshot = snapshot
                if self._on_change is not None:
                    self._on_change(snapshot)
            return self._snapshot

    async def run(self) -> None:
        """Poll the version until cancelled; a database error keeps the last snapshot."""
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                if await self.store.version() != self._snapshot.version:
                    await self.reload()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("services_reload_failed", error=exc.__class__.__name__)

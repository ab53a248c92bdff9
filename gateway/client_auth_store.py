"""Client authentication in the node's database: the one source of truth.

Per client subsystem: its connection type, the information systems' TLS
certificates registered for it (by SHA-256 fingerprint, with the PEM the
client TLS port trusts) and the ids of the client tokens issued for it. Every
change bumps ``client_auth_version`` in its own transaction; each node process
serves from a :class:`~gateway.client_auth.ClientAuthSnapshot` and reloads it
when that version moves (:class:`ClientAuthState`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from cryptography import x509
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certs.identifiers import SubsystemId
from certs.keys import certificate_pem, fingerprint
from gateway.client_auth import ClientAuthSnapshot, ConnectionType
from gateway.db import Base, read_only
from gateway.tokens import TokenClaims

__all__ = [
    "ClientAuthError",
    "ClientAuthNotFound",
    "ClientAuthState",
    "ClientAuthStore",
    "ClientSummary",
    "RegisteredCertificate",
    "TokenRecord",
]

log = structlog.get_logger(__name__)

_VERSION_ROW = 1
# Identifiers are four parts of up to 255 characters.
_ID_LENGTH = 1024


CONNECTIONS = Table(
    "client_connections",
    Base.metadata,
    Column("subsystem", String(_ID_LENGTH), primary_key=True),
    Column("connection_type", String(16), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
CERTIFICATES = Table(
    "client_certificates",
    Base.metadata,
    Column("subsystem", String(_ID_LENGTH), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("pem", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
)
TOKENS = Table(
    "client_tokens",
    Base.metadata,
    Column("token_id", String(64), primary_key=True),
    Column("subsystem", String(_ID_LENGTH), nullable=False, index=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)
VERSION = Table(
    "client_auth_version",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)


class ClientAuthError(Exception):
    """A change the store refuses; ``code`` is the management API's error type."""

    code = "client_auth.invalid"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientAuthNotFound(ClientAuthError):
    code = "client_auth.not_found"
    status = 404


@dataclass(frozen=True, slots=True)
class RegisteredCertificate:
    sha256: str
    subject: str
    not_after: datetime
    added_at: datetime


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClientSummary:
    subsystem: str
    connection_type: ConnectionType | None  # None: the node's default applies
    certificates: tuple[RegisteredCertificate, ...]
    tokens: tuple[TokenRecord, ...]


class ClientAuthStore:
    """Reads and changes the ``client_*`` tables of one node database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = read_only(engine)

    async def set_connection_type(
        self, client: SubsystemId, kind: ConnectionType, *, now: datetime
    ) -> None:
        table = CONNECTIONS
        async with self._change() as conn:
            done = await conn.execute(
                update(table)
                .where(table.c.subsystem == str(client))
                .values(connection_type=kind.value, updated_at=now)
            )
            if done.rowcount == 0:
                await conn.execute(
                    insert(table).values(
                        subsystem=str(client), connection_type=kind.value, updated_at=now
                    )
                )

    async def add_certificate(
        self, client: SubsystemId, certificate: x509.Certificate, *, now: datetime
    ) -> str:
        """Register ``certificate`` for ``client`` (idempotent); its SHA-256 fingerprint."""
        sha256 = fingerprint(certificate)
        table = CERTIFICATES
        async with self._change() as conn:
            existing = await conn.execute(
                select(table.c.sha256).where(
                    table.c.subsystem == str(client), table.c.sha256 == sha256
                )
            )
            if existing.first() is None:
                await conn.execute(
                    insert(table).values(
                        subsystem=str(client),
                        sha256=sha256,
                        pem=certificate_pem(certificate),
                        subject=certificate.subject.rfc4514_string()[:1024],
                        not_after=certificate.not_valid_after_utc,
                        added_at=now,
                    )
                )
        return sha256

    async def remove_certificate(self, client: SubsystemId, sha256: str) -> None:
        table = CERTIFICATES
        async with self._change() as conn:
            done = await conn.execute(
                delete(table).where(
                    table.c.subsystem == str(client), table.c.sha256 == sha256.lower()
                )
            )
        if done.rowcount == 0:
            raise ClientAuthNotFound(f"no certificate {sha256} is registered for {client}")

    async def record_token(
        self, client: SubsystemId, claims: TokenClaims, *, now: datetime
    ) -> None:
        if claims.subject != str(client):
            raise ClientAuthError("the token was issued for another client")
        async with self._change() as conn:
            await conn.execute(
                insert(TOKENS).values(
                    token_id=claims.token_id,
                    subsystem=str(client),
                    issued_at=now,
                    expires_at=claims.expires_at,
                    revoked_at=None,
                )
            )

    async def revoke_token(self, client: SubsystemId, token_id: str, *, now: datetime) -> None:
        table = TOKENS
        async with self._change() as conn:
            done = await conn.execute(
                update(table)
                .where(
                    table.c.token_id == token_id,
                    table.c.subsystem == str(client),
                    table.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        if done.rowcount == 0:
            raise ClientAuthNotFound(f"no unrevoked token {token_id} was issued for {client}")

    async def clients(self) -> list[ClientSummary]:
        """Every subsystem with a connection type, a certificate or a token."""
        async with self._read() as conn:
            kinds = (await conn.execute(select(CONNECTIONS))).all()
            certificates = (await conn.execute(select(CERTIFICATES))).all()
            tokens = (await conn.execute(select(TOKENS))).all()
        names = sorted(
            {row.subsystem for row in kinds}
            | {row.subsystem for row in certificates}
            | {row.subsystem for row in tokens}
        )
        by_kind = {row.subsystem: ConnectionType(row.connection_type) for row in kinds}
        return [
            ClientSummary(
                subsystem=name,
                connection_type=by_kind.get(name),
                certificates=tuple(
                    RegisteredCertificate(row.sha256, row.subject, row.not_after, row.added_at)
                    for row in certificates
                    if row.subsystem == name
                ),
                tokens=tuple(
                    TokenRecord(row.token_id, row.issued_at, row.expires_at, row.revoked_at)
                    for row in tokens
                    if row.subsystem == name
                ),
            )
            for name in names
        ]

    async def version(self) -> int:
        async with self._read() as conn:
            return await _version(conn)

    async def snapshot(self) -> ClientAuthSnapshot:
        """Everything the client port checks against, read in one transaction."""
        async with self._read() as conn:
            version = await _version(conn)
            kinds = (await conn.execute(select(CONNECTIONS))).all()
            certificates = (await conn.execute(select(CERTIFICATES))).all()
            token_table = TOKENS
            tokens = (
                await conn.execute(
                    select(token_table.c.token_id, token_table.c.subsystem).where(
                        token_table.c.revoked_at.is_(None)
                    )
                )
            ).all()
        owners: dict[str, set[str]] = {}
        pems: dict[str, str] = {}
        for row in certificates:
            owners.setdefault(row.sha256, set()).add(row.subsystem)
            pems[row.sha256] = row.pem
        return ClientAuthSnapshot(
            version=version,
            connection_types={row.subsystem: ConnectionType(row.connection_type) for row in kinds},
            certificates={sha: frozenset(names) for sha, names in owners.items()},
            certificate_pems=tuple(pems[sha] for sha in sorted(pems)),
            tokens={row.token_id: row.subsystem for row in tokens},
        )

    @contextlib.asynccontextmanager
    async def _change(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.begin() as conn:
            yield conn
            table = VERSION
            bumped = await conn.execute(
                update(table)
                .where(table.c.id == _VERSION_ROW)
                .values(version=table.c.version + 1)
            )
            if bumped.rowcount == 0:
                await conn.execute(insert(table).values(id=_VERSION_ROW, version=1))

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.begin() as conn:
            yield conn


async def _version(conn: AsyncConnection) -> int:
    table = VERSION
    row = (await conn.execute(select(table.c.version).where(table.c.id == _VERSION_ROW))).first()
    return int(row.version) if row is not None else 0


class ClientAuthState:
    """The snapshot one node process serves from, replaced when the database moves.

    A change made through this process's store applies at once
    (:meth:`reload`); changes by other processes of the node within
    ``poll_s`` (:meth:`run`). ``on_change`` sees each new snapshot (the client
    TLS port adds newly registered certificates to its trust store).
    """

    def __init__(
        self,
        store: ClientAuthStore,
        *,
        poll_s: float = 1.0,
        on_change: Callable[[ClientAuthSnapshot], None] | None = None,
    ) -> None:
        self.store = store
        self._poll_s = poll_s
        self._on_change = on_change
        self._snapshot = ClientAuthSnapshot(version=-1)
        self._lock = asyncio.Lock()

    @property
    def current(self) -> ClientAuthSnapshot:
        return self._snapshot

    async def reload(self) -> ClientAuthSnapshot:
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
                log.warning("client_auth_reload_failed", error=exc.__class__.__name__)

"""The registry service: administers the federation's data and publishes signed versions of it.

Every method runs in its own database transaction, so several registry processes may
share one PostgreSQL database. References are checked explicitly to give clear errors
(``NotFound``, ``AlreadyExists``, ``ValidationError``); a constraint violation that
slips through a race is translated into ``AlreadyExists`` as well.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cryptography import x509
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from certs.errors import CertsError
from certs.identifiers import GlobalGroupId, MemberId, NodeId, SubsystemId
from certs.jws import canonical_json
from certs.validation import check_identity, verify_certificate
from member_registry._certificates import (
    certificate_from_pem,
    certificate_to_pem,
    fingerprint,
    is_fingerprint,
)
from member_registry._strict_json import FormatError, read_url
from member_registry.errors import AlreadyExists, NotFound, RegistryError, ValidationError
from member_registry.globalconf import (
    GlobalConf,
    GlobalGroup,
    Member,
    Node,
    Settings,
    TrustedCa,
    Tsa,
)
from member_registry.models import (
    GlobalGroupMemberRow,
    GlobalGroupRow,
    MemberRow,
    NodeAuthCertificateRow,
    NodeRow,
    NodeSubsystemRow,
    PublishedConfRow,
    SettingRow,
    SubsystemRow,
    TrustedCaRow,
    TsaRow,
    metadata,
)
from member_registry.signing import SigningKey, sign_global_conf

__all__ = ["PublishedVersion", "RegistryService"]

_Row = TypeVar("_Row")
_MAX_PORT = 65535
_MAX_TEXT = 1000
_PUBLISH_ATTEMPTS = 3


@dataclass(frozen=True)
class PublishedVersion:
    """A signed configuration version as stored by the registry."""

    version: int
    generated_at: datetime
    expires_at: datetime


class RegistryService:
    """The member registry's data and the global configuration published from it."""

    def __init__(
        self,
        engine: AsyncEngine,
        signing_key: SigningKey,
        signing_certificate: x509.Certificate,
        instance: str,
        settings: Settings | None = None,
    ) -> None:
        if signing_certificate.public_key() != signing_key.public_key():
            raise RegistryError("the signing key does not match the verification certificate")
        if not instance:
            raise RegistryError("the instance must not be empty")
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._signing_key = signing_key
        self._signing_certificate = signing_certificate
        self._instance = instance
        self._default_settings = settings or Settings()
        # Serialises current() within this process, so concurrent downloads that find the
        # latest version stale publish one new version, not one each.
        self._refresh_lock = asyncio.Lock()

    @property
    def instance(self) -> str:
        return self._instance

    @property
    def signing_certificate(self) -> x509.Certificate:
        return self._signing_certificate

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def create_schema(self) -> None:
        async with self._translated(), self._engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    # -- members and subsystems ---------------------------------------------------------

    async def add_member(self, member_id: MemberId, name: str) -> None:
        self._check_instance(member_id.instance, f"member {member_id}")
        name = _text(name, "member name", allow_empty=False)
        async with self._transaction() as session:
            await _absent(session, MemberRow, str(member_id), f"member {member_id}")
            session.add(MemberRow(id=str(member_id), name=name))

    async def add_subsystem(self, subsystem_id: SubsystemId, name: str | None = None) -> None:
        if name is not None:
            name = _text(name, "subsystem name", allow_empty=False)
        async with self._transaction() as session:
            await _existing(session, MemberRow, str(subsystem_id.member),
                            f"member {subsystem_id.member}")
            await _absent(session, SubsystemRow, str(subsystem_id), f"subsystem {subsystem_id}")
            session.add(SubsystemRow(id=str(subsystem_id), member_id=str(subsystem_id.member),
                                     name=name))

    # -- nodes --------------------------------------------------------------------------

    async def add_node(self, node_id: NodeId, address: str, peer_port: int) -> None:
        address = _address(address)
        if isinstance(peer_port, bool) or not isinstance(peer_port, int) or not (
            0 < peer_port <= _MAX_PORT
        ):
            raise ValidationError("peer port must be an integer from 1 to 65535")
        async with self._transaction() as session:
            await _existing(session, MemberRow, str(node_id.member), f"member {node_id.member}")
            await _absent(session, NodeRow, str(node_id), f"node {node_id}")
            session.add(NodeRow(id=str(node_id), member_id=str(node_id.member), address=address,
                                peer_port=peer_port))

    async def add_node_auth_certificate(
        self, node_id: NodeId, certificate: x509.Certificate, *, now: datetime | None = None
    ) -> str:
        """Register an auth certificate of ``node_id``; returns its SHA-256 fingerprint.

        The certificate must be bound to ``node_id`` (auth profile), so one node's key can
        never be listed for another. Given ``now``, it must also chain to a trusted CA of
        the registry and be valid at ``now`` (the API and the commands always pass it).
        """
        try:
            check_identity(certificate, "auth", node_id)
        except CertsError as exc:
            raise ValidationError(f"not an auth certificate of {node_id}: {exc}") from exc
        sha256 = fingerprint(certificate)
        async with self._transaction() as session:
            await _existing(session, NodeRow, str(node_id), f"node {node_id}")
            if now is not None:
                roots = [ca.certificate for ca in await _trusted_cas(session)]
                try:
                    verify_certificate(certificate, trust_roots=roots, now=now, profile="auth")
                except CertsError as exc:
                    raise ValidationError(f"the auth certificate is not acceptable: {exc}") from exc
            holder = await session.get(NodeAuthCertificateRow, sha256)
            if holder is not None:
                raise AlreadyExists(
                    f"auth certificate {sha256} is already registered for node {holder.node_id}"
                )
            session.add(NodeAuthCertificateRow(fingerprint=sha256, node_id=str(node_id),
                                               pem=certificate_to_pem(certificate)))
        return sha256

    async def remove_node_auth_certificate(self, node_id: NodeId, sha256: str) -> None:
        sha256 = sha256.lower()
        if not is_fingerprint(sha256):
            raise ValidationError("a fingerprint is 64 hex digits (SHA-256)")
        async with self._transaction() as session:
            row = await session.get(NodeAuthCertificateRow, sha256)
            if row is None or row.node_id != str(node_id):
                raise NotFound(f"node {node_id} has no auth certificate {sha256}")
            await session.delete(row)

    async def add_hosted_subsystem(self, node_id: NodeId, subsystem_id: SubsystemId) -> None:
        async with self._transaction() as session:
            await _existing(session, NodeRow, str(node_id), f"node {node_id}")
            await _existing(session, SubsystemRow, str(subsystem_id), f"subsystem {subsystem_id}")
            await _absent(session, NodeSubsystemRow, (str(node_id), str(subsystem_id)),
                          f"subsystem {subsystem_id} on node {node_id}")
            session.add(NodeSubsystemRow(node_id=str(node_id), subsystem_id=str(subsystem_id)))

    # -- global groups ------------------------------------------------------------------

    async def add_global_group(self, group_id: GlobalGroupId, description: str) -> None:
        self._check_instance(group_id.instance, f"global group {group_id}")
        description = _text(description, "group description", allow_empty=True)
        async with self._transaction() as session:
            await _absent(session, GlobalGroupRow, str(group_id), f"global group {group_id}")
            session.add(GlobalGroupRow(id=str(group_id), description=description))

    async def add_group_member(self, group_id: GlobalGroupId, subsystem_id: SubsystemId) -> None:
        async with self._transaction() as session:
            await _existing(session, GlobalGroupRow, str(group_id), f"global group {group_id}")
            await _existing(session, SubsystemRow, str(subsystem_id), f"subsystem {subsystem_id}")
            await _absent(session, GlobalGroupMemberRow, (str(group_id), str(subsystem_id)),
                          f"subsystem {subsystem_id} in global group {group_id}")
            session.add(GlobalGroupMemberRow(group_id=str(group_id),
                                             subsystem_id=str(subsystem_id)))

    # -- trust services -----------------------------------------------------------------

    async def add_trusted_ca(
        self, certificate: x509.Certificate, ocsp_urls: Sequence[str] = ()
    ) -> str:
        """Trust a CA certificate (it must be a CA); returns its SHA-256 fingerprint."""
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound as exc:
            raise ValidationError("a trusted CA certificate needs basic constraints") from exc
        if not constraints.value.ca:
            raise ValidationError("the certificate is not a CA certificate")
        urls = [_url(url, "OCSP URL") for url in ocsp_urls]
        sha256 = fingerprint(certificate)
        async with self._transaction() as session:
            await _absent(session, TrustedCaRow, sha256, f"trusted CA {sha256}")
            session.add(TrustedCaRow(fingerprint=sha256, pem=certificate_to_pem(certificate),
                                     ocsp_urls=urls))
        return sha256

    async def add_tsa(self, name: str, url: str, certificate: x509.Certificate) -> None:
        name = _text(name, "TSA name", allow_empty=False)
        url = _url(url, "TSA URL")
        async with self._transaction() as session:
            await _absent(session, TsaRow, name, f"TSA {name}")
            session.add(TsaRow(name=name, url=url, pem=certificate_to_pem(certificate)))

    # -- settings -----------------------------------------------------------------------

    async def update_settings(self, settings: Settings) -> None:
        """Store ``settings``; they override the defaults given at construction."""
        async with self._transaction() as session:
            await session.execute(delete(SettingRow))
            for item in fields(Settings):
                session.add(SettingRow(name=item.name, value=getattr(settings, item.name)))

    async def get_settings(self) -> Settings:
        async with self._session() as session:
            return await self._settings(session)

    # -- listings -----------------------------------------------------------------------

    async def list_members(self) -> tuple[Member, ...]:
        async with self._session() as session:
            return await _members(session)

    async def list_subsystems(self) -> tuple[SubsystemId, ...]:
        async with self._session() as session:
            rows = await session.scalars(select(SubsystemRow.id).order_by(SubsystemRow.id))
            return tuple(SubsystemId.parse(row) for row in rows)

    async def list_nodes(self) -> tuple[Node, ...]:
        async with self._session() as session:
            return await _nodes(session)

    async def list_global_groups(self) -> tuple[GlobalGroup, ...]:
        async with self._session() as session:
            return await _groups(session)

    async def list_trusted_cas(self) -> tuple[TrustedCa, ...]:
        async with self._session() as session:
            return await _trusted_cas(session)

    async def list_tsas(self) -> tuple[Tsa, ...]:
        async with self._session() as session:
            return await _tsas(session)

    async def list_published(self) -> tuple[PublishedVersion, ...]:
        async with self._session() as session:
            rows = await session.scalars(
                select(PublishedConfRow).order_by(PublishedConfRow.version))
            return tuple(PublishedVersion(r.version, r.generated_at, r.expires_at) for r in rows)

    # -- the global configuration -------------------------------------------------------

    async def build_global_conf(self, now: datetime) -> GlobalConf:
        """The configuration the next ``publish(now)`` would sign (version = latest + 1)."""
        async with self._session() as session:
            latest = await session.scalar(select(func.max(PublishedConfRow.version)))
            return await self._build(session, now, (latest or 0) + 1)

    async def publish(self, now: datetime) -> str:
        """Sign and store a new version, strictly greater than every stored one."""
        token, _ = await self.publish_conf(now)
        return token

    async def publish_conf(self, now: datetime) -> tuple[str, GlobalConf]:
        """Like ``publish``, also returning the configuration that was signed."""
        for _ in range(_PUBLISH_ATTEMPTS):
            try:
                async with self._sessions() as session, session.begin():
                    latest = await session.scalar(select(func.max(PublishedConfRow.version)))
                    conf = await self._build(session, now, (latest or 0) + 1)
                    token = sign_global_conf(conf, self._signing_key, self._signing_certificate)
                    session.add(PublishedConfRow(
                        version=conf.version, generated_at=conf.generated_at,
                        expires_at=conf.expires_at, content_sha256=_content_digest(conf),
                        jws=token))
                return token, conf
            except IntegrityError:
                continue  # another process took this version number: build the next one
            except SQLAlchemyError as exc:
                raise RegistryError(f"database error: {type(exc).__name__}") from exc
        raise RegistryError("could not publish a new version: too many concurrent publishers")

    async def current(self, now: datetime) -> str:
        """The latest signed version, publishing a new one if the data changed since or
        if less than half of its validity is left."""
        async with self._refresh_lock:
            return await self._current(now)

    async def _current(self, now: datetime) -> str:
        async with self._session() as session:
            latest = await session.scalar(
                select(PublishedConfRow).order_by(PublishedConfRow.version.desc()).limit(1))
            if latest is not None:
                conf = await self._build(session, now, latest.version)
                fresh = latest.expires_at - now >= (latest.expires_at - latest.generated_at) / 2
                if fresh and latest.content_sha256 == _content_digest(conf):
                    return latest.jws
        return await self.publish(now)

    # -- internals ----------------------------------------------------------------------

    async def _build(self, session: AsyncSession, now: datetime, version: int) -> GlobalConf:
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        settings = await self._settings(session)
        # Whole seconds keep the published times in the documented form.
        generated_at = now.replace(microsecond=0)
        return GlobalConf(
            instance=self._instance,
            version=version,
            generated_at=generated_at,
            expires_at=generated_at + timedelta(seconds=settings.validity_s),
            settings=settings,
            trusted_cas=await _trusted_cas(session),
            tsas=await _tsas(session),
            members=await _members(session),
            nodes=await _nodes(session),
            global_groups=await _groups(session),
        )

    async def _settings(self, session: AsyncSession) -> Settings:
        rows = await session.scalars(select(SettingRow))
        overrides = {row.name: row.value for row in rows}
        values = {item.name: overrides.get(item.name, getattr(self._default_settings, item.name))
                  for item in fields(Settings)}
        return Settings(**values)

    def _check_instance(self, instance: str, what: str) -> None:
        if instance != self._instance:
            raise ValidationError(f"{what} is not in instance {self._instance}")

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        async with self._translated(), self._sessions() as session:
            yield session

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._translated(), self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        try:
            yield
        except IntegrityError as exc:
            # A concurrent writer won a race that the explicit checks could not see.
            raise AlreadyExists("the change conflicts with the registry's current data") from exc
        except SQLAlchemyError as exc:
            raise RegistryError(f"database error: {type(exc).__name__}") from exc


def _content_digest(conf: GlobalConf) -> str:
    """SHA-256 of what a configuration says, leaving out its version and times."""
    document: dict[str, Any] = conf.to_json_dict()
    for key in ("version", "generated_at", "expires_at"):
        del document[key]
    return hashlib.sha256(canonical_json(document)).hexdigest()


async def _existing(session: AsyncSession, row_type: type[_Row], key: Any, what: str) -> _Row:
    row = await session.get(row_type, key)
    if row is None:
        raise NotFound(f"{what} does not exist")
    return row


async def _absent(session: AsyncSession, row_type: type[Any], key: Any, what: str) -> None:
    if await session.get(row_type, key) is not None:
        raise AlreadyExists(f"{what} already exists")


def _text(value: str, what: str, *, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string")
    value = value.strip()
    if not value and not allow_empty:
        raise ValidationError(f"{what} must not be empty")
    if len(value) > _MAX_TEXT or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValidationError(f"{what} is too long or contains control characters")
    return value


def _address(value: str) -> str:
    if (not isinstance(value, str) or not value or len(value) > 255
            or any(c.isspace() or c in "/@?#" for c in value)):
        raise ValidationError("address must be a host name or IP address")
    return value


def _url(value: str, what: str) -> str:
    try:
        return read_url(value, what)
    except FormatError as exc:
        raise ValidationError(str(exc)) from exc


async def _members(session: AsyncSession) -> tuple[Member, ...]:
    subsystems: dict[str, list[SubsystemId]] = {}
    names: dict[str, dict[SubsystemId, str]] = {}
    for row in await session.scalars(select(SubsystemRow).order_by(SubsystemRow.id)):
        subsystem = SubsystemId.parse(row.id)
        subsystems.setdefault(row.member_id, []).append(subsystem)
        if row.name is not None:
            names.setdefault(row.member_id, {})[subsystem] = row.name
    rows = await session.scalars(select(MemberRow).order_by(MemberRow.id))
    return tuple(Member(MemberId.parse(r.id), r.name, tuple(subsystems.get(r.id, ())),
                        names.get(r.id, {}))
                 for r in rows)


async def _nodes(session: AsyncSession) -> tuple[Node, ...]:
    certificates: dict[str, list[str]] = {}
    for cert in await session.scalars(
            select(NodeAuthCertificateRow).order_by(NodeAuthCertificateRow.fingerprint)):
        certificates.setdefault(cert.node_id, []).append(cert.fingerprint)
    hosted: dict[str, list[SubsystemId]] = {}
    for link in await session.scalars(
            select(NodeSubsystemRow).order_by(NodeSubsystemRow.subsystem_id)):
        hosted.setdefault(link.node_id, []).append(SubsystemId.parse(link.subsystem_id))
    rows = await session.scalars(select(NodeRow).order_by(NodeRow.id))
    return tuple(
        Node(NodeId.parse(r.id), r.address, r.peer_port, tuple(certificates.get(r.id, ())),
             tuple(hosted.get(r.id, ())))
        for r in rows
    )


async def _groups(session: AsyncSession) -> tuple[GlobalGroup, ...]:
    members: dict[str, list[SubsystemId]] = {}
    for link in await session.scalars(
            select(GlobalGroupMemberRow).order_by(GlobalGroupMemberRow.subsystem_id)):
        members.setdefault(link.group_id, []).append(SubsystemId.parse(link.subsystem_id))
    rows = await session.scalars(select(GlobalGroupRow).order_by(GlobalGroupRow.id))
    return tuple(GlobalGroup(GlobalGroupId.parse(r.id), r.description,
                             tuple(members.get(r.id, ()))) for r in rows)


async def _trusted_cas(session: AsyncSession) -> tuple[TrustedCa, ...]:
    rows = await session.scalars(select(TrustedCaRow).order_by(TrustedCaRow.fingerprint))
    return tuple(TrustedCa(certificate_from_pem(r.pem), tuple(r.ocsp_urls)) for r in rows)


async def _tsas(session: AsyncSession) -> tuple[Tsa, ...]:
    rows = await session.scalars(select(TsaRow).order_by(TsaRow.name))
    return tuple(Tsa(r.name, r.url, certificate_from_pem(r.pem)) for r in rows)

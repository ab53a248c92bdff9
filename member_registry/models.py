"""Database tables of the member registry (SQLAlchemy 2 declarative, own metadata).

Identifiers are stored as their canonical strings and parsed again when read; every
table name starts with ``registry_`` so the registry can share a database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, MetaData, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "GlobalGroupMemberRow",
    "GlobalGroupRow",
    "MemberRow",
    "NodeAuthCertificateRow",
    "NodeRow",
    "NodeSubsystemRow",
    "PublishedConfRow",
    "RegistrationRow",
    "SettingRow",
    "SubsystemRow",
    "TrustedCaRow",
    "TsaRow",
    "metadata",
]

# Five parts of at most 255 characters and four separators (DESIGN §2).
_ID = String(1279)
_FINGERPRINT = String(64)

metadata = MetaData(naming_convention={
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
})


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("refusing to store a naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = metadata


class MemberRow(Base):
    __tablename__ = "registry_members"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    name: Mapped[str] = mapped_column(Text)


class SubsystemRow(Base):
    __tablename__ = "registry_subsystems"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    member_id: Mapped[str] = mapped_column(_ID, ForeignKey(MemberRow.id), index=True)
    # Optional, as in X-Road (listClients' subsystem_name is left out when unset).
    name: Mapped[str | None] = mapped_column(Text, nullable=True)


class NodeRow(Base):
    __tablename__ = "registry_nodes"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    member_id: Mapped[str] = mapped_column(_ID, ForeignKey(MemberRow.id), index=True)
    address: Mapped[str] = mapped_column(String(255))
    peer_port: Mapped[int] = mapped_column(Integer)


class NodeAuthCertificateRow(Base):
    """A node's TLS auth certificate; the fingerprint is unique across all nodes."""

    __tablename__ = "registry_node_auth_certificates"

    fingerprint: Mapped[str] = mapped_column(_FINGERPRINT, primary_key=True)
    node_id: Mapped[str] = mapped_column(_ID, ForeignKey(NodeRow.id), index=True)
    pem: Mapped[str] = mapped_column(Text)


class NodeSubsystemRow(Base):
    __tablename__ = "registry_node_subsystems"

    node_id: Mapped[str] = mapped_column(_ID, ForeignKey(NodeRow.id), primary_key=True)
    subsystem_id: Mapped[str] = mapped_column(
        _ID, ForeignKey(SubsystemRow.id), primary_key=True
    )


class GlobalGroupRow(Base):
    __tablename__ = "registry_global_groups"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    description: Mapped[str] = mapped_column(Text)


class GlobalGroupMemberRow(Base):
    __tablename__ = "registry_global_group_members"

    group_id: Mapped[str] = mapped_column(_ID, ForeignKey(GlobalGroupRow.id), primary_key=True)
    subsystem_id: Mapped[str] = mapped_column(
        _ID, ForeignKey(SubsystemRow.id), primary_key=True
    )


class TrustedCaRow(Base):
    __tablename__ = "registry_trusted_cas"

    fingerprint: Mapped[str] = mapped_column(_FINGERPRINT, primary_key=True)
    pem: Mapped[str] = mapped_column(Text)
    ocsp_urls: Mapped[list[str]] = mapped_column(JSON)


class TsaRow(Base):
    __tablename__ = "registry_tsas"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    pem: Mapped[str] = mapped_column(Text)


class SettingRow(Base):
    """An override of one ``Settings`` field; absent rows fall back to the service's defaults."""

    __tablename__ = "registry_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class PublishedConfRow(Base):
    """A signed configuration version, kept so versions only ever increase."""

    __tablename__ = "registry_published_confs"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # SHA-256 of the content without version and times: tells whether data changed since.
    content_sha256: Mapped[str] = mapped_column(_FINGERPRINT)
    jws: Mapped[str] = mapped_column(Text)


class RegistrationRow(Base):
    """An auth-certificate registration request (``member_registry.registration``).

    The two signatures are kept as received, so an approval re-verifies exactly what the
    node signed; the nonce is unique, so a request cannot be submitted twice.
    """

    __tablename__ = "registry_registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    node_id: Mapped[str] = mapped_column(_ID, index=True)
    auth_fingerprint: Mapped[str] = mapped_column(_FINGERPRINT)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    proof_of_possession: Mapped[str] = mapped_column(Text)
    member_consent: Mapped[str] = mapped_column(Text)

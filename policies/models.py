"""Database tables of the policy library (SQLAlchemy Core, own MetaData, ``policy_``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "access_rights",
    "consents",
    "fhir_codes",
    "local_group_members",
    "local_groups",
    "metadata",
    "policy_version",
    "purpose_declarations",
    "service_declarations",
]

_ID = 1300  # long enough for any identifier (5 parts of up to 255 characters)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every backend.

    SQLite keeps no offset, so values are stored as naive UTC there and compared as
    strings in one format; PostgreSQL keeps ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("datetimes stored by policies must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

access_rights = Table(
    "policy_access_rights",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("service", String(_ID), nullable=False),
    Column("provider", String(_ID), nullable=False),
    Column("grantee", String(_ID + 16), nullable=False),
    Column("method", String(20), nullable=False),
    Column("path", String(1024), nullable=False),
    Column("granted_at", UTCDateTime(), nullable=True),
    UniqueConstraint("service", "grantee", "method", "path", name="uq_policy_access_right"),
    Index("ix_policy_access_rights_service", "service"),
)

local_groups = Table(
    "policy_local_groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(_ID), nullable=False),
    Column("code", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    UniqueConstraint("provider", "code", name="uq_policy_local_group"),
)

local_group_members = Table(
    "policy_local_group_members",
    metadata,
    Column(
        "group_id",
        Integer,
        ForeignKey("policy_local_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("member", String(_ID), primary_key=True),
)

service_declarations = Table(
    "policy_service_declarations",
    metadata,
    Column("service", String(_ID), primary_key=True),
    Column("provider", String(_ID), nullable=False, index=True),
    Column("media_types", JSON, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("public_fields", JSON, nullable=False),
    Column("consent_governed", Boolean, nullable=False),
    Column("subject_kind", String(10), nullable=False),
    Column("subject_name", String(1024), nullable=False),
    Column("description", Text, nullable=False),
    # Where the data names its subject, types without personal data, headers passed on.
    Column("subject_fields", JSON, nullable=False, server_default=text("'[]'")),
    Column("impersonal", JSON, nullable=False, server_default=text("'[]'")),
    Column("response_headers", JSON, nullable=False, server_default=text("'[]'")),
)

purpose_declarations = Table(
    "policy_purpose_declarations",
    metadata,
    Column("consumer", String(_ID), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("text", Text, nullable=False),
)

consents = Table(
    "policy_consents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subject", String(255), nullable=False),
    Column("consumer", String(_ID), nullable=False),
    Column("service", String(_ID), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("valid_from", UTCDateTime(), nullable=False),
    Column("valid_until", UTCDateTime(), nullable=True),
    Column("granted_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    # A rule: permit or deny, how deeply nested, and what it holds for (policies.consent).
    Column("decision", String(8), nullable=False, server_default="permit"),
    Column("depth", Integer, nullable=False, server_default="0"),
    Column("resource_types", JSON, nullable=False, server_default=text("'[]'")),
    Column("resources", JSON, nullable=False, server_default=text("'[]'")),
    Column("labels", JSON, nullable=False, server_default=text("'[]'")),
    Column("data_from", UTCDateTime(), nullable=True),
    Column("data_until", UTCDateTime(), nullable=True),
    Column("actor", String(255), nullable=True),
    Column("origin", String(255), nullable=True),
    Column("provision", String(64), nullable=True),
    # The per-request lookup: subject + service + purpose, then consumer.
    Index("ix_policy_consents_lookup", "subject", "service", "purpose", "consumer"),
    Index("ix_policy_consents_service", "service"),
)

# The operator's table from FHIR to this node: kind "purpose" maps "system|code" of a
# purpose of use onto a purpose code (break_glass: the node honours it against a deny);
# kind "actor" maps a FHIR reference onto a consumer ("*" any, "self" this node).
fhir_codes = Table(
    "policy_fhir_codes",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("code", String(512), primary_key=True),
    Column("target", String(_ID), nullable=False),
    Column("break_glass", Boolean, nullable=False, server_default=text("false")),
)

# One row (id 1): bumped in the transaction of every change to access rights,
# local groups, service or purpose declarations, so a node's cached copy of
# them is checked with one primary-key SELECT per request (consents are not cached).
policy_version = Table(
    "policy_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

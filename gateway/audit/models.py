"""Audit tables: one append-only row per exchange or refusal, and each chain's head."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base

__all__ = ["HASHED_FIELDS", "AuditEntry", "AuditRow", "ChainHead"]


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("node_id", "seq", name="uq_audit_node_seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(1100))
    seq: Mapped[int] = mapped_column(BigInteger)
    logged_at: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str] = mapped_column(String(255), index=True)
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    client: Mapped[str | None] = mapped_column(String(1100), index=True)
    service: Mapped[str | None] = mapped_column(String(1400), index=True)
    method: Mapped[str | None] = mapped_column(String(16))
    path: Mapped[str | None] = mapped_column(Text)
    peer_node: Mapped[str | None] = mapped_column(String(1100))
    user_id: Mapped[str | None] = mapped_column(String(1024))
    purpose: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(1024), index=True)
    request_hash: Mapped[str | None] = mapped_column(String(100))
    request_body_sha256: Mapped[str | None] = mapped_column(String(64))
    request_signature: Mapped[str | None] = mapped_column(Text)
    response_body_sha256: Mapped[str | None] = mapped_column(String(64))
    response_signature: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(128))
    consent: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class ChainHead(Base):
    """The last row of each node's chain; locked while a batch is appended."""

    __tablename__ = "audit_chain_head"

    node_id: Mapped[str] = mapped_column(String(1100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))


# Every column that the entry hash covers, in the row's own terms.
HASHED_FIELDS = (
    "node_id",
    "seq",
    "logged_at",
    "role",
    "message_id",
    "request_id",
    "client",
    "service",
    "method",
    "path",
    "peer_node",
    "user_id",
    "purpose",
    "subject",
    "request_hash",
    "request_body_sha256",
    "request_signature",
    "response_body_sha256",
    "response_signature",
    "status",
    "error_code",
    "consent",
    "prev_hash",
)


@dataclass(slots=True)
class AuditEntry:
    """What an exchange stage knows about itself; the writer adds seq and hashes."""

    role: str
    message_id: str
    logged_at: datetime
    request_id: str | None = None
    client: str | None = None
    service: str | None = None
    method: str | None = None
    path: str | None = None
    peer_node: str | None = None
    user_id: str | None = None
    purpose: str | None = None
    subject: str | None = None
    request_hash: str | None = None
    request_body_sha256: str | None = None
    request_signature: str | None = None
    response_body_sha256: str | None = None
    response_signature: str | None = None
    status: int | None = None
    error_code: str | None = None
    consent: dict[str, Any] | None = field(default=None)

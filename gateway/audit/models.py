"""Audit tables: one append-only row per exchange or refusal, and each chain's head."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base

__all__ = [
    "HASHED_FIELDS",
    "ArchiveRecord",
    "ArchivedLeaf",
    "AuditEntry",
    "AuditRow",
    "ChainHead",
    "CheckpointLease",
    "CheckpointRow",
    "EncryptedBody",
    "LoggedBody",
    "OperationalRecord",
    "Reservation",
    "RowVisibility",
    "SubjectKey",
]

_Id = BigInteger().with_variant(Integer, "sqlite")


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
    # The row's hashing rule (gateway/audit/hashing.py); NULL for rows written before
    # rows carried one (rule 1), and itself hashed from rule 2 on.
    format: Mapped[int | None] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(64))


class ChainHead(Base):
    """The last row of each node's chain; locked while a batch is appended."""

    __tablename__ = "audit_chain_head"

    node_id: Mapped[str] = mapped_column(String(1100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))


class Reservation(Base):
    """An exchange about to be relayed, committed before anything leaves the node.

    ``entry`` is the row as known before relaying (JSON). Writing the exchange's
    row deletes its reservation in the same transaction; one left behind (the
    process died mid-exchange) becomes a row with ``audit.outcome_unknown``.
    """

    __tablename__ = "audit_reservation"

    node_id: Mapped[str] = mapped_column(String(1100), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reserved_at: Mapped[str] = mapped_column(String(40), index=True)
    entry: Mapped[str] = mapped_column(Text)


class CheckpointRow(Base):
    """A signed checkpoint: the Merkle root over the first ``tree_size`` rows.

    ``signed`` is the compact JWS the node signed (its payload is what counts;
    the other columns are copies for queries). ``timestamp_token`` is the RFC
    3161 token over SHA-256 of ``signed``; ``cosignature`` the registry's.
    """

    __tablename__ = "audit_checkpoint"
    __table_args__ = (UniqueConstraint("node_id", "tree_size", name="uq_audit_checkpoint_size"),)

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(1100), index=True)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(40))
    signed: Mapped[str] = mapped_column(Text)
    timestamp_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    cosignature: Mapped[str | None] = mapped_column(Text)


class CheckpointLease(Base):
    """Which process of a node may checkpoint now (one at a time), and until when.

    ``expires_at`` bounds a round, so a process that dies holding the lease
    blocks the others for one lease length at most; empty once released.
    """

    __tablename__ = "audit_checkpoint_lease"

    node_id: Mapped[str] = mapped_column(String(1100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[str] = mapped_column(String(40))


class RowVisibility(Base):
    """A restriction on a row, kept beside the chain so it can be set after the fact."""

    __tablename__ = "audit_visibility"

    node_id: Mapped[str] = mapped_column(String(1100), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    hidden_from_subject_until: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)


class EncryptedBody(Base):
    """A logged body, encrypted, outside the chain (the chain keeps only its digest).

    ``message_id`` holds the exchange's request id (``X-Road-Request-Id``), which,
    unlike a client-chosen message id, is unique per exchange; ``kind`` is
    ``{role}-req`` or ``{role}-resp``. An empty ``ciphertext`` records a body that
    was not kept because it was spooled to disk (larger than the node keeps in
    memory); the chain row still holds its digest. ``key_id`` names the
    :class:`SubjectKey` the body is sealed under; NULL for a body sealed with the
    node's body key itself (no data subject, or written before subject keys).
    """

    __tablename__ = "audit_body"

    node_id: Mapped[str] = mapped_column(String(1100), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str | None] = mapped_column(String(1024), index=True)
    stored_at: Mapped[str] = mapped_column(String(40))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(String(32), index=True)


class SubjectKey(Base):
    """A data subject's own body key, wrapped by the node's body key.

    Erasing the subject deletes this row: every copy of the subject's bodies
    (dead tuples, write-ahead files, backups of the body table) is then
    ciphertext under a key that no longer exists (crypto-shredding).
    """

    __tablename__ = "audit_subject_key"
    __table_args__ = (UniqueConstraint("key_id", name="uq_audit_subject_key_id"),)

    node_id: Mapped[str] = mapped_column(String(1100), primary_key=True)
    subject: Mapped[str] = mapped_column(String(1024), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[str] = mapped_column(String(40))


class OperationalRecord(Base):
    """Per exchange timings and sizes (like X-Road's operational monitoring); not chained."""

    __tablename__ = "audit_operational"

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(1100), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(16))
    client: Mapped[str | None] = mapped_column(String(1100))
    service: Mapped[str | None] = mapped_column(String(1400), index=True)
    started_at: Mapped[str] = mapped_column(String(40), index=True)
    committed_at: Mapped[str] = mapped_column(String(40))
    duration_ms: Mapped[float] = mapped_column(Float)
    backend_ms: Mapped[float | None] = mapped_column(Float)
    request_size: Mapped[int | None] = mapped_column(BigInteger)
    response_size: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(128))
    succeeded: Mapped[bool] = mapped_column(Boolean)


class ArchiveRecord(Base):
    """An archive file of rows removed from the database, linked to the one before."""

    __tablename__ = "audit_archive"

    node_id: Mapped[str] = mapped_column(String(1100), primary_key=True)
    first_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    previous_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(40))


class ArchivedLeaf(Base):
    """The entry hash of an archived row: checkpoints still need every leaf of the tree."""

    __tablename__ = "audit_archived_leaf"

    node_id: Mapped[str] = mapped_column(String(1100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    entry_hash: Mapped[str] = mapped_column(String(64))


# Every column that the entry hash covers, in the row's own terms (``format`` only
# from rule 2 on: gateway/audit/hashing.py dispatches on it).
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
    "format",
)


@dataclass(frozen=True, slots=True)
class LoggedBody:
    """A body to store beside the row: ``part`` is "req" or "resp".

    ``content`` is the plaintext until the writer seals it under the subject's
    key in the row's transaction; None when the body was not kept (spooled).
    """

    part: str
    content: bytes | None = field(repr=False)


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
    # Operational monitoring only: not part of the chained row.
    request_size: int | None = None
    response_size: int | None = None
    backend_ms: float | None = None
    # Encrypted bodies of services that log them: stored beside the chain.
    bodies: list[LoggedBody] = field(default_factory=list)

"""Encrypted request and response bodies, kept apart from the chain (DESIGN §6).

Bodies are not logged by default. For the services listed in ``[audit]
body_services`` the exchange stages hand their bodies to :class:`BodyVault`,
which encrypts them with Fernet (AES-128-CBC + HMAC-SHA256, from the
``cryptography`` recipes layer) under the key in ``[audit] body_key_file``; the
writer stores them in ``audit_body`` in the same transaction as the row. The
chain keeps only the digests, so erasing a subject's bodies
(:func:`erase_subject_bodies`) leaves every row, checkpoint and proof valid.

The key file holds one Fernet key per line: the first encrypts, all decrypt
(rotation: put the new key first, keep the old ones until their bodies are gone).
Only bodies the node held in memory are kept; a spooled (large) body is recorded
with an empty ciphertext so that its absence is explained.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.errors import BodyStoreError
from gateway.audit.models import AuditEntry, AuditRow, EncryptedBody, LoggedBody
from gateway.settings import NodeSettings

__all__ = [
    "BodyVault",
    "StoredBody",
    "body_vault_for",
    "erase_subject_bodies",
    "generate_body_key",
    "load_body_keys",
    "read_bodies",
    "write_body_key",
]

PARTS = ("req", "resp")


class _Body(Protocol):
    """What the vault needs of a received body (:class:`gateway.spool.SpooledBody`)."""

    @property
    def in_memory(self) -> bool: ...

    def content(self) -> bytes: ...


def generate_body_key() -> bytes:
    return Fernet.generate_key()


def write_body_key(path: Path) -> None:
    """Create a new key file readable by its owner only; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BodyStoreError(f"cannot create the body key file {path}: {exc}") from exc
    with os.fdopen(descriptor, "wb") as file:
        file.write(generate_body_key() + b"\n")


def load_body_keys(path: Path) -> list[bytes]:
    """The keys of ``path``, newest first; the message never shows the key."""
    try:
        lines = path.read_bytes().split()
    except OSError as exc:
        raise BodyStoreError(f"cannot read the body key file {path}: {exc.strerror}") from exc
    if not lines:
        raise BodyStoreError(f"the body key file {path} holds no key")
    for number, key in enumerate(lines, start=1):
        try:
            Fernet(key)
        except ValueError as exc:
            raise BodyStoreError(
                f"line {number} of the body key file {path} is not a Fernet key"
            ) from exc
    return lines


class BodyVault:
    """Seals the bodies of the services that log them; opens them for the owner."""

    def __init__(self, services: Iterable[str], keys: Sequence[bytes]) -> None:
        if not keys:
            raise BodyStoreError("body logging needs at least one key")
        self._services = frozenset(services)
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def __repr__(self) -> str:  # never show the keys
        return f"BodyVault(services={sorted(self._services)!r})"

    def wants(self, service: str | None) -> bool:
        return service is not None and service in self._services

    def seal(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def open(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken as exc:
            raise BodyStoreError("a logged body does not decrypt with the body keys") from exc

    def keep(self, entry: AuditEntry, part: str, body: _Body) -> None:
        """Attach ``body`` to ``entry`` if its service logs bodies (``part``: req, resp)."""
        if part not in PARTS:
            raise ValueError(f"unknown body part {part!r}")
        if not self.wants(entry.service):
            return
        sealed = self.seal(body.content()) if body.in_memory else b""
        entry.bodies = [b for b in entry.bodies if b.part != part]
        entry.bodies.append(LoggedBody(part=part, ciphertext=sealed))


def body_vault_for(settings: NodeSettings) -> BodyVault | None:
    """The node's vault, or None when no service logs bodies (the default)."""
    if not settings.audit_body_services:
        return None
    if settings.audit_body_key is None:
        raise BodyStoreError("[audit] body_services is set but body_key_file is not")
    return BodyVault(settings.audit_body_services, load_body_keys(settings.audit_body_key))


def body_rows(entry: AuditEntry, *, node_id: str, stored_at: str) -> list[dict[str, object]]:
    """The ``audit_body`` rows of a committed entry (none without a request id)."""
    if entry.request_id is None:
        return []
    return [
        {
            "node_id": node_id,
            "message_id": entry.request_id,
            "kind": f"{entry.role}-{body.part}",
            "subject": entry.subject,
            "stored_at": stored_at,
            "ciphertext": body.ciphertext,
        }
        for body in entry.bodies
    ]


async def erase_subject_bodies(engine: AsyncEngine, node_id: str, subject: str) -> int:
    """Delete every logged body about ``subject``; the chain is not touched."""
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(EncryptedBody).where(
                EncryptedBody.node_id == node_id, EncryptedBody.subject == subject
            )
        )
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class StoredBody:
    request_id: str
    kind: str
    kept: bool
    body: bytes | None


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


async def read_bodies(
    engine: AsyncEngine, vault: BodyVault, node_id: str, request_id: str
) -> list[StoredBody]:
    """Decrypt an exchange's bodies and check each against the digest in its chain row.

    A body whose digest differs from the row's (swapped or altered in the
    database) raises :class:`BodyStoreError`.
    """
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                select(EncryptedBody.kind, EncryptedBody.ciphertext)
                .where(EncryptedBody.node_id == node_id, EncryptedBody.message_id == request_id)
                .order_by(EncryptedBody.kind)
            )
        ).all()
        rows = (
            await conn.execute(
                select(AuditRow.role, AuditRow.request_body_sha256, AuditRow.response_body_sha256)
                .where(AuditRow.node_id == node_id, AuditRow.request_id == request_id)
            )
        ).all()
    digests = {}
    for role, request_digest, response_digest in rows:
        digests[f"{role}-req"] = request_digest
        digests[f"{role}-resp"] = response_digest
    result = []
    for kind, ciphertext in stored:
        if not ciphertext:
            result.append(StoredBody(request_id, kind, kept=False, body=None))
            continue
        plaintext = vault.open(ciphertext)
        if kind not in digests:
            raise BodyStoreError(
                f"the {kind} body of {request_id} has no audit row in the database "
                "(archived?): it cannot be checked against a digest"
            )
        if digests[kind] != _digest(plaintext):
            raise BodyStoreError(
                f"the {kind} body of {request_id} does not match the digest in its audit row"
            )
        result.append(StoredBody(request_id, kind, kept=True, body=plaintext))
    return result

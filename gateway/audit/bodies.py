"""Encrypted request and response bodies, kept apart from the chain (DESIGN §6).

Bodies are not logged by default. For the services listed in ``[audit]
body_services`` the exchange stages hand their bodies to :class:`BodyVault`;
the writer seals them in the same transaction as the row and stores them in
``audit_body``. A body about a data subject is sealed under that subject's own
key (:mod:`gateway.audit.sealing`), which is stored wrapped by the node's body
key (``[audit] body_key_file``) in ``audit_subject_key``; erasing the subject
destroys that key (:mod:`gateway.audit.erasure`). A body with no subject is
sealed with the node's body key itself (Fernet: AES-128-CBC + HMAC-SHA256, from
the ``cryptography`` recipes layer), as every body was before subject keys.
The chain keeps only the digests, so erasure leaves every row, checkpoint and
proof valid.

The key file holds one Fernet key per line: the first encrypts, all decrypt
(rotation: put the new key first, keep the old ones while rows they wrapped or
sealed remain). Only bodies the node held in memory are kept; a spooled
(large) body is recorded with an empty ciphertext so that its absence is
explained.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit.errors import BodyStoreError
from gateway.audit.models import AuditEntry, AuditRow, EncryptedBody, LoggedBody, SubjectKey
from gateway.audit.sealing import body_context, new_subject_key, open_sealed, seal
from gateway.settings import NodeSettings

__all__ = [
    "BodyVault",
    "StoredBody",
    "body_vault_for",
    "generate_body_key",
    "load_body_keys",
    "read_bodies",
    "sealed_body_rows",
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
        """Seal with the node's body key (bodies without a subject; subject keys)."""
        return self._fernet.encrypt(plaintext)

    def open(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken as exc:
            raise BodyStoreError("a logged body does not decrypt with the body keys") from exc

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return self._fernet.decrypt(wrapped)
        except InvalidToken as exc:
            raise BodyStoreError(
                "a subject key does not unwrap with the body keys (a key removed from "
                "the key file too early?)"
            ) from exc

    def keep(self, entry: AuditEntry, part: str, body: _Body) -> None:
        """Attach ``body`` to ``entry`` if its service logs bodies (``part``: req, resp)."""
        if part not in PARTS:
            raise ValueError(f"unknown body part {part!r}")
        if not self.wants(entry.service):
            return
        # Sealed by the writer, which holds the subject's key in the row's transaction.
        content = body.content() if body.in_memory else None
        entry.bodies = [b for b in entry.bodies if b.part != part]
        entry.bodies.append(LoggedBody(part=part, content=content))


def body_vault_for(settings: NodeSettings) -> BodyVault | None:
    """The node's vault, or None when no service logs bodies (the default)."""
    if not settings.audit_body_services:
        return None
    if settings.audit_body_key is None:
        raise BodyStoreError("[audit] body_services is set but body_key_file is not")
    return BodyVault(settings.audit_body_services, load_body_keys(settings.audit_body_key))


async def sealed_body_rows(
    conn: AsyncConnection,
    vault: BodyVault,
    entries: Sequence[AuditEntry],
    *,
    node_id: str,
    stored_at: str,
) -> list[dict[str, object]]:
    """The ``audit_body`` rows of a batch, sealed; call it in the batch's transaction.

    Subjects met for the first time get a new key, inserted in the same
    transaction, so a body is never stored under a key that is not.
    """
    kept = [e for e in entries if e.request_id is not None and e.bodies]
    subjects = {e.subject for e in kept if e.subject is not None}
    keys = await _subject_keys(conn, vault, node_id, subjects, stored_at) if subjects else {}
    rows: list[dict[str, object]] = []
    for entry in kept:
        assert entry.request_id is not None
        for body in entry.bodies:
            kind = f"{entry.role}-{body.part}"
            key_id: str | None = None
            if body.content is None:
                sealed = b""
            elif entry.subject is None:
                sealed = vault.seal(body.content)
            else:
                key_id, key = keys[entry.subject]
                context = body_context(node_id, entry.request_id, kind, key_id)
                sealed = seal(key, body.content, context)
            rows.append({
                "node_id": node_id, "message_id": entry.request_id, "kind": kind,
                "subject": entry.subject, "stored_at": stored_at, "ciphertext": sealed,
                "key_id": key_id,
            })  # fmt: skip
    return rows


async def _subject_keys(
    conn: AsyncConnection, vault: BodyVault, node_id: str, subjects: set[str], now: str
) -> dict[str, tuple[str, bytes]]:
    """Each subject's (key id, key), creating the missing keys."""
    found = await conn.execute(
        select(SubjectKey.subject, SubjectKey.key_id, SubjectKey.wrapped_key).where(
            SubjectKey.node_id == node_id, SubjectKey.subject.in_(sorted(subjects))
        )
    )
    keys = {subject: (key_id, vault.unwrap(wrapped)) for subject, key_id, wrapped in found}
    created = []
    for subject in sorted(subjects - keys.keys()):
        key_id, key = secrets.token_hex(16), new_subject_key()
        keys[subject] = (key_id, key)
        created.append({"node_id": node_id, "subject": subject, "key_id": key_id,
                        "wrapped_key": vault.seal(key), "created_at": now})
    if created:
        await conn.execute(insert(SubjectKey), created)
    return keys


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
                select(EncryptedBody.kind, EncryptedBody.ciphertext, EncryptedBody.key_id)
                .where(EncryptedBody.node_id == node_id, EncryptedBody.message_id == request_id)
                .order_by(EncryptedBody.kind)
            )
        ).all()
        key_ids = sorted({key_id for _, _, key_id in stored if key_id is not None})
        wrapped = dict(
            (
                await conn.execute(
                    select(SubjectKey.key_id, SubjectKey.wrapped_key).where(
                        SubjectKey.node_id == node_id, SubjectKey.key_id.in_(key_ids)
                    )
                )
            ).all()
        ) if key_ids else {}
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
    for kind, ciphertext, key_id in stored:
        if not ciphertext:
            result.append(StoredBody(request_id, kind, kept=False, body=None))
            continue
        if key_id is None:
            plaintext = vault.open(ciphertext)  # no subject, or sealed before subject keys
        elif key_id not in wrapped:
            raise BodyStoreError(f"the key of the {kind} body of {request_id} was erased")
        else:
            context = body_context(node_id, request_id, kind, key_id)
            plaintext = open_sealed(vault.unwrap(wrapped[key_id]), ciphertext, context)
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

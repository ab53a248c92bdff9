"""Encrypted body logging beside the chain, and erasure that leaves the chain verifiable."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Federation
from sqlalchemy import select, update

from gateway.audit.bodies import (
    BodyVault,
    body_vault_for,
    generate_body_key,
    load_body_keys,
    read_bodies,
    write_body_key,
)
from gateway.audit.erasure import erase_subject_bodies
from gateway.audit.errors import BodyStoreError
from gateway.audit.export import collect_bundle, write_bundle
from gateway.audit.models import AuditEntry, EncryptedBody
from gateway.audit.writer import AuditWriter
from gateway.auditor import read_bundle, verify_bundles
from gateway.settings import NodeSettings
from gateway.spool import SpooledBody

SERVICE = "EE/GOV/70000001/records/patient"
OTHER_SERVICE = "EE/GOV/70000001/records/timetable"


def _body(data: bytes, memory_limit: int = 1 << 20) -> SpooledBody:
    body = SpooledBody(memory_limit)
    body.feed(data)
    return body


@pytest.fixture
async def logging_writer(federation: Federation) -> AsyncIterator[AuditWriter]:
    vault = BodyVault([SERVICE], [generate_body_key()])
    writer = AuditWriter(federation.engine, federation.node_id, bodies=vault)
    await writer.start()
    try:
        yield writer
    finally:
        await writer.stop()


async def _exchange(
    writer: AuditWriter,
    *,
    subject: str = "EE38001010000",
    service: str = SERVICE,
    request: SpooledBody | None = None,
    response: SpooledBody | None = None,
) -> str:
    request = request or _body(b'{"q": "patient"}')
    response = response or _body(b'{"name": "Mari Maasikas"}')
    entry = AuditEntry(
        role="provider", message_id=secrets.token_hex(8), logged_at=datetime.now(UTC),
        request_id=secrets.token_hex(16), client="EE/GOV/70000002/app", service=service,
        method="POST", path="/Patient", subject=subject, status=200,
        request_body_sha256=request.sha256, response_body_sha256=response.sha256,
    )  # fmt: skip
    writer.keep_body(entry, "req", request)
    writer.keep_body(entry, "resp", response)
    await writer.append(entry)
    assert entry.request_id is not None
    return entry.request_id


async def _stored(fed: Federation) -> list[tuple[str, str | None, bytes]]:
    async with fed.engine.connect() as conn:
        result = await conn.execute(
            select(EncryptedBody.kind, EncryptedBody.subject, EncryptedBody.ciphertext)
        )
        return [(k, s, c) for k, s, c in result]


async def _export_and_verify(fed: Federation, name: str) -> None:
    content = await collect_bundle(
        fed.engine, fed.node_id, globalconf=fed.globalconf, certificates_pem=fed.certificate_pem
    )
    out = fed.directory / name
    write_bundle(content, out, now=datetime.now(UTC))
    verify_bundles([read_bundle(out)], anchor=fed.anchor, now=datetime.now(UTC))


async def test_bodies_are_not_logged_by_default(federation: Federation) -> None:
    entry = AuditEntry(role="provider", message_id="m", logged_at=datetime.now(UTC),
                       request_id="r", service=SERVICE)
    federation.writer.keep_body(entry, "req", _body(b"secret"))
    await federation.writer.append(entry)
    assert entry.bodies == []
    assert await _stored(federation) == []


async def test_only_listed_services_log_bodies(
    federation: Federation, logging_writer: AuditWriter
) -> None:
    await _exchange(logging_writer, service=OTHER_SERVICE)
    assert await _stored(federation) == []


async def test_bodies_are_stored_encrypted_and_read_back_against_the_row_digests(
    federation: Federation, logging_writer: AuditWriter
) -> None:
    request_id = await _exchange(logging_writer)
    stored = await _stored(federation)
    assert sorted(kind for kind, _, _ in stored) == ["provider-req", "provider-resp"]
    assert all(subject == "EE38001010000" for _, subject, _ in stored)
    assert all(b"Maasikas" not in ciphertext for _, _, ciphertext in stored)
    vault = logging_writer._bodies
    assert vault is not None
    bodies = await read_bodies(federation.engine, vault, federation.node_id, request_id)
    assert [(b.kind, b.body) for b in bodies] == [
        ("provider-req", b'{"q": "patient"}'),
        ("provider-resp", b'{"name": "Mari Maasikas"}'),
    ]


async def test_a_spooled_body_is_recorded_as_not_kept(
    federation: Federation, logging_writer: AuditWriter
) -> None:
    large = _body(b"x" * 5000, memory_limit=1000)
    assert not large.in_memory
    request_id = await _exchange(logging_writer, response=large)
    vault = logging_writer._bodies
    assert vault is not None
    bodies = {b.kind: b for b in await read_bodies(
        federation.engine, vault, federation.node_id, request_id)}
    assert bodies["provider-resp"].kept is False
    assert bodies["provider-resp"].body is None
    assert bodies["provider-req"].kept is True
    large.close()


async def test_swapped_bodies_are_caught(
    federation: Federation, logging_writer: AuditWriter
) -> None:
    first = await _exchange(logging_writer)
    second = await _exchange(logging_writer, response=_body(b'{"name": "Jaan Tamm"}'))
    async with federation.engine.begin() as conn:
        other = await conn.scalar(select(EncryptedBody.ciphertext).where(
            EncryptedBody.message_id == second, EncryptedBody.kind == "provider-resp"))
        await conn.execute(update(EncryptedBody).where(
            EncryptedBody.message_id == first, EncryptedBody.kind == "provider-resp"
        ).values(ciphertext=other))
    vault = logging_writer._bodies
    assert vault is not None
    # The sealed body names its row (AES-GCM associated data), so it no longer opens.
    with pytest.raises(BodyStoreError, match="does not open"):
        await read_bodies(federation.engine, vault, federation.node_id, first)


async def test_another_key_cannot_open_a_body(
    federation: Federation, logging_writer: AuditWriter
) -> None:
    request_id = await _exchange(logging_writer)
    stranger = BodyVault([SERVICE], [generate_body_key()])
    with pytest.raises(BodyStoreError) as info:
        await read_bodies(federation.engine, stranger, federation.node_id, request_id)
    assert info.value.code == "audit.body_store_failed"


async def test_erasing_a_subject_leaves_chain_and_checkpoints_verifiable(
    federation: Federation, logging_writer: AuditWriter
) -> None:
    await _exchange(logging_writer, subject="EE38001010000")
    await _exchange(logging_writer, subject="EE48001010000")
    await federation.exchange(2)
    assert await federation.checkpointer.checkpoint() is not None
    await _export_and_verify(federation, "before")
    erased = await erase_subject_bodies(federation.engine, federation.node_id, "EE38001010000")
    assert (erased.bodies, erased.keys, erased.storage_released) == (2, 1, True)
    assert {s for _, s, _ in await _stored(federation)} == {"EE48001010000"}
    await _exchange(logging_writer, subject="EE38001010000")
    assert await federation.checkpointer.checkpoint() is not None
    await _export_and_verify(federation, "after")
    nobody = await erase_subject_bodies(federation.engine, federation.node_id, "nobody")
    assert (nobody.bodies, nobody.keys) == (0, 0)


def test_key_files(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "body.key"
    write_body_key(path)
    assert path.stat().st_mode & 0o077 == 0
    assert len(load_body_keys(path)) == 1
    with pytest.raises(BodyStoreError):
        write_body_key(path)  # never overwritten
    rotated = tmp_path / "rotated.key"
    old, new = generate_body_key(), generate_body_key()
    rotated.write_bytes(new + b"\n" + old + b"\n")
    sealed_by_old = BodyVault([SERVICE], [old]).seal(b"body")
    assert BodyVault([SERVICE], load_body_keys(rotated)).open(sealed_by_old) == b"body"


@pytest.mark.parametrize("content", [b"", b"not-a-key\n", b"c2hvcnQ=\n"])
def test_bad_key_files_are_refused_without_showing_them(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "body.key"
    path.write_bytes(content)
    with pytest.raises(BodyStoreError) as info:
        load_body_keys(path)
    assert content.strip() == b"" or content.strip().decode() not in str(info.value)
    with pytest.raises(BodyStoreError):
        load_body_keys(tmp_path / "missing.key")


def test_vault_from_settings_fails_closed_without_a_key(tmp_path: Path) -> None:
    settings = NodeSettings.__new__(NodeSettings)
    object.__setattr__(settings, "audit_body_services", ())
    object.__setattr__(settings, "audit_body_key", None)
    assert body_vault_for(settings) is None
    object.__setattr__(settings, "audit_body_services", (SERVICE,))
    with pytest.raises(BodyStoreError, match="body_key_file"):
        body_vault_for(settings)
    key = tmp_path / "body.key"
    write_body_key(key)
    object.__setattr__(settings, "audit_body_key", key)
    vault = body_vault_for(settings)
    assert vault is not None
    assert vault.wants(SERVICE)
    assert not vault.wants(OTHER_SERVICE)
    assert "key" not in repr(vault).lower().replace("services", "")

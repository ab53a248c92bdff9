"""Crypto-shredding: each subject's bodies under a key of its own, destroyed on erasure.

The scans read the database as an attacker with the files would: the SQLite
database file, its write-ahead file and an export bundle must hold none of the
erased bytes (plaintext, ciphertext, wrapped key). On PostgreSQL, whose dead
tuples and backups keep old row versions, the erased ciphertexts must no
longer open with any key the node still holds.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Federation
from sqlalchemy import select, update

from gateway.audit.bodies import BodyVault, generate_body_key, read_bodies
from gateway.audit.erasure import erase_subject_bodies
from gateway.audit.errors import BodyStoreError
from gateway.audit.export import collect_bundle, write_bundle
from gateway.audit.models import AuditEntry, EncryptedBody, SubjectKey
from gateway.audit.sealing import SEALED_VERSION, body_context, open_sealed
from gateway.audit.writer import AuditWriter
from gateway.auditor import read_bundle, verify_bundles
from gateway.errors import DatabaseUnavailable
from gateway.spool import SpooledBody

SERVICE = "EE/GOV/70000001/records/patient"
ERASED = "EE38001010000"
KEPT = "EE48001010000"


def _body(data: bytes) -> SpooledBody:
    body = SpooledBody(1 << 20)
    body.feed(data)
    return body


@pytest.fixture
async def vault() -> BodyVault:
    return BodyVault([SERVICE], [generate_body_key()])


@pytest.fixture
async def writer(federation: Federation, vault: BodyVault) -> AsyncIterator[AuditWriter]:
    writer = AuditWriter(federation.engine, federation.node_id, bodies=vault)
    await writer.start()
    try:
        yield writer
    finally:
        await writer.stop()


async def _exchange(writer: AuditWriter, subject: str | None, response: bytes) -> str:
    request, answer = _body(b'{"q": "patient"}'), _body(response)
    entry = AuditEntry(
        role="provider", message_id=secrets.token_hex(8), logged_at=datetime.now(UTC),
        request_id=secrets.token_hex(16), client="EE/GOV/70000002/app", service=SERVICE,
        method="POST", path="/Patient", subject=subject, status=200,
        request_body_sha256=request.sha256, response_body_sha256=answer.sha256,
    )  # fmt: skip
    writer.keep_body(entry, "req", request)
    writer.keep_body(entry, "resp", answer)
    await writer.append(entry)
    assert entry.request_id is not None
    return entry.request_id


async def _sealed_of(fed: Federation, subject: str) -> list[tuple[str, str, bytes, str | None]]:
    async with fed.engine.connect() as conn:
        rows = await conn.execute(
            select(EncryptedBody.message_id, EncryptedBody.kind, EncryptedBody.ciphertext,
                   EncryptedBody.key_id).where(EncryptedBody.subject == subject)
        )  # fmt: skip
        return [(m, k, c, key) for m, k, c, key in rows]


async def _wrapped_keys(fed: Federation) -> dict[str, tuple[str, bytes]]:
    async with fed.engine.connect() as conn:
        rows = await conn.execute(
            select(SubjectKey.subject, SubjectKey.key_id, SubjectKey.wrapped_key)
        )
        return {subject: (key_id, wrapped) for subject, key_id, wrapped in rows}


async def _export(fed: Federation, name: str) -> Path:
    content = await collect_bundle(
        fed.engine, fed.node_id, globalconf=fed.globalconf, certificates_pem=fed.certificate_pem
    )
    out = fed.directory / name
    write_bundle(content, out, now=datetime.now(UTC))
    verify_bundles([read_bundle(out)], anchor=fed.anchor, now=datetime.now(UTC))
    return out


def _holding(files: list[Path], needles: dict[str, bytes]) -> list[str]:
    """``needle name in file name`` for every erased byte string still found."""
    found = []
    for path in files:
        data = path.read_bytes() if path.exists() else b""
        found += [f"{name} in {path.name}" for name, needle in needles.items() if needle in data]
    return found


async def test_each_subject_gets_its_own_key_wrapped_by_the_node_key(
    federation: Federation, writer: AuditWriter, vault: BodyVault
) -> None:
    first = await _exchange(writer, ERASED, b'{"name": "Mari"}')
    await _exchange(writer, ERASED, b'{"name": "Mari again"}')
    await _exchange(writer, KEPT, b'{"name": "Jaan"}')
    keys = await _wrapped_keys(federation)
    assert set(keys) == {ERASED, KEPT}
    assert keys[ERASED][0] != keys[KEPT][0]
    sealed = await _sealed_of(federation, ERASED)
    assert {key_id for _, _, _, key_id in sealed} == {keys[ERASED][0]}
    assert all(ciphertext[0] == SEALED_VERSION for _, _, ciphertext, _ in sealed)
    # A body opens with its subject's key only, and only in its own row.
    request_id, kind, ciphertext, key_id = next(s for s in sealed if s[0] == first)
    assert key_id is not None
    own = vault.unwrap(keys[ERASED][1])
    assert open_sealed(own, ciphertext, body_context(federation.node_id, request_id, kind,
                                                     key_id)) in (b'{"q": "patient"}',
                                                                  b'{"name": "Mari"}')
    other = vault.unwrap(keys[KEPT][1])
    with pytest.raises(BodyStoreError):
        open_sealed(other, ciphertext, body_context(federation.node_id, request_id, kind,
                                                    key_id))
    with pytest.raises(BodyStoreError):
        open_sealed(own, ciphertext, body_context(federation.node_id, "another", kind, key_id))
    with pytest.raises(BodyStoreError):
        vault.open(ciphertext)  # the node key alone does not open it


# A file scan of the embedded database; PostgreSQL has its own test below.
@pytest.mark.parametrize("federation", ["sqlite"], indirect=True)
async def test_erased_bytes_are_in_no_database_file_write_ahead_file_or_export(
    federation: Federation, writer: AuditWriter, vault: BodyVault
) -> None:
    assert federation.engine.dialect.name == "sqlite"
    marker = f"Erase-me-{secrets.token_hex(8)}".encode()
    await _exchange(writer, ERASED, b'{"name": "' + marker + b'"}')
    await _exchange(writer, KEPT, b'{"name": "Jaan Tamm"}')
    await federation.exchange(2)
    assert await federation.checkpointer.checkpoint() is not None
    key_id, wrapped = (await _wrapped_keys(federation))[ERASED]
    needles = {"plaintext": marker, "wrapped key": wrapped, "key id": key_id.encode(),
               "key": vault.unwrap(wrapped)}  # fmt: skip
    for number, (_, _, ciphertext, _) in enumerate(await _sealed_of(federation, ERASED)):
        needles[f"ciphertext {number}"] = ciphertext
    database = federation.directory / "node.db"
    files = [database, database.with_name("node.db-wal")]
    # The scan finds what is there: before the erasure the ciphertexts are on disk.
    before = _holding(files, needles)
    assert any(found.startswith("ciphertext") for found in before), before

    erasure = await erase_subject_bodies(federation.engine, federation.node_id, ERASED)
    assert (erasure.bodies, erasure.keys, erasure.storage_released) == (2, 1, True)

    export = await _export(federation, "after-erasure")  # the chain still verifies
    assert _holding([*files, *sorted(export.iterdir())], needles) == []
    assert await _sealed_of(federation, KEPT) != []  # others' bodies stay


async def test_erased_ciphertexts_left_in_old_row_versions_no_longer_open(
    federation: Federation, writer: AuditWriter, vault: BodyVault
) -> None:
    # What a dead tuple, a replica or a backup of the body table still holds.
    await _exchange(writer, ERASED, b'{"name": "Mari"}')
    request_id = await _exchange(writer, KEPT, b'{"name": "Jaan"}')
    leftovers = await _sealed_of(federation, ERASED)
    assert len(leftovers) == 2
    await erase_subject_bodies(federation.engine, federation.node_id, ERASED)

    remaining = await _wrapped_keys(federation)
    assert set(remaining) == {KEPT}
    for message_id, kind, ciphertext, key_id in leftovers:
        assert key_id is not None
        assert key_id not in {k for k, _ in remaining.values()}
        context = body_context(federation.node_id, message_id, kind, key_id)
        for _, wrapped in remaining.values():
            with pytest.raises(BodyStoreError):
                open_sealed(vault.unwrap(wrapped), ciphertext, context)
        with pytest.raises(BodyStoreError):
            vault.open(ciphertext)
    kept = await read_bodies(federation.engine, vault, federation.node_id, request_id)
    assert [b.body for b in kept] == [b'{"q": "patient"}', b'{"name": "Jaan"}']


async def test_bodies_sealed_before_subject_keys_still_open_and_are_erased(
    federation: Federation, writer: AuditWriter, vault: BodyVault
) -> None:
    request_id = await _exchange(writer, ERASED, b'{"name": "Mari"}')
    # Rewrite the bodies as the previous format stored them: Fernet under the node key.
    async with federation.engine.begin() as conn:
        for kind, content in (("provider-req", b'{"q": "patient"}'),
                              ("provider-resp", b'{"name": "Mari"}')):
            await conn.execute(
                update(EncryptedBody)
                .where(EncryptedBody.message_id == request_id, EncryptedBody.kind == kind)
                .values(ciphertext=vault.seal(content), key_id=None)
            )  # fmt: skip
    bodies = await read_bodies(federation.engine, vault, federation.node_id, request_id)
    assert [b.body for b in bodies] == [b'{"q": "patient"}', b'{"name": "Mari"}']
    erasure = await erase_subject_bodies(federation.engine, federation.node_id, ERASED)
    assert erasure.bodies == 2
    assert await read_bodies(federation.engine, vault, federation.node_id, request_id) == []


async def test_a_body_without_subject_is_sealed_with_the_node_key(
    federation: Federation, writer: AuditWriter, vault: BodyVault
) -> None:
    request_id = await _exchange(writer, None, b'{"stops": 12}')
    assert await _wrapped_keys(federation) == {}
    bodies = await read_bodies(federation.engine, vault, federation.node_id, request_id)
    assert [b.body for b in bodies] == [b'{"q": "patient"}', b'{"stops": 12}']


async def test_a_body_whose_key_is_gone_is_reported_not_guessed(
    federation: Federation, writer: AuditWriter, vault: BodyVault
) -> None:
    request_id = await _exchange(writer, ERASED, b'{"name": "Mari"}')
    async with federation.engine.begin() as conn:
        await conn.execute(SubjectKey.__table__.delete())
    with pytest.raises(BodyStoreError, match="erased"):
        await read_bodies(federation.engine, vault, federation.node_id, request_id)


async def test_a_subject_key_that_no_longer_unwraps_fails_the_exchange_closed(
    federation: Federation, writer: AuditWriter
) -> None:
    await _exchange(writer, ERASED, b'{"name": "Mari"}')
    # The node key that wrapped the subject key was removed from the key file.
    stranger = AuditWriter(
        federation.engine, federation.node_id,
        bodies=BodyVault([SERVICE], [generate_body_key()]), commit_deadline_s=5,
    )  # fmt: skip
    await stranger.start()
    try:
        with pytest.raises(DatabaseUnavailable):
            await _exchange(stranger, ERASED, b'{"name": "Mari"}')
    finally:
        await stranger.stop()
    assert len(await _sealed_of(federation, ERASED)) == 2

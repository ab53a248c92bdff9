"""Archiving old rows to linked bundle files; archives verify in sequence, gaps are caught."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Federation
from sqlalchemy import func, select

from gateway.audit.archive import ArchiveResult, archive_before
from gateway.audit.chain import chain_start, fetch_rows, verify_chain
from gateway.audit.checkpoints import load_leaf_hashes
from gateway.audit.export import collect_bundle, write_bundle
from gateway.audit.models import ArchivedLeaf, ArchiveRecord, AuditRow
from gateway.auditor import VerificationFailed, read_bundle, verify_bundles
from member_registry.merkle import inclusion_proof


async def _archive(fed: Federation, before: datetime) -> ArchiveResult | None:
    return await archive_before(
        fed.engine, fed.node_id, before=before, out_dir=fed.directory / "archives",
        globalconf=fed.globalconf, certificates_pem=fed.certificate_pem, now=datetime.now(UTC),
    )  # fmt: skip


async def _export(fed: Federation) -> Path:
    content = await collect_bundle(
        fed.engine, fed.node_id, globalconf=fed.globalconf, certificates_pem=fed.certificate_pem
    )
    out = fed.directory / "export.tar.gz"
    write_bundle(content, out, now=datetime.now(UTC))
    return out


def _verify(paths: list[Path], fed: Federation, **options: bool) -> object:
    return verify_bundles([read_bundle(p) for p in paths], anchor=fed.anchor,
                          now=datetime.now(UTC), **options)  # fmt: skip


def _fails(paths: list[Path], fed: Federation, code: str) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as info:
        _verify(paths, fed)
    assert info.value.code == code, str(info.value)
    return info.value


async def _two_archives(fed: Federation) -> tuple[ArchiveResult, ArchiveResult, Path]:
    await fed.exchange(4)
    assert await fed.checkpointer.checkpoint() is not None
    first_cut = datetime.now(UTC)
    await fed.exchange(3)
    assert await fed.checkpointer.checkpoint() is not None
    second_cut = datetime.now(UTC)
    await fed.exchange(2)
    first = await _archive(fed, first_cut)
    second = await _archive(fed, second_cut)
    assert first is not None
    assert second is not None
    assert await fed.checkpointer.checkpoint() is not None  # still works without the rows
    return first, second, await _export(fed)


async def test_archives_link_and_verify_in_sequence(federation: Federation) -> None:
    first, second, export = await _two_archives(federation)
    assert (first.first_seq, first.last_seq, first.previous_sha256) == (1, 4, None)
    assert (second.first_seq, second.last_seq, second.previous_sha256) == (5, 7, first.sha256)
    assert read_bundle(export).manifest["previous_archive_sha256"] == second.sha256
    report = _verify([first.path, second.path, export], federation)
    assert report.rows == 9  # type: ignore[attr-defined]
    async with federation.engine.connect() as conn:
        live = await conn.scalar(select(func.min(AuditRow.seq)))
        leaves = await conn.scalar(select(func.count()).select_from(ArchivedLeaf))
        records = await conn.scalar(select(func.count()).select_from(ArchiveRecord))
        hashes = await load_leaf_hashes(conn, federation.node_id, 9)
    assert (live, leaves, records) == (8, 7, 2)
    assert len(inclusion_proof(hashes, 2)) > 0  # proofs over archived rows still work
    first_seq, start = await chain_start(federation.engine, federation.node_id)
    rows = await fetch_rows(federation.engine, federation.node_id)
    assert verify_chain(rows, start_hash=start, first_seq=first_seq) == 2


async def test_a_missing_or_reordered_archive_is_caught(federation: Federation) -> None:
    first, second, export = await _two_archives(federation)
    _fails([first.path, export], federation, "auditor.archive_sequence")  # middle deleted
    _fails([second.path, first.path, export], federation, "auditor.archive_sequence")
    _fails([second.path, export], federation, "auditor.archive_sequence")  # first deleted
    _fails([export], federation, "auditor.archive_sequence")
    # Deliberately checking only the newest part is possible, and says so.
    _verify([export], federation, allow_partial=True)
    _verify([second.path, export], federation, allow_partial=True)


async def test_a_replaced_archive_is_caught(federation: Federation) -> None:
    first, second, export = await _two_archives(federation)
    # Same rows, another manifest: the next archive names the original.
    with tarfile.open(first.path, "r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    manifest = json.loads(files["manifest.json"])
    manifest["created_at"] = "2000-01-01T00:00:00+00:00"
    files["manifest.json"] = json.dumps(manifest).encode()
    forged = federation.directory / "forged.tar.gz"
    with tarfile.open(forged, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    error = _fails([forged, second.path, export], federation, "auditor.archive_sequence")
    assert "names a previous archive" in error.message


async def test_only_checkpointed_rows_older_than_the_cut_are_archived(
    federation: Federation,
) -> None:
    await federation.exchange(3)
    assert await _archive(federation, datetime.now(UTC) + timedelta(days=1)) is None  # unsigned
    assert await federation.checkpointer.checkpoint() is not None
    assert await _archive(federation, datetime.now(UTC) - timedelta(days=1)) is None  # too new
    await federation.exchange(2)  # newer than the checkpoint: stay
    made = await _archive(federation, datetime.now(UTC) + timedelta(days=1))
    assert made is not None
    assert (made.first_seq, made.last_seq) == (1, 3)
    assert await _archive(federation, datetime.now(UTC) + timedelta(days=1)) is None
    async with federation.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(AuditRow)) == 2

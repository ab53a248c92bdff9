"""Archiving old rows: write them to a bundle file, keep their leaves, delete them.

An archive is an ordinary export bundle (:mod:`gateway.audit.export`) of a
seq range, whose manifest names the SHA-256 of the previous archive's
manifest, so archives form a chain of their own that
``renkei audit verify A1 A2 ... EXPORT`` checks in sequence. Before the rows
are deleted their entry hashes go to ``audit_archived_leaf`` (checkpoints,
proofs and later exports still need every leaf of the tree) and the archive
goes to ``audit_archive``; all in one transaction, after the file is written
and read back.

Only rows that a signed checkpoint already covers are archived, and only a
run of rows all older than the cut-off, so a row is never archived before
the tree that contains it is signed.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit.errors import ArchiveError, ExportError
from gateway.audit.export import collect_bundle, write_bundle
from gateway.audit.models import ArchivedLeaf, ArchiveRecord, AuditRow, CheckpointRow

__all__ = ["ArchiveResult", "archive_before", "latest_archive"]


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    path: Path
    first_seq: int
    last_seq: int
    sha256: str
    previous_sha256: str | None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


async def latest_archive(conn: AsyncConnection, node_id: str) -> tuple[int, str] | None:
    """(last seq, manifest SHA-256) of the node's newest archive, if any."""
    found = (
        await conn.execute(
            select(ArchiveRecord.last_seq, ArchiveRecord.sha256)
            .where(ArchiveRecord.node_id == node_id)
            .order_by(ArchiveRecord.last_seq.desc())
            .limit(1)
        )
    ).first()
    return (int(found[0]), str(found[1])) if found is not None else None


async def _range(conn: AsyncConnection, node_id: str, before: datetime) -> tuple[int, int]:
    """The seq range to archive: oldest live row to the last one before the cut-off."""
    first = await conn.scalar(select(func.min(AuditRow.seq)).where(AuditRow.node_id == node_id))
    if first is None:
        return 0, 0
    newer = await conn.scalar(
        select(func.min(AuditRow.seq)).where(
            AuditRow.node_id == node_id, AuditRow.logged_at >= _iso(before)
        )
    )
    last = (
        int(newer) - 1
        if newer is not None
        else int(
            await conn.scalar(select(func.max(AuditRow.seq)).where(AuditRow.node_id == node_id))
            or 0
        )
    )
    signed = await conn.scalar(
        select(func.max(CheckpointRow.tree_size)).where(CheckpointRow.node_id == node_id)
    )
    return int(first), min(last, int(signed or 0))


def _manifest_digest(path: Path) -> str:
    """Read the written archive back: its manifest's digest must be what was written."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise ArchiveError(f"{path} has no manifest")
            return hashlib.sha256(member.read()).hexdigest()
    except (OSError, tarfile.TarError, KeyError) as exc:
        raise ArchiveError(f"cannot read back the archive {path}: {exc}") from exc


async def archive_before(
    engine: AsyncEngine,
    node_id: str,
    *,
    before: datetime,
    out_dir: Path,
    globalconf: str,
    certificates_pem: str,
    now: datetime,
) -> ArchiveResult | None:
    """Archive the rows older than ``before`` into ``out_dir``; None if there are none."""
    async with engine.connect() as conn:
        first, last = await _range(conn, node_id, before)
        previous = await latest_archive(conn, node_id)
    if first == 0 or last < first:
        return None
    previous_sha = previous[1] if previous is not None else None
    try:
        content = await collect_bundle(
            engine, node_id, globalconf=globalconf, certificates_pem=certificates_pem,
            first_seq=first, last_seq=last, previous_archive_sha256=previous_sha,
        )  # fmt: skip
    except ExportError as exc:
        raise ArchiveError(exc.message) from exc
    if content.rows != last - first + 1:
        raise ArchiveError(f"rows {first}..{last} are not all in the database")
    name = f"audit-{node_id.replace('/', '_')}-{first:012d}-{last:012d}.tar.gz"
    path = out_dir / name
    if path.exists():
        raise ArchiveError(f"{path} exists already")
    try:
        digest = write_bundle(content, path, now=now)
    except ExportError as exc:
        raise ArchiveError(exc.message) from exc
    if _manifest_digest(path) != digest:
        raise ArchiveError(f"the archive {path} does not read back as written")
    async with engine.begin() as conn:
        leaves = await conn.execute(
            select(AuditRow.seq, AuditRow.entry_hash)
            .where(AuditRow.node_id == node_id, AuditRow.seq >= first, AuditRow.seq <= last)
            .order_by(AuditRow.seq)
        )
        rows = [{"node_id": node_id, "seq": s, "entry_hash": h} for s, h in leaves]
        if len(rows) != last - first + 1:
            raise ArchiveError(f"rows {first}..{last} changed while they were archived")
        await conn.execute(insert(ArchivedLeaf), rows)
        await conn.execute(
            insert(ArchiveRecord).values(
                node_id=node_id, first_seq=first, last_seq=last, file_name=name,
                sha256=digest, previous_sha256=previous_sha, created_at=_iso(now),
            )
        )  # fmt: skip
        await conn.execute(
            delete(AuditRow).where(
                AuditRow.node_id == node_id, AuditRow.seq >= first, AuditRow.seq <= last
            )
        )
    return ArchiveResult(path, first, last, digest, previous_sha)

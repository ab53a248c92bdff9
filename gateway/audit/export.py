"""Writing an export bundle of a node's audit log (read by :mod:`gateway.auditor`).

A bundle is a directory, or the same directory packed as ``.tar.gz``::

    manifest.json        format, node, seq range, previous archive digest, file digests
    rows.jsonl           the rows, one canonical JSON object per line, in seq order
    prior_leaves.txt     entry hashes of the rows before the first exported one
    checkpoints.jsonl    signed checkpoints with their time-stamp tokens and cosignatures
    certificates.pem     the node's auth certificate
    globalconf.jws       the signed global configuration that lists the node and its CAs
    visibility.jsonl     visibility restrictions on rows (outside the chain)

Only the rows, the checkpoints and the configuration carry trust; the manifest
digests just catch damage in transit.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from certs.jws import canonical_json
from gateway.audit.errors import ExportError
from gateway.audit.models import (
    HASHED_FIELDS,
    ArchivedLeaf,
    ArchiveRecord,
    AuditRow,
    CheckpointRow,
    RowVisibility,
)

__all__ = ["BUNDLE_FORMAT", "BundleContent", "collect_bundle", "write_bundle"]

BUNDLE_FORMAT = "renkei-audit-bundle/1"
_ROW_COLUMNS = [*HASHED_FIELDS, "entry_hash"]


def _line(document: Mapping[str, Any]) -> str:
    return canonical_json(document).decode("utf-8")


@dataclass(frozen=True, slots=True)
class BundleContent:
    """The files of a bundle, by name, and its manifest fields."""

    node_id: str
    first_seq: int
    last_seq: int
    files: dict[str, bytes]
    previous_archive_sha256: str | None = None
    rows: int = 0

    def manifest(self, created_at: datetime) -> bytes:
        document = {
            "format": BUNDLE_FORMAT,
            "node": self.node_id,
            "created_at": created_at.astimezone(UTC).isoformat(timespec="seconds"),
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "previous_archive_sha256": self.previous_archive_sha256,
            "files": {
                name: hashlib.sha256(data).hexdigest() for name, data in sorted(self.files.items())
            },
        }
        return (json.dumps(document, sort_keys=True, indent=1) + "\n").encode("utf-8")


async def _seq_range(
    conn: AsyncConnection, node_id: str, since: datetime | None, until: datetime | None
) -> tuple[int, int]:
    query = select(func.min(AuditRow.seq), func.max(AuditRow.seq)).where(
        AuditRow.node_id == node_id
    )
    if since is not None:
        query = query.where(AuditRow.logged_at >= _iso(since))
    if until is not None:
        query = query.where(AuditRow.logged_at < _iso(until))
    low, high = (await conn.execute(query)).one()
    return int(low or 0), int(high or 0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


async def collect_bundle(
    engine: AsyncEngine,
    node_id: str,
    *,
    globalconf: str,
    certificates_pem: str,
    since: datetime | None = None,
    until: datetime | None = None,
    first_seq: int | None = None,
    last_seq: int | None = None,
    previous_archive_sha256: str | None = None,
) -> BundleContent:
    """Read the rows (by time or by seq range) and everything needed to verify them.

    An export that starts right after the newest archive names that archive in its
    manifest (as archives name the one before), so the chain of files is closed.
    """
    # A bounded export carries only the checkpoints its rows can be checked against;
    # a full one carries them all, so a checkpoint beyond the last row shows truncation.
    bounded = until is not None or last_seq is not None
    async with engine.connect() as conn:
        if first_seq is None or last_seq is None:
            low, high = await _seq_range(conn, node_id, since, until)
            first_seq = low if first_seq is None else first_seq
            last_seq = high if last_seq is None else last_seq
        if first_seq == 0:
            raise ExportError("no rows to export in that range")
        rows = await conn.execute(
            select(*[getattr(AuditRow, c) for c in _ROW_COLUMNS])
            .where(AuditRow.node_id == node_id)
            .where(AuditRow.seq >= first_seq, AuditRow.seq <= last_seq)
            .order_by(AuditRow.seq)
        )
        row_lines = [_line(dict(r._mapping)) for r in rows]
        prior = await _prior_leaves(conn, node_id, first_seq)
        if previous_archive_sha256 is None:
            previous_archive_sha256 = await _archive_before(conn, node_id, first_seq)
        checkpoints = await conn.execute(
            select(CheckpointRow.signed, CheckpointRow.timestamp_token, CheckpointRow.cosignature)
            .where(CheckpointRow.node_id == node_id)
            .where(CheckpointRow.tree_size <= (last_seq if bounded else CheckpointRow.tree_size))
            .order_by(CheckpointRow.tree_size)
        )
        checkpoint_lines = [
            _line(
                {
                    "signed": c.signed,
                    "timestamp_token": base64.b64encode(c.timestamp_token).decode()
                    if c.timestamp_token
                    else None,
                    "cosignature": c.cosignature,
                }
            )
            for c in checkpoints
        ]
        visibility = await conn.execute(
            select(
                RowVisibility.message_id,
                RowVisibility.hidden_from_subject_until,
                RowVisibility.reason,
            ).where(RowVisibility.node_id == node_id)
        )
        visibility_lines = [_line(dict(v._mapping)) for v in visibility]
    files = {
        "rows.jsonl": _lines(row_lines),
        "prior_leaves.txt": _lines(prior),
        "checkpoints.jsonl": _lines(checkpoint_lines),
        "certificates.pem": certificates_pem.encode("ascii"),
        "globalconf.jws": globalconf.strip().encode("ascii") + b"\n",
        "visibility.jsonl": _lines(visibility_lines),
    }
    return BundleContent(
        node_id=node_id, first_seq=first_seq, last_seq=last_seq, files=files,
        previous_archive_sha256=previous_archive_sha256, rows=len(row_lines),
    )  # fmt: skip


async def _archive_before(conn: AsyncConnection, node_id: str, first_seq: int) -> str | None:
    """The manifest digest of the archive that ends just before ``first_seq``, if any."""
    found = await conn.scalar(
        select(ArchiveRecord.sha256).where(
            ArchiveRecord.node_id == node_id, ArchiveRecord.last_seq == first_seq - 1
        )
    )
    return str(found) if found is not None else None


async def _prior_leaves(conn: AsyncConnection, node_id: str, first_seq: int) -> list[str]:
    archived = await conn.execute(
        select(ArchivedLeaf.entry_hash)
        .where(ArchivedLeaf.node_id == node_id, ArchivedLeaf.seq < first_seq)
        .order_by(ArchivedLeaf.seq)
    )
    live = await conn.execute(
        select(AuditRow.entry_hash)
        .where(AuditRow.node_id == node_id, AuditRow.seq < first_seq)
        .order_by(AuditRow.seq)
    )
    return [*archived.scalars(), *live.scalars()]


def _lines(lines: Iterable[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def write_bundle(content: BundleContent, out: Path, *, now: datetime) -> str:
    """Write ``content`` to directory ``out`` (or ``out`` ending in .tar.gz); return the
    manifest's SHA-256, which names the bundle (archives link to it)."""
    manifest = content.manifest(now)
    files = {**content.files, "manifest.json": manifest}
    try:
        if out.name.endswith((".tar.gz", ".tgz")):
            out.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(out, "w:gz") as tar:
                for name, data in sorted(files.items()):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    info.mtime = int(now.timestamp())
                    tar.addfile(info, io.BytesIO(data))
        else:
            out.mkdir(parents=True, exist_ok=False)
            for name, data in files.items():
                (out / name).write_bytes(data)
    except OSError as exc:
        raise ExportError(f"cannot write the bundle {out}: {exc}") from exc
    return hashlib.sha256(manifest).hexdigest()

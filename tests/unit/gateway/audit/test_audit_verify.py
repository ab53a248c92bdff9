"""Export and standalone verification, and every kind of tampering the verifier must catch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Federation
from sqlalchemy import delete, select, update

from gateway.audit.export import collect_bundle, write_bundle
from gateway.audit.hashing import entry_hash
from gateway.audit.models import HASHED_FIELDS, AuditRow, ChainHead, CheckpointRow
from gateway.auditor import VerificationFailed, read_bundle, verify_bundles


async def _export(fed: Federation, name: str = "bundle") -> Path:
    content = await collect_bundle(
        fed.engine, fed.node_id, globalconf=fed.globalconf, certificates_pem=fed.certificate_pem
    )
    out = fed.directory / name
    write_bundle(content, out, now=datetime.now(UTC))
    return out


def _verify(path: Path, fed: Federation, **options: object) -> object:
    return verify_bundles([read_bundle(path)], anchor=fed.anchor, now=datetime.now(UTC),
                          **options)  # type: ignore[arg-type]


def _fails(path: Path, fed: Federation, code: str, seq: int | None = None) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as info:
        _verify(path, fed)
    assert info.value.code == code, str(info.value)
    if seq is not None:
        assert info.value.seq == seq, str(info.value)
    return info.value


async def _logged(fed: Federation, rows: int = 10) -> None:
    await fed.exchange(rows)
    assert await fed.checkpointer.checkpoint() is not None


async def test_intact_log_verifies(federation: Federation) -> None:
    await _logged(federation, 6)
    await federation.exchange(3)
    assert await federation.checkpointer.checkpoint() is not None
    report = _verify(await _export(federation), federation)
    assert report.rows == 9  # type: ignore[attr-defined]
    assert report.checkpoints == 2  # type: ignore[attr-defined]
    assert report.timestamped_until is not None  # type: ignore[attr-defined]


async def test_tar_gz_bundle_verifies(federation: Federation) -> None:
    await _logged(federation, 3)
    _verify(await _export(federation, "log.tar.gz"), federation)


async def _rehash_from(fed: Federation, seq: int) -> None:
    """What someone with database access does: recompute the chain after an edit."""
    async with fed.engine.begin() as conn:
        rows = (await conn.execute(
            select(AuditRow.__table__).where(AuditRow.seq >= seq).order_by(AuditRow.seq))).all()
        prev = (await conn.execute(
            select(AuditRow.entry_hash).where(AuditRow.seq == seq - 1))).scalar() or "0" * 64
        for row in rows:
            fields = {k: row._mapping[k] for k in HASHED_FIELDS}
            fields["prev_hash"] = prev
            new = entry_hash(prev, fields)
            await conn.execute(update(AuditRow).where(AuditRow.id == row.id)
                               .values(prev_hash=prev, entry_hash=new))
            prev = new
        await conn.execute(update(ChainHead).values(entry_hash=prev))


async def test_a_log_written_across_the_format_upgrade_verifies(federation: Federation) -> None:
    # Rows 1-4 as a node wrote them before rows carried a format (rule 1), then rule 2.
    await federation.exchange(7)
    async with federation.engine.begin() as conn:
        await conn.execute(update(AuditRow).where(AuditRow.seq <= 4).values(format=None))
    await _rehash_from(federation, 1)
    assert await federation.checkpointer.checkpoint() is not None
    assert _verify(await _export(federation), federation).rows == 7  # type: ignore[attr-defined]


@pytest.mark.parametrize("forged", [None, 3])
async def test_a_row_moved_to_another_format_is_caught(
    federation: Federation, forged: int | None
) -> None:
    # Format 1 would drop the format field from the hash; 3 names no rule.
    await _logged(federation)
    async with federation.engine.begin() as conn:
        await conn.execute(update(AuditRow).where(AuditRow.seq == 5).values(format=forged))
    _fails(await _export(federation), federation, "auditor.row_invalid", 5)


async def test_edited_row(federation: Federation) -> None:
    await _logged(federation)
    async with federation.engine.begin() as conn:
        await conn.execute(update(AuditRow).where(AuditRow.seq == 4).values(client="EE/X/1/evil"))
    _fails(await _export(federation), federation, "auditor.row_invalid", 4)


async def test_deleted_row(federation: Federation) -> None:
    await _logged(federation)
    async with federation.engine.begin() as conn:
        await conn.execute(delete(AuditRow).where(AuditRow.seq == 5))
    _fails(await _export(federation), federation, "auditor.chain_broken", 6)


async def test_inserted_row(federation: Federation) -> None:
    await _logged(federation)
    async with federation.engine.begin() as conn:
        await conn.execute(update(AuditRow).where(AuditRow.seq >= 7).values(seq=AuditRow.seq + 100))
        await conn.execute(
            update(AuditRow).where(AuditRow.seq >= 107).values(seq=AuditRow.seq - 99)
        )
        row = (await conn.execute(select(AuditRow.__table__).where(AuditRow.seq == 6))).one()
        fields = {k: row._mapping[k] for k in HASHED_FIELDS}
        fields.update(seq=7, message_id="forged", prev_hash=row.entry_hash)
        await conn.execute(AuditRow.__table__.insert().values(
            **fields, entry_hash=entry_hash(row.entry_hash, fields)))
    _fails(await _export(federation), federation, "auditor.chain_broken", 8)


async def test_swapped_rows(federation: Federation) -> None:
    await _logged(federation)
    async with federation.engine.begin() as conn:
        await conn.execute(update(AuditRow).where(AuditRow.seq == 3).values(seq=-3))
        await conn.execute(update(AuditRow).where(AuditRow.seq == 4).values(seq=3))
        await conn.execute(update(AuditRow).where(AuditRow.seq == -3).values(seq=4))
    failure = _fails(await _export(federation), federation, "auditor.chain_broken", 3)
    assert "prev_hash" in failure.message


async def test_truncated_tail(federation: Federation) -> None:
    await _logged(federation)
    async with federation.engine.begin() as conn:
        await conn.execute(delete(AuditRow).where(AuditRow.seq > 7))
    _fails(await _export(federation), federation, "auditor.truncated", 8)


async def test_recomputed_chain(federation: Federation) -> None:
    await _logged(federation)
    async with federation.engine.begin() as conn:
        await conn.execute(update(AuditRow).where(AuditRow.seq == 2).values(status=404))
    await _rehash_from(federation, 2)
    failure = _fails(await _export(federation), federation, "auditor.checkpoint_mismatch")
    assert "10 rows" in failure.message


async def test_recomputed_chain_with_new_checkpoints(federation: Federation) -> None:
    """Rewriting rows and checkpoints: the witness refuses, so nothing is cosigned."""
    await _logged(federation)
    async with federation.engine.begin() as conn:
        await conn.execute(update(AuditRow).where(AuditRow.seq == 2).values(status=404))
        await conn.execute(delete(CheckpointRow))
    await _rehash_from(federation, 2)
    await federation.exchange(2)
    made = await federation.checkpointer.checkpoint()
    assert made is not None
    assert made["cosignature"] is None
    _fails(await _export(federation), federation, "auditor.not_cosigned")


async def test_rolled_back_log(federation: Federation) -> None:
    await _logged(federation, 5)
    snapshot = await _export(federation, "old")
    await _logged(federation, 5)
    state = await federation.witness.last_cosigned(federation.node_id)
    assert state is not None
    assert state["tree_size"] == 10
    # The old export verifies by itself; against the witness's state it is caught.
    _verify(snapshot, federation)
    with pytest.raises(VerificationFailed) as info:
        _verify(snapshot, federation, witness_state=state)
    assert info.value.code == "auditor.witness_mismatch"
    # Restored from a backup and written on: the witness refuses the diverging tree.
    async with federation.engine.begin() as conn:
        await conn.execute(delete(AuditRow).where(AuditRow.seq > 5))
        await conn.execute(delete(CheckpointRow).where(CheckpointRow.tree_size > 5))
        head = (await conn.execute(select(AuditRow.entry_hash).where(AuditRow.seq == 5))).scalar()
        await conn.execute(update(ChainHead).values(seq=5, entry_hash=head))
    await federation.exchange(7)
    made = await federation.checkpointer.checkpoint()
    assert made is not None
    assert made["cosignature"] is None
    _fails(await _export(federation, "rolled"), federation, "auditor.not_cosigned")


async def test_bundle_damage_is_caught(federation: Federation) -> None:
    await _logged(federation, 3)
    path = await _export(federation)
    with (path / "rows.jsonl").open("a") as handle:
        handle.write("{}\n")
    from gateway.auditor import BundleInvalid

    with pytest.raises(BundleInvalid):
        read_bundle(path)


async def test_unstamped_checkpoint_needs_permission(federation: Federation) -> None:
    await federation.exchange(3)
    federation.checkpointer._timestamper = None
    await federation.checkpointer.checkpoint()
    path = await _export(federation)
    _fails(path, federation, "auditor.not_timestamped")
    report = _verify(path, federation, allow_unstamped=True)
    assert any("time-stamped" in w for w in report.warnings)  # type: ignore[attr-defined]


async def test_no_checkpoint_is_an_error(federation: Federation) -> None:
    await federation.exchange(3)
    _fails(await _export(federation), federation, "auditor.no_checkpoint")


async def test_wrong_anchor_is_refused(federation: Federation) -> None:
    await _logged(federation, 2)
    path = await _export(federation)
    from member_registry.anchor import Anchor
    from member_registry.signing import generate_signing_identity

    _, other = generate_signing_identity("EE", datetime.now(UTC))
    wrong = Anchor("EE", datetime.now(UTC), ("http://x/",), (other,))
    with pytest.raises(VerificationFailed) as info:
        verify_bundles([read_bundle(path)], anchor=wrong, now=datetime.now(UTC))
    assert info.value.code == "auditor.configuration_invalid"

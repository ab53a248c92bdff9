"""The start-up check: a chain rewritten or rolled back while the node was down
disagrees with what the witness cosigned, and the node is told why."""

from __future__ import annotations

import json

import pytest
from conftest import Federation
from sqlalchemy import delete, select, update

from gateway.audit.hashing import entry_hash
from gateway.audit.integrity import (
    ChainMismatch,
    WitnessedState,
    check_chain,
    remember_cosigned,
    witnessed_states,
)
from gateway.audit.models import HASHED_FIELDS, AuditRow, ChainHead, CheckpointRow


async def _witnessed(fed: Federation) -> WitnessedState:
    state = await fed.witness.last_cosigned(fed.node_id)
    assert state is not None
    return WitnessedState(state["tree_size"], state["root"], state["cosignature"], "the witness")


async def _logged(fed: Federation, rows: int) -> None:
    await fed.exchange(rows)
    assert (await fed.checkpointer.checkpoint() or {}).get("cosignature")


async def _mismatch(fed: Federation, states: list[WitnessedState], words: str) -> None:
    with pytest.raises(ChainMismatch) as caught:
        await check_chain(fed.engine, fed.node_id, fed.anchor, states)
    assert caught.value.code == "audit.chain_mismatch"
    assert words in caught.value.message, caught.value.message


async def _roll_back_to(fed: Federation, seq: int) -> None:
    """Restoring an older backup: later rows, their checkpoints and the head go back."""
    async with fed.engine.begin() as conn:
        await conn.execute(delete(AuditRow).where(AuditRow.seq > seq))
        await conn.execute(delete(CheckpointRow).where(CheckpointRow.tree_size > seq))
        last = (await conn.execute(select(AuditRow.entry_hash).where(AuditRow.seq == seq))).scalar()
        await conn.execute(update(ChainHead).values(seq=seq, entry_hash=last))


async def _rewrite_row(fed: Federation, seq: int) -> None:
    """Editing a row and recomputing every hash after it, the head included."""
    async with fed.engine.begin() as conn:
        await conn.execute(update(AuditRow).where(AuditRow.seq == seq).values(status=404))
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


async def test_an_intact_chain_agrees_with_every_witnessed_state(federation: Federation) -> None:
    assert await check_chain(federation.engine, federation.node_id, federation.anchor, []) is None
    await _logged(federation, 4)
    await federation.exchange(3)  # rows after the last checkpoint are fine
    states = [await _witnessed(federation), *await witnessed_states(
        federation.engine, federation.node_id, state_file=federation.directory / "none.json",
        witness_url=None, session=None,
    )]  # fmt: skip
    assert [state.source for state in states] == ["the witness", "the database's checkpoints"]
    assert await check_chain(
        federation.engine, federation.node_id, federation.anchor, states
    ) == 4


async def test_a_rolled_back_chain_is_caught_by_the_witness_state(
    federation: Federation,
) -> None:
    await _logged(federation, 5)
    await _logged(federation, 5)
    await _roll_back_to(federation, 5)
    # The database's own checkpoints went back with it: only the witness knows.
    local = await witnessed_states(
        federation.engine, federation.node_id, state_file=federation.directory / "none.json",
        witness_url=None, session=None,
    )  # fmt: skip
    assert await check_chain(federation.engine, federation.node_id, federation.anchor, local) == 5
    await _mismatch(federation, [await _witnessed(federation)], "truncated or rolled back")


async def test_a_rewritten_chain_is_caught_even_with_its_hashes_recomputed(
    federation: Federation,
) -> None:
    await _logged(federation, 6)
    await _rewrite_row(federation, 3)
    await _mismatch(federation, [await _witnessed(federation)], "rewritten or rolled back")


async def test_rows_removed_behind_the_chain_head_are_caught(federation: Federation) -> None:
    await _logged(federation, 6)
    async with federation.engine.begin() as conn:
        await conn.execute(delete(AuditRow).where(AuditRow.seq > 6))
    await federation.exchange(2)
    async with federation.engine.begin() as conn:
        await conn.execute(delete(AuditRow).where(AuditRow.seq == 8))
    await _mismatch(federation, [await _witnessed(federation)], "the chain head says row 8")


async def test_a_forged_witnessed_state_is_refused(federation: Federation) -> None:
    await _logged(federation, 3)
    real = await _witnessed(federation)
    forged = WitnessedState(real.tree_size, "ab" * 32, real.cosignature, "a state file")
    await _mismatch(federation, [forged], "does not verify")


async def test_the_node_keeps_the_newest_cosigned_state_beside_its_database(
    federation: Federation,
) -> None:
    path = federation.directory / "audit-witnessed.json"
    await _logged(federation, 3)
    first = await _witnessed(federation)
    remember_cosigned(path, first.cosignature, federation.anchor, federation.node_id)
    await _logged(federation, 2)
    second = await _witnessed(federation)
    remember_cosigned(path, second.cosignature, federation.anchor, federation.node_id)
    remember_cosigned(path, first.cosignature, federation.anchor, federation.node_id)  # older
    kept = json.loads(path.read_text())
    assert (kept["tree_size"], kept["root"]) == (5, second.root)
    remember_cosigned(path, "not.a.cosignature", federation.anchor, federation.node_id)
    assert json.loads(path.read_text())["tree_size"] == 5
    # Rolled back with its checkpoints, the file still tells.
    await _roll_back_to(federation, 3)
    states = await witnessed_states(
        federation.engine, federation.node_id, state_file=path, witness_url=None, session=None
    )
    await _mismatch(federation, states, "audit-witnessed.json holds a cosigned state of 5 rows")

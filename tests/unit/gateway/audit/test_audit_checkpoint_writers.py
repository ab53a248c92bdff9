"""Several processes of one node checkpoint one at a time, and every checkpoint ends cosigned.

A second process is a second :class:`Checkpointer` on its own engine over the
same database. The witness is paused: each cosigning request waits until the
test lets it through, in the order the requests arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Federation
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.checkpoints import WitnessRequest
from gateway.audit.errors import CheckpointError, WitnessRefused
from gateway.audit.export import collect_bundle, write_bundle
from gateway.audit.models import CheckpointRow
from gateway.auditor import VerificationFailed, read_bundle, verify_bundles
from gateway.db import create_engine


class PausedWitness:
    """Holds every cosigning request until released, first come first released."""

    def __init__(self, federation: Federation) -> None:
        self._federation = federation
        self.waiting: list[asyncio.Event] = []

    async def cosign(self, request: WitnessRequest) -> str:
        release = asyncio.Event()
        self.waiting.append(release)
        await release.wait()
        return await self._federation.cosign(request)

    async def arrivals(self, count: int, *, or_done: asyncio.Task[object] | None = None) -> None:
        for _ in range(500):  # bounded: 10 s
            if len(self.waiting) >= count or (or_done is not None and or_done.done()):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{count} requests never reached the witness")


@pytest.fixture
async def second_engine(federation: Federation) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(federation.url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _stored(federation: Federation) -> list[tuple[int, bool]]:
    async with federation.engine.connect() as conn:
        rows = await conn.execute(
            select(CheckpointRow.tree_size, CheckpointRow.cosignature).order_by(
                CheckpointRow.tree_size
            )
        )
        return [(size, cosignature is not None) for size, cosignature in rows]


async def _verify_export(federation: Federation, name: str) -> None:
    content = await collect_bundle(
        federation.engine, federation.node_id, globalconf=federation.globalconf,
        certificates_pem=federation.certificate_pem,
    )  # fmt: skip
    out: Path = federation.directory / name
    write_bundle(content, out, now=datetime.now(UTC))
    verify_bundles([read_bundle(out)], anchor=federation.anchor, now=datetime.now(UTC))


async def test_two_processes_racing_a_paused_witness_leave_no_checkpoint_uncosigned(
    federation: Federation, second_engine: AsyncEngine
) -> None:
    witness = PausedWitness(federation)
    first = federation.checkpointer_on(federation.engine, cosigner=witness.cosign)
    second = federation.checkpointer_on(second_engine, cosigner=witness.cosign)
    await federation.exchange(3)
    first_round = asyncio.create_task(first.checkpoint())
    await witness.arrivals(1)
    await federation.exchange(2)
    second_round: asyncio.Task[object] = asyncio.create_task(second.checkpoint())
    await witness.arrivals(2, or_done=second_round)
    for release in list(witness.waiting):  # in arrival order: the first process wins
        release.set()
        await asyncio.sleep(0)
    made = await asyncio.wait_for(first_round, 30)
    await asyncio.wait_for(second_round, 30)
    assert made is not None
    assert made["tree_size"] == 3
    assert await _stored(federation) == [(3, True)]  # the second process waited its turn
    await _verify_export(federation, "after-race")

    witness.waiting.clear()
    later = asyncio.create_task(second.checkpoint())
    await witness.arrivals(1)
    witness.waiting[0].set()
    assert (await asyncio.wait_for(later, 30) or {}).get("tree_size") == 5
    assert await _stored(federation) == [(3, True), (5, True)]
    await _verify_export(federation, "next-round")


async def test_the_newest_checkpoint_left_uncosigned_is_cosigned_by_the_next_round(
    federation: Federation,
) -> None:
    async def unreachable(_: WitnessRequest) -> str:
        raise WitnessRefused("the witness is unreachable")

    await federation.exchange(4)
    down = federation.checkpointer_on(federation.engine, cosigner=unreachable)
    made = await down.checkpoint()
    assert made is not None
    assert made["cosignature"] is None
    with pytest.raises(VerificationFailed) as failure:
        await _verify_export(federation, "uncosigned")
    assert failure.value.code == "auditor.not_cosigned"

    repaired = await federation.checkpointer.checkpoint()  # no new rows
    assert repaired is not None
    assert repaired["tree_size"] == 4
    assert repaired["cosignature"] is not None
    assert await _stored(federation) == [(4, True)]
    await _verify_export(federation, "repaired")
    assert await federation.checkpointer.checkpoint() is None  # nothing left to do


async def test_a_cosignature_whose_row_was_lost_does_not_wedge_the_node(
    federation: Federation,
) -> None:
    # The witness cosigned size 3, but the row stored for size 3 has no cosignature
    # (the cosigned twin lost the insert race), so the database's idea of the
    # witness's state is behind the witness's own.
    await federation.exchange(3)
    assert await federation.checkpointer.checkpoint() is not None
    async with federation.engine.begin() as conn:
        await conn.execute(update(CheckpointRow).values(cosignature=None))
    repaired = await federation.checkpointer.checkpoint()
    assert repaired is not None
    assert repaired["cosignature"] is not None
    await federation.exchange(2)
    async with federation.engine.begin() as conn:
        await conn.execute(update(CheckpointRow).values(cosignature=None))
    made = await federation.checkpointer.checkpoint()
    assert made is not None
    assert made["cosignature"] is not None
    await _verify_export(federation, "unwedged")


async def test_a_lease_left_by_a_dead_process_lapses(
    federation: Federation, second_engine: AsyncEngine
) -> None:
    await federation.exchange(2)
    dead = federation.checkpointer_on(federation.engine, lease_s=60)
    assert await dead._take_lease()  # and never released: the process died mid-round
    alive = federation.checkpointer_on(second_engine, lease_s=60)
    assert await alive.checkpoint() is None
    with pytest.raises(CheckpointError, match="another process"):
        await alive.checkpoint(wait_s=0.3)
    assert await _stored(federation) == []
    later = federation.checkpointer_on(
        second_engine, clock=lambda: datetime.now(UTC) + timedelta(seconds=61)
    )
    made = await later.checkpoint()
    assert made is not None
    assert made["cosignature"] is not None
    assert await dead.checkpoint() is None  # its lease was taken over; nothing new anyway


async def test_stop_ends_the_loop_even_when_a_round_swallowed_the_cancellation(
    federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver may turn the cancellation into its own error mid-round; stop() still ends."""
    entered = asyncio.Event()

    async def swallowing_round(**_: object) -> None:
        entered.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return None  # as a lease release that failed on a cancelled connection does

    checkpointer = federation.checkpointer_on(federation.engine)
    monkeypatch.setattr(checkpointer, "checkpoint", swallowing_round)
    checkpointer.start(0.01)
    await asyncio.wait_for(entered.wait(), 10)
    stopping = asyncio.create_task(checkpointer.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    if stopping not in done:
        stopping.cancel()
        pytest.fail("stop() did not end the checkpoint loop")

"""Per-stage latency: stages are observed only inside an exchange being timed."""

from __future__ import annotations

import asyncio

import pytest

from gateway.metrics import NodeMetrics, StageTimer, stage, timing_stages


def _count(metrics: NodeMetrics, role: str, name: str) -> float:
    value = metrics.registry.get_sample_value(
        "renkei_stage_seconds_count", {"role": role, "stage": name}
    )
    return value or 0.0


def test_stages_inside_a_timed_exchange_are_observed() -> None:
    metrics = NodeMetrics()
    with timing_stages(StageTimer(metrics, "peer")):
        with stage("verify"):
            pass
        with pytest.raises(ValueError, match="timed too"), stage("backend"):
            raise ValueError("a failing stage is timed too")
    assert _count(metrics, "peer", "verify") == 1
    assert _count(metrics, "peer", "backend") == 1


def test_stages_outside_a_timed_exchange_are_ignored() -> None:
    metrics = NodeMetrics()
    with stage("sign"):
        pass
    assert _count(metrics, "client", "sign") == 0


async def test_concurrent_exchanges_keep_their_own_timer() -> None:
    metrics = NodeMetrics()

    async def exchange(role: str) -> None:
        with timing_stages(StageTimer(metrics, role)):
            await asyncio.sleep(0)
            with stage("audit"):
                await asyncio.sleep(0)

    await asyncio.gather(exchange("client"), exchange("peer"), exchange("peer"))
    assert _count(metrics, "client", "audit") == 1
    assert _count(metrics, "peer", "audit") == 2

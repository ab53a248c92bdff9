"""A 30-second soak: traffic while the provider, the consumer and the registry are killed."""

from __future__ import annotations

from pathlib import Path

from tests.soak.soak import run_soak


async def test_nothing_acknowledged_is_lost_under_faults(tmp_path: Path) -> None:
    report = await run_soak(
        tmp_path / "sandbox", duration_s=30, rate=8, fault_interval_s=7
    )
    summary = report.to_json()
    assert summary["faults_total"] >= 3, summary
    assert summary["exchanges_lost"] == 0, summary
    assert summary["rows_mismatched"] == 0, summary
    assert report.ok, summary

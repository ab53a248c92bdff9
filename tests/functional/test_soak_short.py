"""A short soak: traffic while the provider, the consumer and the registry are killed.

The soak runs on past its 30 s until each of the three faults was injected, so the
assertions are about loss, not about how many faults a busy machine fitted in.
"""

from __future__ import annotations

from pathlib import Path

from tests.soak.soak import run_soak


async def test_nothing_acknowledged_is_lost_under_faults(tmp_path: Path) -> None:
    report = await run_soak(
        tmp_path / "sandbox", duration_s=30, rate=8, fault_interval_s=7, min_faults=3
    )
    summary = report.to_json()
    assert summary["faults_total"] >= 3, summary
    assert summary["exchanges_lost"] == 0, summary
    assert summary["rows_mismatched"] == 0, summary
    assert report.ok, summary

"""The results table (plain text and Markdown) and the docs page section it fills."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import LoadResult

__all__ = ["Measured", "machine", "markdown_table", "replace_section", "text_table"]

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Measured:
    scenario: str
    baseline: str  # the bare-chain scenario this one is compared with
    load: LoadResult
    cpu_ms: tuple[tuple[str, float], ...]  # (process role, CPU ms per request)

    @property
    def cpu_total_ms(self) -> float:
        return sum(ms for _, ms in self.cpu_ms)


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPU ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, load average before the run {load}"
    )


def _rows(results: list[Measured]) -> list[list[str]]:
    by_key = {(m.scenario, m.load.connections): m for m in results}
    rows = []
    for m in results:
        base = by_key.get((m.baseline, m.load.connections))
        ratio = f"{m.load.rps / base.load.rps:.2f}x" if base and base.load.rps else "-"
        cpu = " + ".join(f"{role} {ms:.2f}" for role, ms in m.cpu_ms)
        rows.append(
            [
                m.scenario,
                str(m.load.connections),
                f"{m.load.rps:,.0f}",
                ratio,
                f"{m.load.p50_ms:.2f}",
                f"{m.load.p99_ms:.2f}",
                f"{m.cpu_total_ms:.2f}",
                cpu,
                str(m.load.failures),
            ]
        )
    return rows


_HEADER = [
    "scenario", "conns", "req/s", "vs bare", "p50 ms", "p99 ms", "CPU ms/req",
    "CPU ms/req per process", "errors",
]


def text_table(results: list[Measured]) -> str:
    rows = [_HEADER, *_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(results: list[Measured]) -> str:
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(results)]
    return "\n".join(lines)


def replace_section(page: Path, content: str) -> bool:
    """Put ``content`` between the page's result markers; False if it has none."""
    if not page.exists():
        return False
    text = page.read_text("utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        return False
    page.write_text(pattern.sub(lambda _: f"{START}\n{content}\n{END}", text), "utf-8")
    return True

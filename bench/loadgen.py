"""The load generator: ``wrk`` when installed, else a bounded aiohttp generator.

Both report the same numbers, so a run compares scenarios with one tool.
The fallback is slower than wrk (it is Python sharing the same cores), so
absolute figures from it are lower; ratios measured in one run still hold.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

import aiohttp

__all__ = ["LoadResult", "python_load", "run_load", "wrk_available", "wrk_load"]


@dataclass(frozen=True)
class LoadResult:
    tool: str
    connections: int
    requests: int
    seconds: float
    failures: int  # non-2xx responses and socket errors
    p50_ms: float
    p99_ms: float
    raw: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"wrk output has no {percentile}% latency")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(text: str, connections: int) -> LoadResult:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if done is None:
        raise ValueError("wrk output has no request count")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    failures = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        failures += int(non2xx.group(1))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if errors:
        failures += sum(int(g) for g in errors.groups())
    return LoadResult(
        tool="wrk",
        connections=connections,
        requests=int(done.group(1)),
        seconds=float(done.group(2)) * scale,
        failures=failures,
        p50_ms=_latency_ms(text, "50"),
        p99_ms=_latency_ms(text, "99"),
        raw=text,
    )


def wrk_load(
    url: str, headers: dict[str, str], *, connections: int, duration_s: float, threads: int = 2
) -> LoadResult:
    argv = [
        "wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{duration_s:g}s",
        "--latency", "--timeout", "10s",
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, check=True)  # noqa: S603
    return parse_wrk(done.stdout, connections)


def _percentile(sorted_ms: list[float], fraction: float) -> float:
    if not sorted_ms:
        return 0.0
    index = min(len(sorted_ms) - 1, max(0, round(fraction * len(sorted_ms)) - 1))
    return sorted_ms[index]


async def _python_load(
    url: str,
    headers: dict[str, str],
    connections: int,
    duration_s: float,
    max_requests: int | None,
) -> LoadResult:
    latencies: list[float] = []
    failures = 0
    issued = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        deadline = start + duration_s

        async def worker() -> None:
            nonlocal failures, issued
            while time.perf_counter() < deadline and (
                max_requests is None or issued < max_requests
            ):
                issued += 1
                began = time.perf_counter()
                try:
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                        if response.status >= 400:
                            failures += 1
                except aiohttp.ClientError:
                    failures += 1
                latencies.append((time.perf_counter() - began) * 1000)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return LoadResult(
        tool="python",
        connections=connections,
        requests=len(latencies),
        seconds=elapsed,
        failures=failures,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        raw=f"python load generator: {len(latencies)} requests in {elapsed:.2f}s",
    )


def python_load(
    url: str,
    headers: dict[str, str],
    *,
    connections: int,
    duration_s: float,
    max_requests: int | None = None,
) -> LoadResult:
    """The fallback generator: ``connections`` workers, each one request at a time."""
    return asyncio.run(_python_load(url, headers, connections, duration_s, max_requests))


def run_load(
    url: str, headers: dict[str, str], *, connections: int, duration_s: float, tool: str
) -> LoadResult:
    if tool == "wrk":
        return wrk_load(url, headers, connections=connections, duration_s=duration_s)
    return python_load(url, headers, connections=connections, duration_s=duration_s)

"""``make bench-large``: 100 MB and 1 GB bodies streamed both ways through two nodes.

For each size: a download (provider backend → node B → node A → client) and
an upload (client → node A → node B → backend), through the bare chain and
through Renkei, with throughput and each node's peak memory (VmHWM from
/proc/<pid>/status, which only grows, so it is the peak over the whole run
up to that row). Target: at least 300 MB/s, each node under 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench.federation import BLOB, CLIENT
from bench.procs import peak_rss_mb
from bench.report import machine
from bench.stack import Stack, running_stack

__all__ = ["Transfer", "main"]

_CHUNK = 1024 * 1024
_SIZES = {"100M": 100 * 1000 * 1000, "1G": 1000 * 1000 * 1000}


@dataclass(frozen=True)
class Transfer:
    path: str
    direction: str
    size: int
    seconds: float
    status: int
    peak_mb: dict[str, float]

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / 1e6 if self.seconds else 0.0


async def _body(size: int) -> AsyncIterator[bytes]:
    block = b"\xa5" * _CHUNK
    left = size
    while left > 0:
        yield block[: min(left, _CHUNK)]
        left -= _CHUNK


async def _download(session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                    size: int) -> tuple[int, float]:
    began = time.perf_counter()
    received = 0
    async with session.get(f"{url}?size={size}", headers=headers) as response:
        async for chunk in response.content.iter_chunked(_CHUNK):
            received += len(chunk)
        status = response.status
    if status == 200 and received != size:
        raise RuntimeError(f"download received {received} of {size} bytes")
    return status, time.perf_counter() - began


async def _upload(session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                  size: int) -> tuple[int, float]:
    began = time.perf_counter()
    async with session.post(
        url, data=_body(size), headers={**headers, "Content-Length": str(size),
                                        "Content-Type": "application/octet-stream"}
    ) as response:
        text = await response.text()
        status = response.status
    if status == 200 and json.loads(text).get("received") != size:
        raise RuntimeError(f"upload: the backend did not receive {size} bytes: {text[:200]}")
    return status, time.perf_counter() - began


async def _measure(stack: Stack, sizes: list[int]) -> list[Transfer]:
    fed = stack.federation
    paths = {
        "bare chain": (f"http://127.0.0.1:{stack.hop1.port}/blob", {},
                       {"hop 1": stack.hop1.pid, "hop 2": stack.hop2.pid}),
        "renkei": (f"{fed.consumer_client_url}/r1/{BLOB}", {"X-Road-Client": CLIENT},
                   {"node A": fed.consumer_pid, "node B": fed.provider_pid}),
    }
    results = []
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        for size in sizes:
            for name, (url, headers, pids) in paths.items():
                for direction, move in (("download", _download), ("upload", _upload)):
                    status, seconds = await move(session, url, headers, size)
                    peaks = {role: peak_rss_mb(pid) for role, pid in pids.items()}
                    transfer = Transfer(name, direction, size, seconds, status, peaks)
                    results.append(transfer)
                    memory = ", ".join(f"{r} {mb:.0f} MB" for r, mb in peaks.items())
                    print(f"  {name:<10} {direction:<8} {size / 1e6:6.0f} MB  "
                          f"{transfer.mb_per_s:7.1f} MB/s  status {status}  peak: {memory}",
                          flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.large", description=__doc__)
    parser.add_argument("--sizes", default="100M,1G", help="comma-separated: 100M, 1G")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    sizes = [_SIZES[s] for s in args.sizes.split(",")]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) / f"bench-large-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    where = machine()
    print(f"bench-large: {where}; raw output in {out}", flush=True)
    with tempfile.TemporaryDirectory(prefix="renkei-bench-large-") as work, running_stack(
        Path(work)
    ) as stack:
        results = asyncio.run(_measure(stack, sizes))
    (out / "results.json").write_text(
        json.dumps({"machine": where, "command": "python -m bench.large " + " ".join(
            argv if argv is not None else sys.argv[1:]),
            "results": [{**asdict(t), "mb_per_s": t.mb_per_s} for t in results]}, indent=2),
        "utf-8",
    )
    failed = [t for t in results if t.status != 200]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

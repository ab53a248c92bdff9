"""Cost of audit writing per exchange: rows appended through the group-committing writer.

    .venv/bin/python bench/audit_write.py [--rows 5000] [--concurrency 64] [--database URL]

Prints rows per second and the mean and p99 latency of ``append()`` (time from
queueing a row to its commit), and the cost of one checkpoint over all rows.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gateway.audit.models import AuditEntry
from gateway.audit.writer import AuditWriter
from gateway.db import Base, create_engine
from member_registry.merkle import leaf_hash, root_from_leaf_hashes


def _entry() -> AuditEntry:
    return AuditEntry(
        role="provider", message_id=secrets.token_hex(16), logged_at=datetime.now(UTC),
        request_id=secrets.token_hex(16), client="EE/GOV/70000002/app",
        service="EE/GOV/70000001/records/patient", method="GET", path="/Patient/1",
        purpose="treatment", subject="EE38001010000", request_hash="x" * 88,
        request_body_sha256="0" * 64, request_signature="s" * 600,
        response_body_sha256="1" * 64, response_signature="r" * 600, status=200,
        consent={"released": ["name"], "withheld": ["telecom"], "consent_ids": ["c1"]},
    )  # fmt: skip


async def bench(url: str, rows: int, concurrency: int) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    writer = AuditWriter(engine, f"EE/GOV/BENCH/{secrets.token_hex(3)}")
    await writer.start()
    latencies: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            await writer.append(_entry())
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(rows // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await writer.stop()
    written = len(latencies)
    latencies.sort()
    print(f"database      {url.split(':')[0]}")
    print(f"rows          {written} with {concurrency} concurrent exchanges")
    print(f"throughput    {written / elapsed:,.0f} rows/s ({elapsed / written * 1e6:.0f} us/row)")
    print(f"append mean   {statistics.mean(latencies) * 1000:.2f} ms")
    print(f"append p99    {latencies[int(written * 0.99) - 1] * 1000:.2f} ms")
    hashes = [leaf_hash(secrets.token_bytes(32)) for _ in range(written)]
    started = time.perf_counter()
    root_from_leaf_hashes(hashes)
    print(f"merkle root   {(time.perf_counter() - started) * 1000:.1f} ms over {written} leaves")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        asyncio.run(bench(url, args.rows, args.concurrency))


if __name__ == "__main__":
    main()

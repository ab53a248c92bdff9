"""``make bench``: the backend, the bare chain and the Renkei path, side by side.

One run, one load generator, the same backend: requests/s at each connection
count, p50/p99 latency, CPU time per request of every process on the path
(utime+stime from /proc before and after), and ratios to the bare chain.
Prints the table, writes raw output to ``bench-results/`` and, with
``--docs``, the results section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.fhir_filter import time_filter
from bench.loadgen import run_load, wrk_available
from bench.procs import cpu_seconds
from bench.report import Measured, machine, markdown_table, replace_section, text_table
from bench.stack import Scenario, running_stack

__all__ = ["main", "measure"]

def _check(scenario: Scenario) -> None:
    """One request first: a scenario that does not answer 200 is not measured."""
    request = urllib.request.Request(scenario.url, headers=scenario.headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{scenario.name}: {exc.code} {exc.read()[:500]!r}") from exc
    if not body:
        raise RuntimeError(f"{scenario.name}: empty body")


def measure(
    scenario: Scenario, connections: int, duration_s: float, tool: str
) -> Measured:
    before = {role: cpu_seconds(pid) for role, pid in scenario.processes}
    load = run_load(
        scenario.url, scenario.headers, connections=connections, duration_s=duration_s, tool=tool
    )
    after = {role: cpu_seconds(pid) for role, pid in scenario.processes}
    requests = max(1, load.requests)
    cpu = tuple(
        (role, (after[role] - before[role]) * 1000 / requests) for role in before
    )
    baseline = "bare chain, FHIR" if "FHIR" in scenario.name else "bare chain"
    return Measured(scenario.name, baseline, load, cpu)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--connections", default="16,64", help="comma-separated counts")
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--out", default="bench-results", help="directory for raw output")
    parser.add_argument("--docs", help="a Markdown page whose results section to rewrite")
    parser.add_argument("--only", help="comma-separated scenario names to run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    tool = ("wrk" if wrk_available() else "python") if args.tool == "auto" else args.tool
    connections = [int(c) for c in args.connections.split(",")]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) / f"bench-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    where = machine()
    command = "python -m bench.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    print(f"bench: {where}; load generator {tool}; raw output in {out}", flush=True)
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="renkei-bench-") as work, running_stack(
        Path(work)
    ) as stack:
        scenarios = stack.scenarios()
        if args.only:
            wanted = {name.strip() for name in args.only.split(",")}
            scenarios = [s for s in scenarios if s.name in wanted]
        for scenario in scenarios:
            _check(scenario)
            if args.warmup > 0:
                run_load(scenario.url, scenario.headers, connections=max(connections),
                         duration_s=args.warmup, tool=tool)
            for count in connections:
                measured = measure(scenario, count, args.duration, tool)
                results.append(measured)
                print(
                    f"  {scenario.name:<22} c={count:<3} {measured.load.rps:8.0f} req/s  "
                    f"p50 {measured.load.p50_ms:6.2f} ms  p99 {measured.load.p99_ms:6.2f} ms",
                    flush=True,
                )
                time.sleep(0.5)
    fhir = time_filter()
    table = text_table(results)
    summary = (
        f"consent filter, {fhir.body_bytes / 1048576:.2f} MiB FHIR Bundle "
        f"({fhir.entries} entries): median {fhir.median_ms:.1f} ms, p90 {fhir.p90_ms:.1f} ms"
    )
    print()
    print(table)
    print(summary)
    (out / "table.txt").write_text(f"{where}\n{command}\n\n{table}\n{summary}\n", "utf-8")
    (out / "raw-load.txt").write_text(
        "\n\n".join(f"== {m.scenario} c={m.load.connections}\n{m.load.raw}" for m in results),
        "utf-8",
    )
    (out / "results.json").write_text(
        json.dumps(
            {
                "machine": where,
                "command": command,
                "tool": tool,
                "results": [
                    {**asdict(m), "rps": m.load.rps, "load": {**asdict(m.load), "raw": None}}
                    for m in results
                ],
                "fhir_filter": asdict(fhir),
            },
            indent=2,
        ),
        "utf-8",
    )
    if args.docs:
        section = "\n".join(
            [
                f"Run {stamp} on {where}; load generator `{tool}`, "
                f"{args.duration:g} s per measurement after a {args.warmup:g} s warm-up.",
                "",
                markdown_table(results),
                "",
                f"Consent filter: {summary.split(', ', 1)[1]}.",
            ]
        )
        if not replace_section(Path(args.docs), section):
            print(f"bench: {args.docs} has no results markers; not rewritten", file=sys.stderr)
    failed = sum(m.load.failures for m in results)
    if failed:
        print(f"bench: {failed} requests failed (see the errors column and raw output)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

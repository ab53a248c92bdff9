"""Where the time goes: py-spy samples of the nodes under load, summarised.

``python -m bench.profile [--duration 10] [--connections 64]`` starts the
stack, puts wrk load on the Renkei path while ``py-spy record`` samples both
nodes (idle threads excluded), and prints the top functions by inclusive
and by own (leaf) samples. ``python -m bench.profile --summarise FILE`` only
summarises an existing raw (collapsed-stack) file. py-spy is a bench-only
tool: ``.venv/bin/pip install py-spy``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.loadgen import run_load, wrk_available
from bench.stack import running_stack

__all__ = ["main", "summarise"]


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/module.py:123)".
    name, _, where = frame.partition(" (")
    module = where.rsplit(":", 1)[0]
    root = f"{Path(__file__).resolve().parents[1]}/"
    for marker in ("site-packages/", "/lib/python3.11/", root):
        if marker in module:
            module = module.split(marker, 1)[1]
    return f"{name} ({module})"


def summarise(raw: Path, top: int = 15) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text("utf-8", "replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")[1:]]  # first is the thread
        total += count
        for name in set(frames):
            inclusive[name] += count
        if frames:
            own[frames[-1]] += count
    lines = [f"{raw.name}: {total} samples (busy threads only)", "", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "own (leaf):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def _record(pid: int, out: Path, duration_s: float) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(  # noqa: S603 - the bench's own profiler
        [py_spy, "record", "-p", str(pid), "-d", f"{duration_s:g}", "-r", "200",
         "-f", "raw", "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--scenario", default="renkei")
    parser.add_argument("--out", default="bench-results/profile")
    parser.add_argument("--summarise", help="summarise this raw py-spy file and stop")
    args = parser.parse_args(argv)
    if args.summarise:
        print(summarise(Path(args.summarise)))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tool = "wrk" if wrk_available() else "python"
    with tempfile.TemporaryDirectory(prefix="renkei-profile-") as work, running_stack(
        Path(work)
    ) as stack:
        scenario = next(s for s in stack.scenarios() if s.name == args.scenario)
        run_load(scenario.url, scenario.headers, connections=args.connections,
                 duration_s=2, tool=tool)
        recorders = {
            role: (_record(pid, out / f"{role.replace(' ', '-')}.txt", args.duration + 1))
            for role, pid in scenario.processes
            if role.startswith(("node", "hop"))
        }
        load = run_load(scenario.url, scenario.headers, connections=args.connections,
                        duration_s=args.duration, tool=tool)
        for recorder in recorders.values():
            recorder.wait(timeout=60)
    print(f"{scenario.name}, {args.connections} connections: {load.rps:.0f} req/s, "
          f"p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms\n")
    for role in recorders:
        print(summarise(out / f"{role.replace(' ', '-')}.txt"))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

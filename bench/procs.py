"""Child processes of a bench run: started with their pids, measured, stopped by pid."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "REPO",
    "Child",
    "cpu_seconds",
    "descendants",
    "peak_rss_mb",
    "pid_listening_on",
    "start_child",
]

REPO = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc/<pid>/stat, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; the fields after it are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set size) of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


@dataclass
class Child:
    """One bench process; ``port`` is what it printed as ``PORT <n>`` once listening."""

    name: str
    process: subprocess.Popen[bytes]
    port: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_child(name: str, module: str, *argv: str, log_dir: Path, timeout_s: float = 30) -> Child:
    """Run ``python -m module argv`` and wait for its ``PORT <n>`` line on stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    log = (log_dir / f"{name}.log").open("ab")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", module, *argv],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    log.close()
    child = Child(name, process)
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    buffer = b""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}; see {name}.log")
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            buffer += os.read(process.stdout.fileno(), 4096)
            for line in buffer.decode().splitlines():
                if line.startswith("PORT "):
                    child.port = int(line.split()[1])
                    return child
    child.stop()
    raise RuntimeError(f"{name} did not start within {timeout_s:.0f} s")


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    return inodes


def pid_listening_on(port: int, candidates: list[int] | None = None) -> int:
    """The pid of the process listening on TCP ``port`` (found through /proc)."""
    inodes = _listening_inodes(port)
    pids = candidates if candidates is not None else [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
    ]
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return pid
    raise RuntimeError(f"no process of ours listens on port {port}")


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren, ... (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    queue = [pid]
    while queue:
        current = queue.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in task.read_text().split():
                    found.append(int(child))
                    queue.append(int(child))
    return found

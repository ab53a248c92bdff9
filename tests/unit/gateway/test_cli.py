"""The ``renkei`` command for people and scripts: lazy imports, --json, quiet endings."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from gateway.cli import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, build_parser

RENKEI = [sys.executable, "-m", "gateway.cli"]


def test_help_loads_no_database_http_or_crypto_library() -> None:
    probe = (
        "import sys; from gateway.cli import build_parser; build_parser().format_help();"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'sqlalchemy', 'aiohttp', 'cryptography', 'alembic', 'asyncpg', 'rich'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.update(_leaves(child, (*path, name)))
    if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
        found[" ".join(path)] = parser
    return found


def test_every_management_command_has_json() -> None:
    leaves = _leaves(build_parser())
    managed = [
        name for name in leaves
        if name.split()[0] in ("consent", "access", "service", "client")
        or name in ("policy apply", "policy check", "node maintenance", "config check",
                    "db upgrade", "token issue")
    ]  # fmt: skip
    assert len(managed) >= 24, managed
    for name in managed:
        options = {o for a in leaves[name]._actions for o in a.option_strings}
        assert "--json" in options, name


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    policy = tmp_path / "big.toml"
    policy.write_text("".join(
        f'[[access]]\nservice = "RENKEI/GOV/B/EHR/s{n}"\ngrantee = "RENKEI/GOV/A/EHR"\n'
        for n in range(5000)
    ))  # fmt: skip
    read_end, write_end = os.pipe()
    reader = subprocess.Popen(["head", "-n", "1"], stdin=read_end, stdout=subprocess.PIPE)
    writer = subprocess.Popen(
        [*RENKEI, "policy", "check", str(policy)], stdout=write_end, stderr=subprocess.PIPE
    )
    os.close(read_end)
    os.close(write_end)
    first, _ = reader.communicate(timeout=60)
    _, errors = writer.communicate(timeout=60)
    assert first.decode().endswith(": valid\n")
    assert errors.decode() == ""  # no "Broken pipe", no traceback
    assert writer.returncode == EXIT_BROKEN_PIPE


def test_ctrl_c_ends_a_waiting_command_quietly(tmp_path: Path) -> None:
    silent = socket.socket()  # accepts connections (the backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        command = subprocess.Popen(
            [*RENKEI, "service", "list", "--url", url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={"RENKEI_TOKEN": "x", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        time.sleep(3)  # it is waiting for the answer
        command.send_signal(signal.SIGINT)
        _, errors = command.communicate(timeout=30)
    finally:
        silent.close()
    assert command.returncode == EXIT_INTERRUPTED
    assert "Traceback" not in errors.decode()


def test_policy_apply_answers_json_for_scripts(tmp_path: Path) -> None:
    from tests.unit.gateway.node_files import node_files

    config = node_files(tmp_path)
    policy = tmp_path / "p.toml"
    policy.write_text('[[purpose]]\nconsumer = "RENKEI/GOV/HOSP-A/EHR"\ncode = "t"\ntext = "T"\n')
    result = subprocess.run(
        [*RENKEI, "policy", "apply", str(policy), "--config", str(config), "--json"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changes"][0]["kind"] == "purpose"

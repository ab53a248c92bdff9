"""A node checks files, keys, ports and database before it writes anything."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.preflight import (
    EXIT_CONFIG,
    EXIT_DATABASE,
    EXIT_KEYS,
    EXIT_PORT,
    StartupError,
    bind_listeners,
    check_database,
    preflight,
)
from gateway.settings import load_node_settings
from tests.unit.gateway.node_files import free_port, node_files

POLICY = """
[[access]]
service = "RENKEI/GOV/HOSP-B/EHR/echo"
grantee = "RENKEI/GOV/HOSP-A/EHR"
"""


def _serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "node", "serve", "--config", str(config)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_a_second_node_on_a_taken_port_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(POLICY)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        config = node_files(
            tmp_path, ports=(free_port(), port, free_port()), extra='policy_file = "policy.toml"'
        )
        result = _serve(config)
    finally:
        taken.close()
    assert result.returncode == EXIT_PORT, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one clear line, no traceback
    assert lines[0].startswith(f"renkei: error: peer port 127.0.0.1:{port}: ")
    assert lines[0].endswith("[node.port_unavailable]")
    # Nothing written: no database, so no policy, no declaration for a service not served.
    assert not (tmp_path / "node.db").exists()
    assert not (tmp_path / "globalconf.jws").exists()


def test_a_missing_key_is_one_line_and_its_exit_code(tmp_path: Path) -> None:
    config = node_files(tmp_path)
    (tmp_path / "token.key").unlink()
    result = _serve(config)
    assert result.returncode == EXIT_KEYS
    assert result.stderr.count("\n") == 1
    assert "keys.token_key" in result.stderr
    assert "[node.key_unavailable]" in result.stderr
    assert not (tmp_path / "node.db").exists()


def test_a_malformed_settings_file_is_a_config_error(tmp_path: Path) -> None:
    config = node_files(tmp_path, extra='node_id = "x"')
    config.write_text(config.read_text().replace('node_id = "RENKEI/GOV/HOSP-B/ss1"\n', ""))
    result = _serve(config)
    assert result.returncode == EXIT_CONFIG
    assert "[config.invalid]" in result.stderr
    assert "Traceback" not in result.stderr


async def test_an_invalid_policy_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text("[[access]]\nservice = 7\n")
    settings = load_node_settings(node_files(tmp_path, extra='policy_file = "policy.toml"'))
    with pytest.raises(StartupError) as caught:
        await preflight(settings)
    assert (caught.value.code, caught.value.exit_code) == ("config.invalid", EXIT_CONFIG)


async def test_an_unreachable_database_is_refused_in_time() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(StartupError) as caught:
        await check_database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none")
    assert caught.value.exit_code == EXIT_DATABASE
    assert caught.value.message.startswith("database unreachable: ")


async def test_a_sqlite_database_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StartupError) as caught:
        await check_database(f"sqlite+aiosqlite:///{tmp_path / 'absent' / 'node.db'}")
    assert caught.value.code == "node.database_unavailable"
    assert not (tmp_path / "absent").exists()


def test_when_one_port_fails_none_stays_bound(tmp_path: Path) -> None:
    first, third = free_port(), free_port()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        settings = load_node_settings(
            node_files(tmp_path, ports=(first, free_port(), third))
        )
        settings = type(settings)(**{
            **{f: getattr(settings, f) for f in settings.__dataclass_fields__},
            "peer": type(settings.peer)("127.0.0.1", taken.getsockname()[1]),
        })  # fmt: skip
        with pytest.raises(StartupError):
            bind_listeners(settings)
    finally:
        taken.close()
    with socket.socket() as again:
        again.bind(("127.0.0.1", first))  # the client port was released

"""``renkei config check`` and ``renkei db upgrade``: explanations, secrets never printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.ops_cli import check_config

SECRET = "s3cret-admin-token-do-not-print-0123456789"


def _node_file(tmp_path: Path, extra: str = "") -> Path:
    for name in ("anchor.json", "auth.key", "auth.pem", "token.key"):
        (tmp_path / name).write_text("x")
    path = tmp_path / "node.toml"
    path.write_text(
        'node_id = "RENKEI/GOV/HOSP-A/ss1"\nanchor = "anchor.json"\n'
        f'database_url = "sqlite+aiosqlite:///{tmp_path / "n.db"}"\n{extra}'
        '[keys]\nauth_key = "auth.key"\nauth_certificate = "auth.pem"\ntoken_key = "token.key"\n'
    )
    return path


def test_valid_node_file(tmp_path: Path) -> None:
    what, problems = check_config(_node_file(tmp_path))
    assert problems == []
    assert what == "node RENKEI/GOV/HOSP-A/ss1"


def test_each_problem_is_explained(tmp_path: Path) -> None:
    path = _node_file(tmp_path, '[management]\nhost = "0.0.0.0"\n')
    (tmp_path / "token.key").unlink()
    _, problems = check_config(path)
    assert any(p.startswith("keys.token_key") and "does not exist" in p for p in problems)
    assert any(p.startswith("management.host") for p in problems)

    broken = tmp_path / "broken.toml"
    broken.write_text('node_id = "not an id"\n')
    _, problems = check_config(broken)
    assert len(problems) == 1
    assert problems[0].startswith("node_id")

    assert check_config(tmp_path / "missing.toml")[1][0].startswith("cannot read")
    junk = tmp_path / "junk.toml"
    junk.write_text("[[[")
    assert "not valid TOML" in check_config(junk)[1][0]


def test_registry_secret_is_checked_never_printed(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("short")
    for name in ("k.pem", "c.pem"):
        (tmp_path / name).write_text("x")
    path = tmp_path / "registry.toml"
    path.write_text(
        'instance = "RENKEI"\nsigning_key_path = "k.pem"\nsigning_cert_path = "c.pem"\n'
        'admin_token_file = "token"\n'
    )
    _, problems = check_config(path)
    assert problems == ["admin_token_file: the admin token is missing or too short"]
    (tmp_path / "token").write_text(SECRET)
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_db_upgrade_command(tmp_path: Path) -> None:
    path = _node_file(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "db", "upgrade", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "n.db").exists()

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main

EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "hospital-b-policy.toml"


def test_check_valid_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out
    assert "service RENKEI/GOV/HOSPB/records/patients" in out


def test_check_invalid_file_lists_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[access]]\nservice = 'x'\n\n[[purpose]]\ncode = 'a'\n", encoding="utf-8")
    assert main(["policy", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "[[access]] #1, key 'grantee': is required" in err
    assert "[[purpose]] #1, key 'consumer': is required" in err

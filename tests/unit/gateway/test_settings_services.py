"""The [[service]] table of a node's settings: path_parameters is off unless said."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import SettingsError, load_node_settings

BASE = """
node_id = "RENKEI/GOV/HOSP-B/ss1"
anchor = "anchor.json"
[keys]
auth_key = "auth.key"
auth_certificate = "auth.pem"
token_key = "token.key"
[[service]]
id = "RENKEI/GOV/HOSP-B/EHR/patients"
backend = "http://127.0.0.1:8000/fhir"
"""


def test_path_parameters_are_off_by_default(tmp_path: Path) -> None:
    settings = load_node_settings(_write(tmp_path, ""), environ={})
    assert settings.services[0].path_parameters is False


def test_a_service_can_declare_path_parameters(tmp_path: Path) -> None:
    settings = load_node_settings(_write(tmp_path, "path_parameters = true\n"), environ={})
    assert settings.services[0].path_parameters is True


@pytest.mark.parametrize("value", ['"yes"', "1"])
def test_path_parameters_must_be_a_boolean(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="path_parameters"):
        load_node_settings(_write(tmp_path, f"path_parameters = {value}\n"), environ={})


def _write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(BASE + extra, "utf-8")
    return path

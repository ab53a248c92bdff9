"""Registry settings for tokens and rate limits; ``registry init`` writes the token key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from member_registry.bootstrap import initialise_registry
from member_registry.errors import ConfigurationError
from member_registry.ops_api import load_registry_tokens
from member_registry.settings import load_settings
from tests.unit.member_registry.registry_samples import NOW

BASE = """
instance = "RENKEI"
signing_key_path = "k.pem"
signing_cert_path = "c.pem"
admin_token_file = "admin-token"
"""


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "registry.toml"
    path.write_text(BASE + extra)
    return path


def test_rate_limit_defaults_are_on(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path), {})
    assert (settings.rate_limit_per_s, settings.rate_limit_burst) == (20.0, 60)
    assert settings.token_key_path is None


def test_rate_limit_and_token_key_from_file_and_environment(tmp_path: Path) -> None:
    path = _config(tmp_path, 'token_key_path = "t.pem"\nrate_limit_per_s = 5\n')
    settings = load_settings(path, {"RENKEI_REGISTRY_RATE_LIMIT_BURST": "100000"})
    assert settings.token_key_path == tmp_path.resolve() / "t.pem"
    assert (settings.rate_limit_per_s, settings.rate_limit_burst) == (5.0, 100000)
    overridden = load_settings(path, {"RENKEI_REGISTRY_RATE_LIMIT_PER_S": "2.5"})
    assert overridden.rate_limit_per_s == 2.5


@pytest.mark.parametrize(
    "environ",
    [
        {"RENKEI_REGISTRY_RATE_LIMIT_PER_S": "0"},
        {"RENKEI_REGISTRY_RATE_LIMIT_PER_S": "-1"},
        {"RENKEI_REGISTRY_RATE_LIMIT_PER_S": "inf"},
        {"RENKEI_REGISTRY_RATE_LIMIT_PER_S": "nan"},
        {"RENKEI_REGISTRY_RATE_LIMIT_PER_S": "fast"},
        {"RENKEI_REGISTRY_RATE_LIMIT_BURST": "0"},
        {"RENKEI_REGISTRY_RATE_LIMIT_BURST": "1.5"},
    ],
)
def test_bad_rate_limits_are_rejected(tmp_path: Path, environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        load_settings(_config(tmp_path), environ)


def test_init_writes_a_private_token_key_that_issues_tokens(tmp_path: Path) -> None:
    result = initialise_registry(tmp_path / "reg", "RENKEI", now=NOW)
    settings = load_settings(result.config, {})
    assert settings.token_key_path is not None
    assert stat.S_IMODE(settings.token_key_path.stat().st_mode) == 0o600
    tokens = load_registry_tokens(settings)
    assert tokens is not None
    assert tokens.audience == "registry:RENKEI"
    assert "BEGIN" not in result.config.read_text()  # the config names the key, never holds it

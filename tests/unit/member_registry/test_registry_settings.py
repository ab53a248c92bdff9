from __future__ import annotations

from pathlib import Path

import pytest

from member_registry.errors import ConfigurationError
from member_registry.globalconf import Settings
from member_registry.settings import load_settings, read_admin_token

MINIMAL = """
instance = "RENKEI"
signing_key_path = "key.pem"
signing_cert_path = "cert.pem"
admin_token_file = "secrets/admin-token"
"""


def _config(tmp_path: Path, text: str = MINIMAL) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text(text)
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path), {})
    base = tmp_path.resolve()
    assert settings.instance == "RENKEI"
    assert settings.database_url == f"sqlite+aiosqlite:///{base / 'registry.db'}"
    assert settings.signing_key_path == base / "key.pem"
    assert settings.admin_token_file == base / "secrets" / "admin-token"
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8080)
    assert settings.global_conf_settings() == Settings()


def test_environment_overrides_every_key(tmp_path: Path) -> None:
    environ = {
        "RENKEI_REGISTRY_INSTANCE": "OTHER",
        "RENKEI_REGISTRY_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/test",
        "RENKEI_REGISTRY_LISTEN_HOST": "0.0.0.0",
        "RENKEI_REGISTRY_LISTEN_PORT": "9000",
        "RENKEI_REGISTRY_SIGNING_KEY_PATH": "/elsewhere/key.pem",
        "RENKEI_REGISTRY_VALIDITY_S": "120",
        "RENKEI_REGISTRY_REFRESH_INTERVAL_S": "10",
        "RENKEI_REGISTRY_OCSP_FRESHNESS_S": "60",
        "RENKEI_REGISTRY_TIMESTAMPING_INTERVAL_S": "5",
        "UNRELATED": "x",
    }
    settings = load_settings(_config(tmp_path), environ)
    assert settings.instance == "OTHER"
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert (settings.listen_host, settings.listen_port) == ("0.0.0.0", 9000)
    assert settings.signing_key_path == Path("/elsewhere/key.pem")
    assert settings.global_conf_settings() == Settings(10, 120, 60, 5)


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        (MINIMAL + "colour = 1\n", {}, "unknown keys colour"),
        ('instance = "RENKEI"\n', {}, "missing keys"),
        (MINIMAL + "listen_port = 70000\n", {}, "listen_port"),
        (MINIMAL + "validity_s = 0\n", {}, "validity_s must be positive"),
        (MINIMAL + 'validity_s = "ten"\n', {}, "validity_s must be an integer"),
        (MINIMAL + "validity_s = true\n", {}, "validity_s must be an integer"),
        (MINIMAL, {"RENKEI_REGISTRY_LISTEN_PORT": "http"}, "listen_port must be an integer"),
        (MINIMAL + 'instance = "again"\n', {}, "not valid TOML"),
        (MINIMAL.replace('"RENKEI"', '""'), {}, "instance must be a non-empty string"),
    ],
)
def test_bad_configuration_is_rejected(tmp_path: Path, text: str, environ: dict[str, str],
                                       message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        load_settings(_config(tmp_path, text), environ)
    assert info.value.code == "registry.config_invalid"


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_settings(tmp_path / "nope.toml", {})


def test_admin_token_is_read_from_its_file_and_kept_out_of_repr(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path), {})
    settings.admin_token_file.parent.mkdir()
    settings.admin_token_file.write_text("  a-long-enough-secret-token \n")
    assert read_admin_token(settings) == "a-long-enough-secret-token"
    assert "a-long-enough-secret-token" not in repr(settings)


def test_missing_or_short_admin_token_is_refused(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path), {})
    with pytest.raises(ConfigurationError, match="cannot read"):
        read_admin_token(settings)
    settings.admin_token_file.parent.mkdir()
    settings.admin_token_file.write_text("short")
    with pytest.raises(ConfigurationError, match="too short"):
        read_admin_token(settings)

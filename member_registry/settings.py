"""The registry process's settings: one TOML file, every key overridable from the environment.

Keys (TOML top level; the environment variable ``RENKEI_REGISTRY_<KEY>``, the key in upper
case, wins over the file):

- ``instance``: the federation instance, e.g. ``RENKEI`` (required)
- ``database_url``: SQLAlchemy async URL (default: SQLite ``registry.db`` beside the file)
- ``listen_host``, ``listen_port``: the HTTP listener (default ``127.0.0.1``, ``8080``;
  port 0 picks a free port)
- ``signing_key_path``: PEM P-256 key signing the global configuration (required)
- ``signing_cert_path``: its verification certificate, the one in the anchor (required)
- ``admin_token_file``: file holding the static admin bearer token, a secret (required;
  kept for bootstrap)
- ``token_key_path``: PEM P-256 key signing the registry's bearer JWTs (roles ``admin``
  and ``auditor``, issued by ``renkei token issue --registry-config``); a secret (optional:
  without it only the static admin token is accepted)
- ``rate_limit_per_s`` (20), ``rate_limit_burst`` (60): the per-token rate limit of
  ``/api/`` and ``/catalogue/publish``. Raise them only for a fuzzing or load run.
- ``validity_s`` (600), ``refresh_interval_s`` (60), ``ocsp_freshness_s`` (3600),
  ``timestamping_interval_s`` (60): the published settings, in seconds
- ``auto_approve_members``: node registrations approved without an admin, a list of
  member ids or ``["*"]`` for all (default none; the environment variable takes them
  comma-separated)

Relative paths are relative to the TOML file's directory. The admin token itself is
never part of the settings object (so it cannot end up in a log line); it is read from
its file by ``read_admin_token``.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from member_registry.errors import ConfigurationError
from member_registry.globalconf import Settings

__all__ = ["ENV_PREFIX", "RegistrySettings", "load_settings", "read_admin_token"]

ENV_PREFIX = "RENKEI_REGISTRY_"
_MIN_TOKEN_LENGTH = 16
_MAX_PORT = 65535


@dataclass(frozen=True)
class RegistrySettings:
    instance: str
    database_url: str
    signing_key_path: Path
    signing_cert_path: Path
    admin_token_file: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    validity_s: int = 600
    refresh_interval_s: int = 60
    ocsp_freshness_s: int = 3600
    timestamping_interval_s: int = 60
    auto_approve_members: tuple[str, ...] = ()
    token_key_path: Path | None = None
    rate_limit_per_s: float = 20.0
    rate_limit_burst: int = 60

    def global_conf_settings(self) -> Settings:
        """The federation-wide settings published in the global configuration."""
        return Settings(
            refresh_interval_s=self.refresh_interval_s,
            validity_s=self.validity_s,
            ocsp_freshness_s=self.ocsp_freshness_s,
            timestamping_interval_s=self.timestamping_interval_s,
        )


_PATHS = ("signing_key_path", "signing_cert_path", "admin_token_file", "token_key_path")
_INTS = ("listen_port", "validity_s", "refresh_interval_s", "ocsp_freshness_s",
         "timestamping_interval_s", "rate_limit_burst")
_FLOATS = ("rate_limit_per_s",)
_LISTS = ("auto_approve_members",)
_KEYS = tuple(f.name for f in fields(RegistrySettings))


def load_settings(path: str | os.PathLike[str], environ: Mapping[str, str]) -> RegistrySettings:
    """Read ``path`` and apply ``RENKEI_REGISTRY_*`` overrides from ``environ``."""
    config_path = Path(path)
    try:
        raw: dict[str, Any] = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {config_path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{config_path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise ConfigurationError(f"{config_path}: unknown keys {', '.join(unknown)}")
    for key in _KEYS:
        override = environ.get(ENV_PREFIX + key.upper())
        if override is not None:
            raw[key] = override

    base = config_path.parent.resolve()
    raw.setdefault("database_url", f"sqlite+aiosqlite:///{base / 'registry.db'}")
    values: dict[str, Any] = {}
    for key in _KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if key in _INTS:
            values[key] = _integer(key, value)
        elif key in _FLOATS:
            values[key] = _number(key, value)
        elif key in _LISTS:
            values[key] = _strings(key, value)
        elif key in _PATHS:
            values[key] = base / _string(key, value)
        else:
            values[key] = _string(key, value)
    missing = [f.name for f in fields(RegistrySettings)
               if f.default is MISSING and f.name not in values]
    if missing:
        raise ConfigurationError(f"{config_path}: missing keys {', '.join(missing)}")
    settings = RegistrySettings(**values)
    if not 0 <= settings.listen_port <= _MAX_PORT:
        raise ConfigurationError("listen_port must be from 0 to 65535")
    for key in (*_INTS[1:], *_FLOATS):
        if getattr(settings, key) <= 0:
            raise ConfigurationError(f"{key} must be positive")
    return settings


def read_admin_token(settings: RegistrySettings) -> str:
    """The admin bearer token, read from its file (whitespace around it is ignored)."""
    try:
        token = settings.admin_token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read the admin token file {settings.admin_token_file}") from exc
    if len(token) < _MIN_TOKEN_LENGTH:
        raise ConfigurationError("the admin token is missing or too short")
    return token


def _string(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{key} must be a non-empty string")
    return value


def _strings(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):  # from the environment: comma-separated
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{key} must be a list of non-empty strings")
    return tuple(value)


def _number(key: str, value: object) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError as exc:
            raise ConfigurationError(f"{key} must be a number") from exc
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{key} must be a number")
    return float(value)


def _integer(key: str, value: object) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 10)
        except ValueError as exc:
            raise ConfigurationError(f"{key} must be an integer") from exc
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{key} must be an integer")
    return value

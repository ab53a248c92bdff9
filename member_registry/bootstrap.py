"""Creating a new registry directory (``renkei registry init``).

Writes the registry's signing key and self-signed verification certificate, the static
admin token (for bootstrap), the key signing the registry's bearer JWTs, ``registry.toml``
and the configuration anchor that node operators install.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from certs.errors import CertsError
from certs.identifiers import GlobalGroupId, IdentifierError
from certs.keys import generate_key, save_certificate, save_private_key
from member_registry.anchor import Anchor, anchor_digest, write_anchor
from member_registry.errors import ConfigurationError
from member_registry.signing import generate_signing_identity

__all__ = ["CONFIG_NAME", "InitialisedRegistry", "initialise_registry"]

CONFIG_NAME = "registry.toml"
ANCHOR_NAME = "anchor.json"
KEY_NAME = "signing-key.pem"
CERT_NAME = "signing-cert.pem"
TOKEN_NAME = "admin-token"  # noqa: S105 - a file name, not a secret
TOKEN_KEY_NAME = "token-key.pem"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class InitialisedRegistry:
    config: Path
    anchor: Path
    anchor_sha256: str
    admin_token_file: Path
    download_url: str


def initialise_registry(
    directory: Path,
    instance: str,
    *,
    now: datetime,
    host: str = "127.0.0.1",
    port: int = 8080,
    download_url: str | None = None,
) -> InitialisedRegistry:
    """Create a registry in ``directory``; refuses to overwrite an existing one."""
    try:
        # An instance code follows the identifier alphabet (DESIGN §2).
        GlobalGroupId(instance, "check")
    except IdentifierError as exc:
        raise ConfigurationError(f"invalid instance {instance!r}") from exc
    config = directory / CONFIG_NAME
    if config.exists():
        raise ConfigurationError(f"{config} exists already; refusing to overwrite a registry")
    url = download_url or f"http://{host}:{port}/globalconf"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        key, certificate = generate_signing_identity(instance, now)
        save_private_key(key, directory / KEY_NAME)
        save_certificate(certificate, directory / CERT_NAME)
        _write_secret(directory / TOKEN_NAME, secrets.token_urlsafe(32))
        save_private_key(generate_key("ec-p256"), directory / TOKEN_KEY_NAME)
        config.write_text(_config_text(instance, host, port), encoding="utf-8")
    except CertsError as exc:
        raise ConfigurationError(str(exc)) from exc
    except OSError as exc:
        raise ConfigurationError(f"cannot write to {directory}: {exc.strerror}") from exc
    anchor_path = directory / ANCHOR_NAME
    write_anchor(Anchor(instance=instance, generated_at=now, download_urls=(url,),
                        verification_certificates=(certificate,)), anchor_path)
    return InitialisedRegistry(config=config, anchor=anchor_path,
                               anchor_sha256=anchor_digest(anchor_path),
                               admin_token_file=directory / TOKEN_NAME, download_url=url)


def _config_text(instance: str, host: str, port: int) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "\n".join([
        "# Renkei member registry; every key can be overridden by RENKEI_REGISTRY_<KEY>.",
        f"instance = {quoted(instance)}",
        f"listen_host = {quoted(host)}",
        f"listen_port = {port}",
        f'signing_key_path = "{KEY_NAME}"',
        f'signing_cert_path = "{CERT_NAME}"',
        f'admin_token_file = "{TOKEN_NAME}"',
        "# signs bearer JWTs: renkei token issue --registry-config registry.toml --role admin",
        f'token_key_path = "{TOKEN_KEY_NAME}"',
        "# database_url defaults to SQLite in registry.db beside this file, e.g.",
        '# database_url = "postgresql+asyncpg://user@host:5432/registry"',
        "validity_s = 600",
        "refresh_interval_s = 60",
        "ocsp_freshness_s = 3600",
        "timestamping_interval_s = 60",
        "",
    ])


def _write_secret(path: Path, secret: str) -> None:
    # Created 0600 from the start, never readable by others even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secret + "\n")

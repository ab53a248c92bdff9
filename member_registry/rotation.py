"""Rotating the registry's configuration-signing key through an anchor with several certificates.

Three steps, so that no node ever holds an anchor that cannot verify what the registry
currently serves:

1. ``prepare_rotation``: a new P-256 key and self-signed certificate are written beside
   the current ones (``<name>.next.pem``) and the anchor is rewritten to list both
   certificates. The registry keeps signing with the old key. Operators install the new
   anchor (comparing its SHA-256 out of band).
2. ``activate_rotation``: once every node has the new anchor, the next key and
   certificate become the configured ones (the old ones are kept as
   ``<name>.previous.pem``); the registry signs with the new key after its restart.
   Refused unless the anchor lists the new certificate.
3. ``retire_previous``: once no node needs the old certificate any more (every node
   has fetched a configuration signed with the new key), the anchor is rewritten with
   the current certificate only and distributed again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from certs.errors import CertsError
from certs.keys import save_certificate, save_private_key
from member_registry._certificates import fingerprint
from member_registry.anchor import Anchor, anchor_digest, load_anchor, write_anchor
from member_registry.errors import ConfigurationError
from member_registry.settings import RegistrySettings
from member_registry.signing import generate_signing_identity, load_certificate, load_signing_key

__all__ = [
    "RotationStep",
    "activate_rotation",
    "next_paths",
    "prepare_rotation",
    "previous_paths",
    "retire_previous",
]


@dataclass(frozen=True)
class RotationStep:
    """What a step did: the anchor to distribute (if rewritten) and the signing certificate."""

    anchor: Path | None
    anchor_sha256: str | None
    signing_fingerprint: str


def _beside(path: Path, label: str) -> Path:
    return path.with_name(f"{path.stem}.{label}{path.suffix}")


def next_paths(settings: RegistrySettings) -> tuple[Path, Path]:
    """Where the prepared key and certificate wait for activation."""
    return (_beside(settings.signing_key_path, "next"),
            _beside(settings.signing_cert_path, "next"))


def previous_paths(settings: RegistrySettings) -> tuple[Path, Path]:
    """Where the replaced key and certificate are kept after activation."""
    return (_beside(settings.signing_key_path, "previous"),
            _beside(settings.signing_cert_path, "previous"))


def prepare_rotation(settings: RegistrySettings, anchor_path: Path, *,
                     now: datetime) -> RotationStep:
    """Make the next key and certificate and list both certificates in the anchor."""
    key_path, cert_path = next_paths(settings)
    if key_path.exists() or cert_path.exists():
        raise ConfigurationError(f"{key_path} exists: a rotation is already prepared")
    current = load_certificate(settings.signing_cert_path)
    anchor = load_anchor(anchor_path)
    if current not in anchor.verification_certificates:
        raise ConfigurationError(f"{anchor_path} does not list the current signing certificate")
    key, certificate = generate_signing_identity(settings.instance, now)
    try:
        save_private_key(key, key_path)
        save_certificate(certificate, cert_path)
    except CertsError as exc:
        raise ConfigurationError(str(exc)) from exc
    write_anchor(Anchor(anchor.instance, now, anchor.download_urls,
                        (*anchor.verification_certificates, certificate)), anchor_path)
    return RotationStep(anchor_path, anchor_digest(anchor_path), fingerprint(current))


def activate_rotation(settings: RegistrySettings, anchor_path: Path) -> RotationStep:
    """Make the prepared key the signing key (takes effect when the registry restarts)."""
    key_path, cert_path = next_paths(settings)
    if not key_path.exists() or not cert_path.exists():
        raise ConfigurationError("no rotation is prepared (run rotate-key prepare first)")
    certificate = load_certificate(cert_path)
    if load_signing_key(key_path).public_key() != certificate.public_key():
        raise ConfigurationError(f"{key_path} does not match {cert_path}")
    if certificate not in load_anchor(anchor_path).verification_certificates:
        # Nodes with this anchor could not verify what the new key signs.
        raise ConfigurationError(f"{anchor_path} does not list the new signing certificate")
    old_key, old_cert = previous_paths(settings)
    try:
        os.replace(settings.signing_key_path, old_key)
        os.replace(settings.signing_cert_path, old_cert)
        os.replace(key_path, settings.signing_key_path)
        os.replace(cert_path, settings.signing_cert_path)
    except OSError as exc:
        raise ConfigurationError(f"cannot switch the signing key: {exc.strerror}") from exc
    return RotationStep(None, None, fingerprint(certificate))


def retire_previous(settings: RegistrySettings, anchor_path: Path, *,
                    now: datetime) -> RotationStep:
    """Rewrite the anchor with the current signing certificate only."""
    if next_paths(settings)[0].exists():
        raise ConfigurationError("a prepared rotation is not activated yet")
    current = load_certificate(settings.signing_cert_path)
    anchor = load_anchor(anchor_path)
    if current not in anchor.verification_certificates:
        raise ConfigurationError(f"{anchor_path} does not list the current signing certificate")
    write_anchor(Anchor(anchor.instance, now, anchor.download_urls, (current,)), anchor_path)
    return RotationStep(anchor_path, anchor_digest(anchor_path), fingerprint(current))

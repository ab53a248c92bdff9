"""Key rotation through a two-certificate anchor, and the registration commands."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from certs.ca import CertificateAuthority
from member_registry.anchor import anchor_digest, load_anchor
from member_registry.bootstrap import initialise_registry
from member_registry.cli import register
from member_registry.errors import ConfigurationError, GlobalConfSignatureInvalid
from member_registry.globalconf import GlobalConf
from member_registry.registration import RegistrationService
from member_registry.rotation import (
    activate_rotation,
    next_paths,
    prepare_rotation,
    previous_paths,
    retire_previous,
)
from member_registry.server import open_service
from member_registry.settings import RegistrySettings, load_settings
from member_registry.signing import (
    load_certificate,
    load_signing_key,
    sign_global_conf,
    verify_global_conf,
)
from tests.unit.member_registry.registration_samples import CLINIC, credentials, signed_request
from tests.unit.member_registry.registry_samples import NOW


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="renkei")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


@pytest.fixture
def registry(tmp_path: Path) -> tuple[RegistrySettings, Path]:
    created = initialise_registry(tmp_path / "registry", "RENKEI", now=NOW, port=0)
    return load_settings(created.config, {}), created.anchor


def _signed_now(settings: RegistrySettings, conf: GlobalConf) -> str:
    """A configuration signed with whatever key the settings name at this moment."""
    return sign_global_conf(conf, load_signing_key(settings.signing_key_path),
                            load_certificate(settings.signing_cert_path))


def test_rotation_keeps_every_step_verifiable(
    registry: tuple[RegistrySettings, Path], sample_conf: GlobalConf
) -> None:
    settings, anchor_path = registry
    old_anchor = load_anchor(anchor_path)
    by_old_key = _signed_now(settings, sample_conf)

    prepared = prepare_rotation(settings, anchor_path, now=NOW)
    both = load_anchor(anchor_path)
    assert len(both.verification_certificates) == 2
    assert prepared.anchor_sha256 == anchor_digest(anchor_path)
    # Nodes with the old anchor and with the new one both accept what is served now.
    verify_global_conf(by_old_key, old_anchor, now=NOW)
    verify_global_conf(by_old_key, both, now=NOW)
    assert _signed_now(settings, sample_conf)  # still the old key until activation

    activate_rotation(settings, anchor_path)
    by_new_key = _signed_now(settings, sample_conf)
    assert verify_global_conf(by_new_key, both, now=NOW).version == sample_conf.version
    with pytest.raises(GlobalConfSignatureInvalid):
        verify_global_conf(by_new_key, old_anchor, now=NOW)  # why operators install first
    assert all(path.exists() for path in previous_paths(settings))
    assert not any(path.exists() for path in next_paths(settings))

    retire_previous(settings, anchor_path, now=NOW + timedelta(days=1))
    final = load_anchor(anchor_path)
    assert len(final.verification_certificates) == 1
    verify_global_conf(by_new_key, final, now=NOW)
    with pytest.raises(GlobalConfSignatureInvalid):
        verify_global_conf(by_old_key, final, now=NOW)


def test_steps_out_of_order_are_refused(registry: tuple[RegistrySettings, Path],
                                        tmp_path: Path) -> None:
    settings, anchor_path = registry
    with pytest.raises(ConfigurationError, match="no rotation is prepared"):
        activate_rotation(settings, anchor_path)
    original = anchor_path.read_bytes()
    prepare_rotation(settings, anchor_path, now=NOW)
    with pytest.raises(ConfigurationError, match="already prepared"):
        prepare_rotation(settings, anchor_path, now=NOW)
    with pytest.raises(ConfigurationError, match="not activated"):
        retire_previous(settings, anchor_path, now=NOW)
    # An anchor that does not list the new certificate must not be switched to.
    stale_anchor = tmp_path / "old-anchor.json"
    stale_anchor.write_bytes(original)
    with pytest.raises(ConfigurationError, match="does not list the new"):
        activate_rotation(settings, stale_anchor)


def test_rotate_key_command(registry: tuple[RegistrySettings, Path],
                            capsys: pytest.CaptureFixture[str]) -> None:
    _, anchor_path = registry
    config = str(anchor_path.parent / "registry.toml")
    assert main(["registry", "rotate-key", "prepare", "--config", config]) == 0
    assert anchor_digest(anchor_path) in capsys.readouterr().out
    assert main(["registry", "rotate-key", "activate", "--config", config]) == 0
    assert "restart the registry" in capsys.readouterr().out
    assert main(["registry", "rotate-key", "retire", "--config", config]) == 0
    assert len(load_anchor(anchor_path).verification_certificates) == 1
    assert main(["registry", "rotate-key", "activate", "--config", config]) == 1
    assert "registry.config_invalid" in capsys.readouterr().err


def test_registration_commands(registry: tuple[RegistrySettings, Path],
                               instance_ca: CertificateAuthority,
                               capsys: pytest.CaptureFixture[str]) -> None:
    settings, anchor_path = registry
    config = str(anchor_path.parent / "registry.toml")

    async def submit() -> int:
        async with open_service(settings) as service:
            await service.add_trusted_ca(instance_ca.certificate)
            await service.add_member(CLINIC, "Clinic")
            desk = RegistrationService(service.engine, instance="RENKEI")
            signed = signed_request(credentials(instance_ca), now=NOW)
            return (await desk.submit(signed, now=NOW)).id

    first = asyncio.run(submit())
    assert main(["registry", "registration", "list", "--status", "pending",
                 "--config", config]) == 0
    assert f"{first}  pending" in capsys.readouterr().out
    assert main(["registry", "registration", "reject", str(first), "--config", config]) == 0
    assert "rejected" in capsys.readouterr().out
    assert main(["registry", "registration", "approve", str(first), "--config", config]) == 1
    assert "registry.registration_decided" in capsys.readouterr().err
    assert main(["registry", "registration", "approve", "99", "--config", config]) == 1
    assert "registry.not_found" in capsys.readouterr().err

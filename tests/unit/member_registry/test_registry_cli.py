"""The ``renkei registry`` commands, run in-process through the ``renkei`` parser."""

from __future__ import annotations

import argparse
import asyncio
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509

from certs.ca import CertificateAuthority
from certs.identifiers import NodeId
from certs.keys import save_certificate
from member_registry._certificates import fingerprint
from member_registry.anchor import anchor_digest, load_anchor
from member_registry.bootstrap import initialise_registry
from member_registry.cli import register
from member_registry.errors import ConfigurationError
from member_registry.server import serve
from member_registry.settings import load_settings, read_admin_token
from member_registry.signing import verify_global_conf
from tests.unit.member_registry.registry_samples import (
    NOW,
    issue_auth_certificate,
    make_certificate,
)


def main(argv: list[str]) -> int:
    """The ``renkei`` dispatcher reduced to this package's commands."""
    parser = argparse.ArgumentParser(prog="renkei")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


@pytest.fixture
def registry_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "registry"
    assert main(["registry", "init", "--dir", str(directory), "--instance", "RENKEI",
                 "--port", "0", "--download-url", "http://127.0.0.1:9/globalconf"]) == 0
    out = capsys.readouterr().out
    assert anchor_digest(directory / "anchor.json") in out
    return directory


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_writes_a_consistent_registry(registry_dir: Path) -> None:
    settings = load_settings(registry_dir / "registry.toml", {})
    anchor = load_anchor(registry_dir / "anchor.json")
    assert anchor.instance == settings.instance == "RENKEI"
    assert anchor.download_urls == ("http://127.0.0.1:9/globalconf",)
    assert len(read_admin_token(settings)) >= 32
    for secret in (settings.admin_token_file, settings.signing_key_path):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_init_refuses_to_overwrite(registry_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "registry", "init", "--dir", str(registry_dir),
                        "--instance", "RENKEI")
    assert code == 1
    assert "refusing to overwrite" in err


def test_init_rejects_a_bad_instance(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="invalid instance"):
        initialise_registry(tmp_path, "BAD/INSTANCE", now=NOW)


def test_admin_commands(registry_dir: Path, tmp_path: Path, instance_ca: CertificateAuthority,
                        capsys: pytest.CaptureFixture[str]) -> None:
    config = ["--config", str(registry_dir / "registry.toml")]
    auth = issue_auth_certificate(instance_ca, NodeId.parse("RENKEI/GOV/HOSP-A/node1"))
    ca = instance_ca.certificate
    save_certificate(auth, tmp_path / "auth.pem")
    save_certificate(ca, tmp_path / "ca.pem")
    steps = [
        ["ca", "add", "--cert", str(tmp_path / "ca.pem"), "--ocsp-url", "http://127.0.0.1:1"],
        ["member", "add", "RENKEI/GOV/HOSP-A", "--name", "Hospital A"],
        ["subsystem", "add", "RENKEI/GOV/HOSP-A/EHR"],
        ["node", "add", "RENKEI/GOV/HOSP-A/node1", "--address", "127.0.0.1",
         "--peer-port", "5500"],
        ["node", "add-cert", "RENKEI/GOV/HOSP-A/node1", "--cert", str(tmp_path / "auth.pem")],
        ["node", "host", "RENKEI/GOV/HOSP-A/node1", "RENKEI/GOV/HOSP-A/EHR"],
        ["group", "add", "RENKEI/partners", "--description", "Partners"],
        ["group", "add-member", "RENKEI/partners", "RENKEI/GOV/HOSP-A/EHR"],
        ["tsa", "add", "--name", "TSA", "--url", "http://127.0.0.1:2",
         "--cert", str(tmp_path / "ca.pem")],
    ]
    for step in steps:
        code, out, err = _run(capsys, "registry", *step, *config)
        assert (code, err) == (0, ""), step
        assert out.strip()
    for listing in ("member", "subsystem", "node", "group", "ca", "tsa"):
        code, out, _ = _run(capsys, "registry", listing, "list", *config)
        assert code == 0
        assert "(no" not in out
    code, out, _ = _run(capsys, "registry", "conf", "show", *config)
    shown = json.loads(out)
    assert shown["nodes"][0]["auth_cert_sha256"] == [fingerprint(auth)]
    code, out, _ = _run(capsys, "registry", "conf", "publish", *config)
    assert "published version 1" in out
    code, out, _ = _run(capsys, "registry", "node", "remove-cert", "RENKEI/GOV/HOSP-A/node1",
                        fingerprint(auth), *config)
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["member", "add", "RENKEI/GOV", "--name", "x"], "client.invalid_identifier"),
        (["subsystem", "add", "RENKEI/GOV/NOBODY/S"], "registry.not_found"),
        (["node", "add-cert", "RENKEI/GOV/X/n", "--cert", "/nonexistent.pem"],
         "certs.certificate_invalid"),
        (["ca", "add", "--cert", "/nonexistent.pem"], "certs.certificate_invalid"),
    ],
)
def test_admin_errors_exit_1_with_a_message(registry_dir: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            argv: list[str], message: str) -> None:
    code, out, err = _run(capsys, "registry", *argv, "--config",
                          str(registry_dir / "registry.toml"))
    assert code == 1
    assert out == ""
    assert message in err


def test_duplicate_member_exits_1(registry_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ["--config", str(registry_dir / "registry.toml")]
    assert _run(capsys, "registry", "member", "add", "RENKEI/A/B", "--name", "x", *config)[0] == 0
    code, _, err = _run(capsys, "registry", "member", "add", "RENKEI/A/B", "--name", "x", *config)
    assert code == 1
    assert "registry.conflict" in err


async def test_serve_publishes_a_verifiable_configuration(registry_dir: Path) -> None:
    settings = load_settings(registry_dir / "registry.toml", {})
    anchor = load_anchor(registry_dir / "anchor.json")
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve(settings, stop, on_ready=ready.set_result))
    try:
        url = await asyncio.wait_for(ready, 10)
        async with aiohttp.ClientSession() as session, session.get(f"{url}/globalconf") as r:
            assert r.status == 200
            token = await r.text()
        conf = verify_global_conf(token, anchor, now=datetime.now(UTC))
        assert conf.instance == "RENKEI"
    finally:
        stop.set()
        await asyncio.wait_for(server, 10)


def test_sample_certificates_are_x509() -> None:
    assert isinstance(make_certificate("x"), x509.Certificate)

"""The ca revoke / crl / issue-service commands, serial parsing, and service key provisioning."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from certs_helpers import NOW, Issuer
from cryptography import x509

from certs.ca import CertificateAuthority
from certs.cli import parse_serial
from certs.errors import CertsError
from certs.keys import generate_key, load_certificate, save_private_key
from certs.service_keys import load_or_issue_service_identity
from gateway.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("text", "serial"),
    [("0x1F", 31), ("31", 31), ("1f", 31), ("0" * 38 + "10", 16), (" 0XAB ", 171)],
)
def test_parse_serial(text: str, serial: int) -> None:
    assert parse_serial(text) == serial


@pytest.mark.parametrize("text", ["", "0x", "serial-1", "12 34"])
def test_parse_serial_refuses_garbage(text: str) -> None:
    with pytest.raises(CertsError):
        parse_serial(text)


def test_revoke_and_crl_commands(
    ca: CertificateAuthority, issue: Issuer, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = issue("auth")
    code, out, _ = run(
        capsys, "ca", "revoke", f"{cert.serial_number:040x}", "--dir", ca.directory,
        "--reason", "superseded",
    )  # fmt: skip
    assert code == 0
    assert "revoked" in out
    assert ca.status_of(cert.serial_number).state == "revoked"
    code, out, _ = run(capsys, "ca", "list", "--dir", ca.directory)
    assert "revoked" in out
    code, _, err = run(
        capsys, "ca", "revoke", str(cert.serial_number), "--dir", ca.directory,
        "--reason", "superseded",
    )  # fmt: skip
    assert code == 1
    assert "[certs.ca_invalid]" in err
    code, _, err = run(
        capsys, "ca", "revoke", "0x42", "--dir", ca.directory, "--reason", "superseded"
    )
    assert code == 1
    assert "[certs.unknown_serial]" in err
    code, out, _ = run(capsys, "ca", "crl", "--dir", ca.directory, "--days", "2")
    assert code == 0
    assert "CRL number 1 with 1 revoked" in out
    crl = x509.load_pem_x509_crl((ca.directory / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_revoke_refuses_an_unknown_reason(
    ca: CertificateAuthority, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        run(capsys, "ca", "revoke", "1", "--dir", ca.directory, "--reason", "because")
    assert caught.value.code == 2


def test_issue_service_command(
    ca: CertificateAuthority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "tsa.key"
    save_private_key(generate_key("ec-p256"), key)
    out_file = tmp_path / "tsa.pem"
    code, _, err = run(
        capsys, "ca", "issue-service", "--dir", ca.directory, "--profile", "tsa",
        "--key", key, "--out", out_file,
    )  # fmt: skip
    assert code == 0, err
    usage = load_certificate(out_file).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert usage.critical


def test_service_identity_is_created_once_and_renewed_near_expiry(
    ca: CertificateAuthority,
) -> None:
    first = load_or_issue_service_identity(ca, "ocsp", now=NOW, validity_days=60)
    again = load_or_issue_service_identity(ca, "ocsp", now=NOW + timedelta(days=1))
    assert again.certificate == first.certificate
    renewed = load_or_issue_service_identity(ca, "ocsp", now=NOW + timedelta(days=31))
    assert renewed.certificate != first.certificate
    assert renewed.key.public_key() == first.key.public_key()
    assert (ca.directory / "services" / "ocsp.key").stat().st_mode & 0o077 == 0

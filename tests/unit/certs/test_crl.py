"""Revocation in the CA index, the CRL it publishes, and checking a certificate against a CRL."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from certs_helpers import NOW, Issuer
from cryptography import x509

from certs.ca import CertificateAuthority, CertStatus
from certs.crl import check_not_revoked, reason_flag
from certs.errors import CaError, CertificateError, CertificateRevoked, UnknownSerial
from certs.keys import save_certificate

LATER = NOW + timedelta(hours=1)


def test_revoke_records_status_time_and_reason(ca: CertificateAuthority, issue: Issuer) -> None:
    good, revoked = issue("auth"), issue("sign")
    record = ca.revoke(revoked.serial_number, reason="keyCompromise", now=LATER)
    assert record.status == "revoked"
    assert ca.status_of(good.serial_number) == CertStatus("good")
    assert ca.status_of(revoked.serial_number) == CertStatus("revoked", LATER, "keyCompromise")
    assert ca.status_of(12345) == CertStatus("unknown")
    entry = json.loads((ca.directory / "index.json").read_text())["certificates"][1]
    assert entry["status"] == "revoked"
    assert entry["revocation_reason"] == "keyCompromise"
    assert entry["revoked_at"] == LATER.isoformat()


def test_revoke_refuses_unknown_serials_twice_and_bad_reasons(
    ca: CertificateAuthority, issue: Issuer
) -> None:
    cert = issue("auth")
    with pytest.raises(UnknownSerial):
        ca.revoke(42, reason="superseded", now=LATER)
    with pytest.raises(CaError, match="unknown revocation reason"):
        ca.revoke(cert.serial_number, reason="removeFromCRL", now=LATER)
    ca.revoke(cert.serial_number, reason="superseded", now=LATER)
    with pytest.raises(CaError, match="already revoked"):
        ca.revoke(cert.serial_number, reason="keyCompromise", now=LATER)
    assert ca.status_of(cert.serial_number).reason == "superseded"


def test_reason_names_are_rfc_5280() -> None:
    assert reason_flag("cACompromise") is x509.ReasonFlags.ca_compromise
    with pytest.raises(ValueError, match="unknown revocation reason"):
        reason_flag("key_compromise")


def test_crl_lists_revoked_certificates_with_increasing_numbers(
    ca: CertificateAuthority, issue: Issuer
) -> None:
    first, second = issue("auth"), issue("auth")
    ca.revoke(first.serial_number, reason="keyCompromise", now=LATER)
    ca.revoke(second.serial_number, reason="unspecified", now=LATER)
    crl = ca.build_crl(LATER, LATER + timedelta(days=7))
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(first.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.key_compromise
    )
    unspecified = crl.get_revoked_certificate_by_serial_number(second.serial_number)
    assert unspecified is not None
    assert len(unspecified.extensions) == 0
    again = ca.build_crl(LATER, LATER + timedelta(days=7))
    assert again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    assert x509.load_der_x509_crl((ca.directory / "crl.der").read_bytes()) == again
    assert x509.load_pem_x509_crl((ca.directory / "crl.pem").read_bytes()) == again


def test_crl_refuses_a_next_update_before_now(ca: CertificateAuthority) -> None:
    with pytest.raises(CaError):
        ca.build_crl(LATER, LATER)


def _openssl_crl_check(tmp_path: Path, ca: CertificateAuthority, cert: x509.Certificate) -> int:
    leaf = tmp_path / "leaf.pem"
    save_certificate(cert, leaf)
    at_time = str(int(LATER.timestamp()) + 60)
    result = subprocess.run(
        [
            "openssl", "verify", "-attime", at_time, "-crl_check",
            "-CRLfile", str(ca.directory / "crl.pem"),
            "-CAfile", str(ca.directory / "ca.pem"), str(leaf),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.returncode


def test_openssl_crl_check_rejects_revoked_and_accepts_good(
    tmp_path: Path, ca: CertificateAuthority, issue: Issuer
) -> None:
    good, revoked = issue("auth"), issue("auth")
    ca.revoke(revoked.serial_number, reason="keyCompromise", now=LATER)
    ca.build_crl(LATER, LATER + timedelta(days=7))
    assert _openssl_crl_check(tmp_path, ca, good) == 0
    assert _openssl_crl_check(tmp_path, ca, revoked) != 0


def test_check_not_revoked(ca: CertificateAuthority, issue: Issuer) -> None:
    good, revoked = issue("auth"), issue("auth")
    ca.revoke(revoked.serial_number, reason="keyCompromise", now=LATER)
    crl = ca.build_crl(LATER, LATER + timedelta(days=7))
    check_not_revoked(good, crl, issuer=ca.certificate, now=LATER)
    with pytest.raises(CertificateRevoked):
        check_not_revoked(revoked, crl, issuer=ca.certificate, now=LATER)


def test_check_not_revoked_refuses_outdated_future_and_foreign_crls(
    tmp_path: Path, ca: CertificateAuthority, issue: Issuer
) -> None:
    good = issue("auth")
    crl = ca.build_crl(LATER, LATER + timedelta(days=1))
    with pytest.raises(CertificateError, match="out of date"):
        check_not_revoked(good, crl, issuer=ca.certificate, now=LATER + timedelta(days=2))
    with pytest.raises(CertificateError, match="future"):
        check_not_revoked(good, crl, issuer=ca.certificate, now=NOW)
    other = CertificateAuthority.create(tmp_path / "other", instance="EE", now=NOW)
    with pytest.raises(CertificateError, match="signature"):
        check_not_revoked(good, crl, issuer=other.certificate, now=LATER)
    foreign = other.build_crl(LATER, LATER + timedelta(days=1))
    with pytest.raises(CertificateError, match="signature"):
        check_not_revoked(good, foreign, issuer=ca.certificate, now=LATER)

"""The fixed PKI vectors of tests/vectors/pki: each bad certificate or OCSP response has its code.

Rebuild them with ``tests/vectors/rebuild_pki.py``; they are read at the fixed time NOW.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from certs import errors
from certs.crl import check_not_revoked
from certs.keys import load_certificate
from certs.ocsp import verify_ocsp_response
from certs.profiles import Profile
from certs.timestamps import verify_timestamp_token
from certs.validation import verify_certificate

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "pki"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=1)


def cert(name: str) -> x509.Certificate:
    return load_certificate(VECTORS / name)


def ocsp_der(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


@pytest.mark.parametrize(("name", "profile"), [("auth.pem", "auth"), ("sign.pem", "sign")])
def test_good_certificates_validate(name: str, profile: Profile) -> None:
    verify_certificate(cert(name), trust_roots=[cert("ca.pem")], now=NOW, profile=profile)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("expired.pem", errors.CertificateExpired),
        ("not_yet_valid.pem", errors.CertificateNotYetValid),
        ("wrong_ca.pem", errors.UntrustedCertificate),
        ("wrong_usage.pem", errors.WrongKeyUsage),
    ],
)
def test_bad_certificates_are_refused_with_their_code(
    name: str, error: type[errors.CertsError]
) -> None:
    with pytest.raises(error) as caught:
        verify_certificate(cert(name), trust_roots=[cert("ca.pem")], now=NOW, profile="auth")
    assert caught.value.code == error.code


def test_revoked_certificate_is_listed_in_the_crl() -> None:
    crl = x509.load_pem_x509_crl((VECTORS / "crl.pem").read_bytes())
    ca = cert("ca.pem")
    check_not_revoked(cert("auth.pem"), crl, issuer=ca, now=NOW)
    with pytest.raises(errors.CertificateRevoked) as caught:
        check_not_revoked(cert("revoked.pem"), crl, issuer=ca, now=NOW)
    assert caught.value.code == "certs.certificate_revoked"


def test_good_ocsp_response_verifies() -> None:
    status = verify_ocsp_response(
        ocsp_der("ocsp-good.der"),
        cert=cert("auth.pem"),
        issuer=cert("ca.pem"),
        trust_roots=[cert("ca.pem")],
        now=NOW,
        max_age=MAX_AGE,
    )
    assert status.serial == cert("auth.pem").serial_number
    assert status.this_update == NOW - timedelta(minutes=5)
    assert status.fresh_until == NOW + timedelta(minutes=55)


@pytest.mark.parametrize(
    ("name", "subject", "code"),
    [
        ("ocsp-revoked.der", "revoked.pem", "certs.ocsp_revoked"),
        ("ocsp-unknown.der", "auth.pem", "certs.ocsp_unknown"),
        ("ocsp-unauthorized.der", "auth.pem", "certs.ocsp_unauthorized"),
        ("ocsp-unauthorized-no-eku.der", "auth.pem", "certs.ocsp_unauthorized"),
        ("ocsp-stale.der", "auth.pem", "certs.ocsp_stale"),
        ("ocsp-expired.der", "auth.pem", "certs.ocsp_stale"),
        ("ocsp-future.der", "auth.pem", "certs.ocsp_future"),
        ("ocsp-good.der", "sign.pem", "certs.ocsp_invalid"),
    ],
)
def test_bad_ocsp_responses_are_refused_with_their_code(name: str, subject: str, code: str) -> None:
    with pytest.raises(errors.OcspError) as caught:
        verify_ocsp_response(
            ocsp_der(name),
            cert=cert(subject),
            issuer=cert("ca.pem"),
            trust_roots=[cert("ca.pem")],
            now=NOW,
            max_age=MAX_AGE,
        )
    assert caught.value.code == code


def test_revoked_ocsp_status_is_a_certificate_revocation() -> None:
    with pytest.raises(errors.CertificateRevoked):
        verify_ocsp_response(
            ocsp_der("ocsp-revoked.der"),
            cert=cert("revoked.pem"),
            issuer=cert("ca.pem"),
            trust_roots=[cert("ca.pem")],
            now=NOW,
            max_age=MAX_AGE,
        )


def _vector_digest() -> bytes:
    hasher = hashes.Hash(hashes.SHA256())
    hasher.update(b"renkei vector")
    return hasher.finalize()


def test_timestamp_vector_verifies() -> None:
    gen_time = verify_timestamp_token(
        (VECTORS / "timestamp.tsr").read_bytes(),
        digest=_vector_digest(),
        trust_roots=[cert("ca.pem")],
        now=NOW,
    )
    assert gen_time == NOW - timedelta(hours=1)


def test_timestamp_vector_is_refused_for_another_digest_or_root() -> None:
    token = (VECTORS / "timestamp.tsr").read_bytes()
    with pytest.raises(errors.TimestampInvalid):
        verify_timestamp_token(token, digest=bytes(32), trust_roots=[cert("ca.pem")], now=NOW)
    with pytest.raises(errors.TimestampInvalid):
        verify_timestamp_token(
            token, digest=_vector_digest(), trust_roots=[cert("wrong_ca_root.pem")], now=NOW
        )

"""OCSP: the responder's answers, and every check of verify_ocsp_response (good and bad)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp
from certs_helpers import NOW, Issuer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from certs import errors
from certs.ca import CertificateAuthority
from certs.keys import generate_key
from certs.ocsp import build_ocsp_request, verify_ocsp_response
from certs.ocsp_responder import OcspResponder

MAX_AGE = timedelta(hours=1)


def responder_for(ca: CertificateAuthority, *, validity: timedelta = MAX_AGE) -> OcspResponder:
    key = generate_key("ec-p256")
    cert = ca.issue_service_certificate(key.public_key(), profile="ocsp", now=NOW)
    return OcspResponder(
        issuer=ca.certificate,
        responder_certificate=cert,
        responder_key=key,
        status_of=ca.status_of,
        validity=validity,
    )


def verify(
    ca: CertificateAuthority, der: bytes, cert: x509.Certificate, **overrides: object
) -> None:
    options: dict[str, object] = {
        "cert": cert,
        "issuer": ca.certificate,
        "trust_roots": [ca.certificate],
        "now": NOW,
        "max_age": MAX_AGE,
    }
    options.update(overrides)
    verify_ocsp_response(der, **options)  # type: ignore[arg-type]


def test_responder_profile_has_ocsp_signing_and_nocheck(ca: CertificateAuthority) -> None:
    cert = responder_for(ca).responder_certificate
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING]
    cert.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert ca.issued()[-1].profile == "ocsp"


def test_good_then_revoked_at_once(ca: CertificateAuthority, issue: Issuer) -> None:
    responder = responder_for(ca)
    cert = issue("auth")
    request = build_ocsp_request(cert, ca.certificate)
    good = responder.respond(request, now=NOW)
    status = verify_ocsp_response(
        good, cert=cert, issuer=ca.certificate, trust_roots=[ca.certificate], now=NOW,
        max_age=MAX_AGE,
    )  # fmt: skip
    assert status.this_update == NOW
    assert status.next_update == NOW + MAX_AGE
    parsed = ocsp.load_der_ocsp_response(good)
    assert parsed.certificates == [responder.responder_certificate]
    ca.revoke(cert.serial_number, reason="keyCompromise", now=NOW)
    revoked = responder.respond(request, now=NOW)
    with pytest.raises(errors.OcspRevoked, match=r"\(keyCompromise\)"):
        verify(ca, revoked, cert)


def test_unknown_serial_is_unknown(ca: CertificateAuthority, issue: Issuer, tmp_path: Path) -> None:
    other = CertificateAuthority.create(tmp_path / "o", instance="EE", now=NOW)
    stranger = other.issue_service_certificate(generate_key().public_key(), profile="tsa", now=NOW)
    # Same issuer name and key hash as ours is impossible; ask about an unissued serial instead.
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(*_issuer_hashes(ca), stranger.serial_number, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    response = ocsp.load_der_ocsp_response(responder_for(ca).respond(request, now=NOW))
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def _issuer_hashes(ca: CertificateAuthority) -> tuple[bytes, bytes]:
    from certs.ocsp import issuer_hashes

    return issuer_hashes(ca.certificate, hashes.SHA1())


def test_malformed_request_gets_malformed_request(ca: CertificateAuthority) -> None:
    response = ocsp.load_der_ocsp_response(responder_for(ca).respond(b"\x30\x03junk", now=NOW))
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_request_about_several_certificates_is_malformed(
    ca: CertificateAuthority, issue: Issuer
) -> None:
    single = asn1_ocsp.OCSPRequest.load(build_ocsp_request(issue("auth"), ca.certificate))
    entry = single["tbs_request"]["request_list"][0]
    double = asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [entry, entry]}}).dump()
    response = ocsp.load_der_ocsp_response(responder_for(ca).respond(double, now=NOW))
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_request_about_another_ca_is_unauthorized(
    ca: CertificateAuthority, issue: Issuer, tmp_path: Path
) -> None:
    other = CertificateAuthority.create(tmp_path / "o", instance="EE", now=NOW)
    foreign = other.issue_service_certificate(generate_key().public_key(), profile="tsa", now=NOW)
    request = build_ocsp_request(foreign, other.certificate)
    response = ocsp.load_der_ocsp_response(responder_for(ca).respond(request, now=NOW))
    assert response.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_broken_index_is_internal_error(ca: CertificateAuthority, issue: Issuer) -> None:
    cert = issue("auth")
    responder = responder_for(ca)
    (ca.directory / "index.json").write_text("not json")
    response = ocsp.load_der_ocsp_response(
        responder.respond(build_ocsp_request(cert, ca.certificate), now=NOW)
    )
    assert response.response_status is ocsp.OCSPResponseStatus.INTERNAL_ERROR


def test_nonce_is_echoed(ca: CertificateAuthority, issue: Issuer) -> None:
    cert = issue("auth")
    nonce = x509.OCSPNonce(b"0123456789abcdef")
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, ca.certificate, hashes.SHA1())
        .add_extension(nonce, critical=False)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    response = ocsp.load_der_ocsp_response(responder_for(ca).respond(request, now=NOW))
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value == nonce


def test_response_signed_by_the_ca_itself_is_accepted(
    ca: CertificateAuthority, issue: Issuer
) -> None:
    cert = issue("auth")
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert, issuer=ca.certificate, algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD, this_update=NOW, next_update=None,
            revocation_time=None, revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.NAME, ca.certificate)
        .sign(ca.private_key, hashes.SHA256())
    )  # fmt: skip
    status = verify_ocsp_response(
        response.public_bytes(serialization.Encoding.DER), cert=cert, issuer=ca.certificate,
        trust_roots=[ca.certificate], now=NOW + timedelta(minutes=59), max_age=MAX_AGE,
    )  # fmt: skip
    assert status.next_update is None
    assert status.fresh_until == NOW + MAX_AGE


def test_tampered_signature_is_invalid(ca: CertificateAuthority, issue: Issuer) -> None:
    cert = issue("auth")
    der = bytearray(responder_for(ca).respond(build_ocsp_request(cert, ca.certificate), now=NOW))
    signature = ocsp.load_der_ocsp_response(bytes(der)).signature
    position = bytes(der).index(signature) + len(signature) // 2
    der[position] ^= 0x01
    with pytest.raises(errors.OcspInvalid, match="signature"):
        verify(ca, bytes(der), cert)


def test_garbage_and_unsuccessful_responses_are_invalid(
    ca: CertificateAuthority, issue: Issuer
) -> None:
    cert = issue("auth")
    with pytest.raises(errors.OcspInvalid, match="malformed"):
        verify(ca, b"not an ocsp response", cert)
    unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.TRY_LATER
    ).public_bytes(serialization.Encoding.DER)
    with pytest.raises(errors.OcspInvalid, match="try_later"):
        verify(ca, unsuccessful, cert)


def test_issuer_must_be_a_trust_root_and_the_certificate_s_issuer(
    ca: CertificateAuthority, issue: Issuer, tmp_path: Path
) -> None:
    cert = issue("auth")
    der = responder_for(ca).respond(build_ocsp_request(cert, ca.certificate), now=NOW)
    other = CertificateAuthority.create(tmp_path / "o", instance="XX", now=NOW)
    with pytest.raises(errors.OcspUnauthorized):
        verify(ca, der, cert, trust_roots=[other.certificate])
    with pytest.raises(errors.OcspUnauthorized):
        verify(ca, der, cert, trust_roots=[])
    with pytest.raises(errors.OcspInvalid):
        verify(ca, der, cert, issuer=other.certificate, trust_roots=[other.certificate])


def test_expired_responder_certificate_is_unauthorized(
    ca: CertificateAuthority, issue: Issuer
) -> None:
    cert = issue("auth", validity_days=30)
    key = generate_key("ec-p256")
    short = ca.issue_service_certificate(key.public_key(), profile="ocsp", now=NOW, validity_days=1)
    responder = OcspResponder(ca.certificate, short, key, ca.status_of)
    later = NOW + timedelta(days=2)
    der = responder.respond(build_ocsp_request(cert, ca.certificate), now=later)
    with pytest.raises(errors.OcspUnauthorized, match="not valid now"):
        verify(ca, der, cert, now=later)


def test_freshness_limits_and_skew(ca: CertificateAuthority, issue: Issuer) -> None:
    cert = issue("auth")
    responder = responder_for(ca, validity=timedelta(hours=4))
    at = NOW + timedelta(hours=1)
    der = responder.respond(build_ocsp_request(cert, ca.certificate), now=at)
    verify(ca, der, cert, now=at + MAX_AGE)
    with pytest.raises(errors.OcspStale):
        verify(ca, der, cert, now=at + MAX_AGE + timedelta(seconds=1))
    verify(ca, der, cert, now=at - timedelta(seconds=60))
    with pytest.raises(errors.OcspFutureDated):
        verify(ca, der, cert, now=at - timedelta(seconds=61))
    with pytest.raises(errors.OcspFutureDated):
        verify(ca, der, cert, now=at - timedelta(seconds=5), skew=timedelta(0))
    with pytest.raises(ValueError, match="max_age"):
        verify(ca, der, cert, max_age=timedelta(0))

"""The error tree: stable codes, hierarchy, uniqueness."""

from __future__ import annotations

import pytest

from certs import errors

EXPECTED = {
    errors.CertsError: ("certs.error", Exception),
    errors.KeyFileError: ("certs.key_invalid", errors.CertsError),
    errors.CsrError: ("certs.csr_invalid", errors.CertsError),
    errors.CaError: ("certs.ca_invalid", errors.CertsError),
    errors.CaExists: ("certs.ca_exists", errors.CaError),
    errors.CertificateError: ("certs.certificate_invalid", errors.CertsError),
    errors.CertificateExpired: ("certs.certificate_expired", errors.CertificateError),
    errors.CertificateNotYetValid: (
        "certs.certificate_not_yet_valid",
        errors.CertificateError,
    ),
    errors.UntrustedCertificate: ("certs.certificate_untrusted", errors.CertificateError),
    errors.WrongKeyUsage: ("certs.certificate_wrong_usage", errors.CertificateError),
    errors.IdentityMismatch: (
        "certs.certificate_identity_mismatch",
        errors.CertificateError,
    ),
    errors.UnknownSerial: ("certs.unknown_serial", errors.CaError),
    errors.CertificateRevoked: ("certs.certificate_revoked", errors.CertificateError),
    errors.OcspError: ("certs.ocsp_error", errors.CertsError),
    errors.OcspUnavailable: ("certs.ocsp_unavailable", errors.OcspError),
    errors.OcspInvalid: ("certs.ocsp_invalid", errors.OcspError),
    errors.OcspUnauthorized: ("certs.ocsp_unauthorized", errors.OcspError),
    errors.OcspStale: ("certs.ocsp_stale", errors.OcspError),
    errors.OcspFutureDated: ("certs.ocsp_future", errors.OcspError),
    errors.OcspUnknown: ("certs.ocsp_unknown", errors.OcspError),
    errors.TsaError: ("certs.tsa_error", errors.CertsError),
    errors.TimestampInvalid: ("certs.timestamp_invalid", errors.CertsError),
    errors.SignatureInvalid: ("certs.signature_invalid", errors.CertsError),
    errors.PayloadInvalid: ("certs.payload_invalid", errors.SignatureInvalid),
}


def test_ocsp_revoked_is_both_an_ocsp_error_and_a_revocation() -> None:
    assert errors.OcspRevoked.code == "certs.ocsp_revoked"
    assert errors.OcspRevoked.__bases__ == (errors.OcspError, errors.CertificateRevoked)


@pytest.mark.parametrize(("error", "expected"), EXPECTED.items())
def test_codes_and_parents(error: type[errors.CertsError], expected: tuple[str, type]) -> None:
    code, parent = expected
    assert error.code == code
    assert error.__bases__ == (parent,)
    assert error("boom").code == code


def test_every_exported_error_is_covered_and_codes_are_unique() -> None:
    exported = {getattr(errors, name) for name in errors.__all__}
    assert exported == set(EXPECTED) | {errors.OcspRevoked}
    codes = [error.code for error in exported]
    assert len(codes) == len(set(codes))


def test_package_reexports() -> None:
    import certs

    for name in certs.__all__:
        assert hasattr(certs, name)
    assert certs.__all__ == sorted(certs.__all__)

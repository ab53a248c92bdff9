"""Errors raised by the ``certs`` package.

Every error carries a stable string ``code`` that callers may log, map to
protocol fault codes and test against::

    CertsError                      certs.error
    ├── KeyFileError                certs.key_invalid
    ├── CsrError                    certs.csr_invalid
    ├── CaError                     certs.ca_invalid
    │   ├── CaExists                certs.ca_exists
    │   └── UnknownSerial           certs.unknown_serial
    ├── CertificateError            certs.certificate_invalid
    │   ├── CertificateExpired      certs.certificate_expired
    │   ├── CertificateNotYetValid  certs.certificate_not_yet_valid
    │   ├── UntrustedCertificate    certs.certificate_untrusted
    │   ├── WrongKeyUsage           certs.certificate_wrong_usage
    │   ├── IdentityMismatch        certs.certificate_identity_mismatch
    │   └── CertificateRevoked      certs.certificate_revoked
    ├── OcspError                   certs.ocsp_error
    │   ├── OcspUnavailable         certs.ocsp_unavailable
    │   ├── OcspInvalid             certs.ocsp_invalid
    │   ├── OcspUnauthorized        certs.ocsp_unauthorized
    │   ├── OcspStale               certs.ocsp_stale
    │   ├── OcspFutureDated         certs.ocsp_future
    │   ├── OcspUnknown             certs.ocsp_unknown
    │   └── OcspRevoked             certs.ocsp_revoked   (also a CertificateRevoked)
    ├── TsaError                    certs.tsa_error
    ├── TimestampInvalid            certs.timestamp_invalid
    └── SignatureInvalid            certs.signature_invalid  (a JWS: form, header, key, time)
        └── PayloadInvalid          certs.payload_invalid    (signed, but not one strict object)

Exceptions of ``cryptography`` and of the operating system are translated into
these at the boundary (``raise ... from exc``).
"""

from __future__ import annotations

__all__ = [
    "CaError",
    "CaExists",
    "CertificateError",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateRevoked",
    "CertsError",
    "CsrError",
    "IdentityMismatch",
    "KeyFileError",
    "OcspError",
    "OcspFutureDated",
    "OcspInvalid",
    "OcspRevoked",
    "OcspStale",
    "OcspUnauthorized",
    "OcspUnavailable",
    "OcspUnknown",
    "PayloadInvalid",
    "SignatureInvalid",
    "TimestampInvalid",
    "TsaError",
    "UnknownSerial",
    "UntrustedCertificate",
    "WrongKeyUsage",
]


class CertsError(Exception):
    """Base class of every error raised by ``certs``."""

    code: str = "certs.error"


class KeyFileError(CertsError):
    """A key file is unreadable, malformed, encrypted or of an unsupported type."""

    code = "certs.key_invalid"


class CsrError(CertsError):
    """A CSR has a bad signature, a bad subject or does not fit the profile."""

    code = "certs.csr_invalid"


class CaError(CertsError):
    """A CA directory is missing, incomplete or inconsistent, or cannot issue now."""

    code = "certs.ca_invalid"


class CaExists(CaError):
    """Refused to create a CA where one already exists."""

    code = "certs.ca_exists"


class UnknownSerial(CaError):
    """The CA never issued a certificate with this serial number."""

    code = "certs.unknown_serial"


class CertificateError(CertsError):
    """A certificate is malformed or fails validation."""

    code = "certs.certificate_invalid"


class CertificateExpired(CertificateError):
    """A certificate in the path is past its ``notAfter``."""

    code = "certs.certificate_expired"


class CertificateNotYetValid(CertificateError):
    """A certificate in the path is before its ``notBefore``."""

    code = "certs.certificate_not_yet_valid"


class UntrustedCertificate(CertificateError):
    """No path to a trust root, a bad signature, or an issuer that is not a CA."""

    code = "certs.certificate_untrusted"


class WrongKeyUsage(CertificateError):
    """The certificate's key usage or extended key usage does not fit the profile."""

    code = "certs.certificate_wrong_usage"


class IdentityMismatch(CertificateError):
    """The identity bound into the certificate is missing, inconsistent or unexpected."""

    code = "certs.certificate_identity_mismatch"


class CertificateRevoked(CertificateError):
    """The certificate has been revoked (by its CRL entry or OCSP status)."""

    code = "certs.certificate_revoked"


class OcspError(CertsError):
    """Certificate status could not be established from OCSP; callers must refuse."""

    code = "certs.ocsp_error"


class OcspUnavailable(OcspError):
    """The OCSP responder could not be reached or did not answer with a response."""

    code = "certs.ocsp_unavailable"


class OcspInvalid(OcspError):
    """A malformed or unsuccessful response, a bad signature, or a response about another cert."""

    code = "certs.ocsp_invalid"


class OcspUnauthorized(OcspError):
    """The response is signed by neither the CA nor a responder the CA delegated to."""

    code = "certs.ocsp_unauthorized"


class OcspStale(OcspError):
    """The response is older than the freshness limit or past its nextUpdate."""

    code = "certs.ocsp_stale"


class OcspFutureDated(OcspError):
    """The response claims to be produced later than ``now`` (beyond the allowed skew)."""

    code = "certs.ocsp_future"


class OcspUnknown(OcspError):
    """The responder does not know the certificate (its CA never issued it)."""

    code = "certs.ocsp_unknown"


class OcspRevoked(OcspError, CertificateRevoked):
    """A valid, fresh OCSP response says the certificate is revoked."""

    code = "certs.ocsp_revoked"


class TsaError(CertsError):
    """The time-stamping authority cannot be used: unreachable, refusing, misconfigured."""

    code = "certs.tsa_error"


class TimestampInvalid(CertsError):
    """A time-stamp token is malformed, badly signed, untrusted or not about the given digest."""

    code = "certs.timestamp_invalid"


class SignatureInvalid(CertsError):
    """A compact JWS is malformed, of the wrong type, signed with the wrong key or
    algorithm, does not verify, or its payload is not one strict JSON object.

    ``reason`` is one word, fit for a metric label: ``malformed``, ``type``,
    ``header``, ``key``, ``algorithm``, ``signature``, ``payload``, ``claims`` or
    ``expired``.
    """

    code = "certs.signature_invalid"

    def __init__(self, message: str, *, reason: str = "signature") -> None:
        super().__init__(message)
        self.reason = reason


class PayloadInvalid(SignatureInvalid):
    """A JWS payload is not one JSON object read strictly (duplicate keys, NaN, ...)."""

    code = "certs.payload_invalid"

    def __init__(self, message: str, *, reason: str = "payload") -> None:
        super().__init__(message, reason=reason)

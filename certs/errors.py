"""Errors raised by the ``certs`` package.

Every error carries a stable string ``code`` that callers may log, map to
protocol fault codes and test against::

    CertsError                      certs.error
    ├── KeyFileError                certs.key_invalid
    ├── CsrError                    certs.csr_invalid
    ├── CaError                     certs.ca_invalid
    │   └── CaExists                certs.ca_exists
    └── CertificateError            certs.certificate_invalid
        ├── CertificateExpired      certs.certificate_expired
        ├── CertificateNotYetValid  certs.certificate_not_yet_valid
        ├── UntrustedCertificate    certs.certificate_untrusted
        ├── WrongKeyUsage           certs.certificate_wrong_usage
        └── IdentityMismatch        certs.certificate_identity_mismatch

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
    "CertsError",
    "CsrError",
    "IdentityMismatch",
    "KeyFileError",
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

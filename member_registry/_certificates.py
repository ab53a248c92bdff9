"""Certificate encoding helpers shared by the configuration, anchor and service modules.

Fingerprints and PEM encoding come from ``certs.keys`` so that the registry and the
nodes pin certificates the same way (lowercase hex SHA-256 of the DER encoding).
"""

from __future__ import annotations

import re

from cryptography import x509

from certs.keys import certificate_pem, fingerprint

__all__ = ["certificate_from_pem", "certificate_to_pem", "fingerprint", "is_fingerprint"]

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def is_fingerprint(text: object) -> bool:
    return isinstance(text, str) and _FINGERPRINT.fullmatch(text) is not None


def certificate_to_pem(certificate: x509.Certificate) -> str:
    return certificate_pem(certificate)


def certificate_from_pem(text: str) -> x509.Certificate:
    """Parse exactly one PEM certificate; raises ``ValueError`` otherwise."""
    if not isinstance(text, str):
        raise ValueError("certificate must be a PEM string")
    data = text.encode("ascii", errors="strict")
    if data.count(b"-----BEGIN CERTIFICATE-----") != 1:
        raise ValueError("expected exactly one PEM certificate")
    return x509.load_pem_x509_certificate(data)

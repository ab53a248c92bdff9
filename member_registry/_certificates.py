"""Certificate encoding helpers shared by the configuration, anchor and service modules.

``fingerprint`` mirrors ``certs.keys.fingerprint`` (lowercase hex SHA-256 of the DER
encoding); it is computed here until that module lands, and is the one place to swap.
"""

from __future__ import annotations

import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = ["certificate_from_pem", "certificate_to_pem", "fingerprint", "is_fingerprint"]

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def fingerprint(certificate: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate's DER encoding."""
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def is_fingerprint(text: object) -> bool:
    return isinstance(text, str) and _FINGERPRINT.fullmatch(text) is not None


def certificate_to_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(Encoding.PEM).decode("ascii")


def certificate_from_pem(text: str) -> x509.Certificate:
    """Parse exactly one PEM certificate; raises ``ValueError`` otherwise."""
    if not isinstance(text, str):
        raise ValueError("certificate must be a PEM string")
    data = text.encode("ascii", errors="strict")
    if data.count(b"-----BEGIN CERTIFICATE-----") != 1:
        raise ValueError("expected exactly one PEM certificate")
    return x509.load_pem_x509_certificate(data)

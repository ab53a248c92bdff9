"""Keys and certificates of the CA's own services (OCSP responder, TSA), kept in the CA directory.

``<ca dir>/services/<profile>.key`` and ``<profile>.pem`` are created on first
use and the certificate is re-issued for the same key when it is not valid at
``now`` or ends within ``renew_before``. Operators who keep service keys
elsewhere pass explicit key and certificate paths to the servers instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from certs.ca import CertificateAuthority
from certs.errors import CaError, CertsError
from certs.keys import (
    KeyAlgorithm,
    PrivateKey,
    generate_key,
    load_certificate,
    load_private_key,
    save_certificate,
    save_private_key,
)
from certs.service_profiles import ServiceProfile

__all__ = ["SERVICES_DIR", "ServiceIdentity", "load_or_issue_service_identity"]

SERVICES_DIR = "services"
DEFAULT_RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    """A service's key and the certificate the CA issued for it."""

    certificate: x509.Certificate
    key: PrivateKey


def load_or_issue_service_identity(
    ca: CertificateAuthority,
    profile: ServiceProfile,
    *,
    now: datetime,
    validity_days: int = 365,
    renew_before: timedelta = DEFAULT_RENEW_BEFORE,
    algorithm: KeyAlgorithm = "ec-p256",
) -> ServiceIdentity:
    """The ``profile`` service's key and a certificate valid at ``now`` (issued if needed)."""
    directory = ca.directory / SERVICES_DIR
    key_path = directory / f"{profile}.key"
    cert_path = directory / f"{profile}.pem"
    try:
        directory.mkdir(exist_ok=True)
    except OSError as exc:
        raise CaError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    if key_path.exists():
        key = load_private_key(key_path)
    else:
        key = generate_key(algorithm)
        save_private_key(key, key_path)
    certificate = _current_certificate(cert_path, key, now=now, renew_before=renew_before)
    if certificate is None:
        certificate = ca.issue_service_certificate(
            key.public_key(), profile=profile, now=now, validity_days=validity_days
        )
        save_certificate(certificate, cert_path)
    return ServiceIdentity(certificate, key)


def _current_certificate(
    path: Path, key: PrivateKey, *, now: datetime, renew_before: timedelta
) -> x509.Certificate | None:
    if not path.exists():
        return None
    try:
        certificate = load_certificate(path)
    except CertsError:
        return None
    if certificate.public_key() != key.public_key():
        return None
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc - renew_before:
        return None
    return certificate

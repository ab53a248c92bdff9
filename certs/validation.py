"""Certificate-path validation for the federation's two profiles.

:func:`verify_certificate` builds the path leaf -> intermediates -> trust root
by issuer name and checks, failing closed at the first problem:

* every signature in the path (``verify_directly_issued_by``), with SHA-256 or
  stronger (or Ed25519);
* every certificate's validity window at ``now``;
* every issuer is a CA (BasicConstraints CA=true, KeyUsage keyCertSign) within
  its path-length constraint; the leaf is not a CA;
* no certificate carries a critical extension this module does not understand
  (RFC 5280 §4.2);
* the leaf's KeyUsage and ExtendedKeyUsage fit the profile.

It does not check revocation (the caller checks stapled OCSP) nor the bound
identity (use :func:`certs.profiles.identity_of` or :func:`check_identity`).
It is pure and cheap enough to run per connection; callers may cache results
keyed by fingerprint and time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from certs._time import require_aware
from certs.errors import (
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    IdentityMismatch,
    UntrustedCertificate,
    WrongKeyUsage,
)
from certs.identifiers import MemberId, NodeId
from certs.profiles import Profile, identity_of

__all__ = ["MAX_PATH_LENGTH", "check_identity", "verify_certificate"]

# Leaf plus at most this many issuers; bounds the search against loops.
MAX_PATH_LENGTH = 4

_UNDERSTOOD_CRITICAL = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    }
)
_E = TypeVar("_E", bound=x509.ExtensionType)

_ACCEPTED_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_TLS_USAGES = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


def verify_certificate(
    cert: x509.Certificate,
    *,
    trust_roots: Sequence[x509.Certificate],
    now: datetime,
    profile: Profile,
    intermediates: Sequence[x509.Certificate] = (),
) -> None:
    """Raise a :class:`~certs.errors.CertificateError` unless ``cert`` is valid for ``profile``."""
    require_aware(now)
    if not trust_roots:
        raise UntrustedCertificate("no trust roots given; nothing can be trusted")
    _check_well_formed(cert, "the certificate")
    _check_validity(cert, now, "the certificate")
    _check_not_ca(cert)
    _check_profile_usage(cert, profile)

    current = cert
    for depth in range(MAX_PATH_LENGTH):
        issuer, is_root = _find_issuer(current, trust_roots, intermediates)
        what = "the trust root" if is_root else f"intermediate CA {issuer.subject.rfc4514_string()}"
        _check_well_formed(issuer, what)
        _check_validity(issuer, now, what)
        # ``depth`` CA certificates sit between this issuer and the leaf.
        _check_issuer_is_ca(issuer, what, intermediates_below=depth)
        if is_root:
            return
        current = issuer
    raise UntrustedCertificate(f"no trust root within {MAX_PATH_LENGTH} issuers")


def check_identity(cert: x509.Certificate, profile: Profile, expected: NodeId | MemberId) -> None:
    """Raise :class:`IdentityMismatch` unless ``cert`` is bound to ``expected``."""
    actual = identity_of(cert, profile)
    if actual != expected:
        raise IdentityMismatch(f"the certificate belongs to {actual}, expected {expected}")


def _find_issuer(
    cert: x509.Certificate,
    trust_roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
) -> tuple[x509.Certificate, bool]:
    """The trust root or intermediate whose key signed ``cert`` (roots preferred)."""
    candidates = [(root, True) for root in trust_roots] + [
        (intermediate, False) for intermediate in intermediates
    ]
    for candidate, is_root in candidates:
        if candidate.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return candidate, is_root
    raise UntrustedCertificate(
        f"no trusted issuer named {cert.issuer.rfc4514_string()!r} signed "
        f"{cert.subject.rfc4514_string()!r}"
    )


def _check_well_formed(cert: x509.Certificate, what: str) -> None:
    algorithm = cert.signature_hash_algorithm
    if algorithm is not None and not isinstance(algorithm, _ACCEPTED_HASHES):
        raise UntrustedCertificate(f"{what} is signed with {algorithm.name}, which is too weak")
    try:
        extensions = cert.extensions
    except (ValueError, x509.DuplicateExtension) as exc:
        raise CertificateError(f"{what} has malformed extensions") from exc
    for extension in extensions:
        if extension.critical and extension.oid not in _UNDERSTOOD_CRITICAL:
            raise UntrustedCertificate(
                f"{what} has an unsupported critical extension {extension.oid.dotted_string}"
            )


def _check_validity(cert: x509.Certificate, now: datetime, what: str) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateNotYetValid(
            f"{what} is not valid before {cert.not_valid_before_utc.isoformat()}"
        )
    if now > cert.not_valid_after_utc:
        raise CertificateExpired(f"{what} expired at {cert.not_valid_after_utc.isoformat()}")


def _extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_not_ca(cert: x509.Certificate) -> None:
    constraints = _extension(cert, x509.BasicConstraints)
    usage = _extension(cert, x509.KeyUsage)
    if (constraints is not None and constraints.ca) or (usage is not None and usage.key_cert_sign):
        raise WrongKeyUsage("a CA certificate cannot be used as an auth or sign certificate")


def _check_issuer_is_ca(issuer: x509.Certificate, what: str, *, intermediates_below: int) -> None:
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise UntrustedCertificate(f"{what} is not a CA (BasicConstraints CA=true is missing)")
    usage = _extension(issuer, x509.KeyUsage)
    if usage is None or not usage.key_cert_sign:
        raise UntrustedCertificate(f"{what} may not sign certificates (no keyCertSign)")
    if constraints.path_length is not None and intermediates_below > constraints.path_length:
        raise UntrustedCertificate(
            f"{what} allows {constraints.path_length} intermediate CAs below it, "
            f"found {intermediates_below}"
        )


def _check_profile_usage(cert: x509.Certificate, profile: Profile) -> None:
    usage = _extension(cert, x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        raise WrongKeyUsage(f"a {profile} certificate needs KeyUsage digitalSignature")
    extended = _extension(cert, x509.ExtendedKeyUsage)
    purposes = set(extended) if extended is not None else set()
    if profile == "auth":
        if not all(purpose in purposes for purpose in _TLS_USAGES):
            raise WrongKeyUsage("an auth certificate needs ExtendedKeyUsage serverAuth+clientAuth")
        return
    if not usage.content_commitment:
        raise WrongKeyUsage("a sign certificate needs KeyUsage contentCommitment")
    if any(purpose in purposes for purpose in _TLS_USAGES):
        raise WrongKeyUsage("a sign certificate must not be usable for TLS")

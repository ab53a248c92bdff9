"""Certificate revocation lists (RFC 5280 §5): reason names, building, checking.

The CA builds its CRL from the revoked entries of its index
(:meth:`certs.ca.CertificateAuthority.build_crl`); :func:`check_not_revoked`
is the relying party's side, for peers that use CRLs rather than OCSP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from certs._time import require_aware
from certs.errors import CertificateError, CertificateRevoked
from certs.keys import PrivateKey, signature_hash

__all__ = [
    "REVOCATION_REASONS",
    "RevokedEntry",
    "check_not_revoked",
    "make_crl",
    "reason_flag",
]

# RFC 5280 §5.3.1 CRLReason names, as operators type them. removeFromCRL is
# a delta-CRL device and cannot be a reason to revoke.
REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
}


def reason_flag(reason: str) -> x509.ReasonFlags:
    """The CRL reason for an RFC 5280 reason name; anything else is a ``ValueError``."""
    try:
        return REVOCATION_REASONS[reason]
    except KeyError:
        names = ", ".join(REVOCATION_REASONS)
        raise ValueError(f"unknown revocation reason {reason!r} (one of {names})") from None


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str


def make_crl(
    *,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    revoked: Sequence[RevokedEntry],
    number: int,
    now: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    """A v2 CRL signed by ``issuer_key``, with CRLNumber and AuthorityKeyIdentifier."""
    require_aware(now)
    require_aware(next_update)
    if next_update <= now:
        raise ValueError("the CRL's nextUpdate must be after its thisUpdate")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    for entry in revoked:
        revoked_builder = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
        )
        flag = reason_flag(entry.reason)
        # RFC 5280 §5.3.1: the reason code "unspecified" SHOULD be absent.
        if flag is not x509.ReasonFlags.unspecified:
            revoked_builder = revoked_builder.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(revoked_builder.build())
    return builder.sign(issuer_key, signature_hash(issuer_key))


def check_not_revoked(
    cert: x509.Certificate,
    crl: x509.CertificateRevocationList,
    *,
    issuer: x509.Certificate,
    now: datetime,
) -> None:
    """Raise unless ``crl`` is a current CRL of ``issuer`` that does not list ``cert``.

    A CRL by another issuer, with a bad signature, or past its nextUpdate
    proves nothing and raises :class:`CertificateError`; a listed serial raises
    :class:`CertificateRevoked`.
    """
    require_aware(now)
    if crl.issuer != issuer.subject or cert.issuer != issuer.subject:
        raise CertificateError("the CRL and the certificate are not from the same issuer")
    try:
        signature_ok = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError) as exc:
        raise CertificateError("the CRL's signature cannot be checked") from exc
    if not signature_ok:
        raise CertificateError("the CRL's signature is invalid")
    next_update = crl.next_update_utc
    if next_update is None or now > next_update:
        raise CertificateError("the CRL is out of date (past its nextUpdate)")
    if now < crl.last_update_utc:
        raise CertificateError("the CRL is dated in the future")
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None:
        raise CertificateRevoked(
            f"certificate {cert.serial_number:040x} was revoked at "
            f"{entry.revocation_date_utc.isoformat()}"
        )

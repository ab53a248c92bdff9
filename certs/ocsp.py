"""OCSP (RFC 6960) on the relying party's side: requests, and verifying responses.

:func:`verify_ocsp_response` is pure (no I/O, ``now`` is a parameter) and fails
closed. In order, it checks that the response

1. parses and has status ``successful`` (RFC 6960 §4.2.1) -> :class:`OcspInvalid`;
2. is signed by the certificate's issuer itself, or by a delegated responder
   whose certificate the issuer signed directly and which carries
   id-kp-OCSPSigning and is valid now (§4.2.2.2) -> :class:`OcspUnauthorized`;
3. has a valid signature with a pinned algorithm -> :class:`OcspInvalid`;
4. holds a SingleResponse whose CertID (issuer name hash, issuer key hash,
   serial) is this certificate's -> :class:`OcspInvalid`;
5. has no thisUpdate in the future beyond ``skew`` -> :class:`OcspFutureDated`;
6. is no older than ``max_age`` and not past its nextUpdate -> :class:`OcspStale`;
7. says ``good``; otherwise :class:`OcspRevoked` or :class:`OcspUnknown`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs._signatures import SignatureRejected, verify_signature
from certs._time import require_aware
from certs.errors import (
    OcspFutureDated,
    OcspInvalid,
    OcspRevoked,
    OcspStale,
    OcspUnauthorized,
    OcspUnknown,
)

__all__ = [
    "DEFAULT_SKEW",
    "OCSP_REQUEST_TYPE",
    "OCSP_RESPONSE_TYPE",
    "OcspStatus",
    "build_ocsp_request",
    "issuer_hashes",
    "verify_ocsp_response",
]

OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
# Clock difference tolerated between responder and relying party.
DEFAULT_SKEW = timedelta(seconds=60)
# CertID hash algorithms a request may use (SHA-1 is what most clients send;
# in a CertID it only names the issuer, it is not a signature).
CERT_ID_HASHES: tuple[type[hashes.HashAlgorithm], ...] = (
    hashes.SHA1,
    hashes.SHA256,
    hashes.SHA384,
    hashes.SHA512,
)


@dataclass(frozen=True, slots=True)
class OcspStatus:
    """A verified ``good`` status, and until when it may be relied on."""

    serial: int
    produced_at: datetime
    this_update: datetime
    next_update: datetime | None
    fresh_until: datetime
    """``min(this_update + max_age, next_update)``: re-verify or refetch after this."""


def issuer_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """The CertID ``(issuerNameHash, issuerKeyHash)`` of ``issuer`` under ``algorithm``.

    Computed by cryptography's own request builder, so the encoding rules
    (DER name, key BIT STRING contents) are not re-implemented here.
    """
    request = ocsp.OCSPRequestBuilder().add_certificate(issuer, issuer, algorithm).build()
    return request.issuer_name_hash, request.issuer_key_hash


def build_ocsp_request(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    """A DER OCSP request for ``cert`` (no nonce: stapled responses are cached and shared)."""
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, algorithm or hashes.SHA256())
        .build()
    )
    return request.public_bytes(serialization.Encoding.DER)


def verify_ocsp_response(
    der: bytes,
    *,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    trust_roots: Sequence[x509.Certificate],
    now: datetime,
    max_age: timedelta,
    skew: timedelta = DEFAULT_SKEW,
) -> OcspStatus:
    """Return the ``good`` status of ``cert`` proven by ``der``, or raise an ``OcspError``.

    ``issuer`` must be one of ``trust_roots`` and the issuer of ``cert``; the
    certificate path itself is checked by :func:`certs.validation.verify_certificate`.
    """
    require_aware(now)
    if max_age <= timedelta(0):
        raise ValueError("max_age must be positive")
    _check_issuer(cert, issuer, trust_roots)
    response = _parse(der)
    signer = _authorised_signer(response, issuer, now)
    _check_signature(response, signer)
    single = _single_response_for(response, cert, issuer)
    return _check_times_and_status(response, single, cert, now=now, max_age=max_age, skew=skew)


def _check_issuer(
    cert: x509.Certificate, issuer: x509.Certificate, trust_roots: Sequence[x509.Certificate]
) -> None:
    if not any(root == issuer for root in trust_roots):
        raise OcspUnauthorized("the certificate's issuer is not among the trust roots")
    if cert.issuer != issuer.subject:
        raise OcspInvalid("the given issuer did not issue this certificate")


def _parse(der: bytes) -> ocsp.OCSPResponse:
    try:
        response = ocsp.load_der_ocsp_response(der)
        status = response.response_status
    except (ValueError, TypeError) as exc:
        raise OcspInvalid("malformed OCSP response") from exc
    if status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspInvalid(f"the responder answered {status.name.lower()}")
    return response


def _key_hash(cert: x509.Certificate) -> bytes:
    # RFC 6960 ResponderID byKey: SHA-1 of the subjectPublicKey BIT STRING,
    # which is exactly the RFC 5280 §4.2.1.2 method-1 key identifier.
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _authorised_signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> x509.Certificate:
    try:
        responder_name = response.responder_name
        responder_key_hash = response.responder_key_hash
        candidates = [issuer, *response.certificates]
    except (ValueError, TypeError) as exc:
        raise OcspInvalid("malformed responder id or certificates") from exc

    def names_signer(candidate: x509.Certificate) -> bool:
        if responder_name is not None:
            return candidate.subject == responder_name
        return responder_key_hash is not None and _key_hash(candidate) == responder_key_hash

    signer = next((c for c in candidates if names_signer(c)), None)
    if signer is None:
        raise OcspUnauthorized("the signer is neither the CA nor a certificate in the response")
    if signer == issuer:
        return issuer
    _check_delegated_responder(signer, issuer, now)
    return signer


def _check_delegated_responder(
    responder: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> None:
    subject = responder.subject.rfc4514_string()
    if responder.issuer != issuer.subject:
        raise OcspUnauthorized(f"responder {subject!r} was not issued by the certificate's CA")
    try:
        responder.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise OcspUnauthorized(f"responder {subject!r} was not signed by the CA") from exc
    try:
        purposes = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError) as exc:
        raise OcspUnauthorized(f"responder {subject!r} has no OCSPSigning usage") from exc
    if ExtendedKeyUsageOID.OCSP_SIGNING not in purposes:
        raise OcspUnauthorized(f"responder {subject!r} has no OCSPSigning usage")
    if not responder.not_valid_before_utc <= now <= responder.not_valid_after_utc:
        raise OcspUnauthorized(f"responder {subject!r} certificate is not valid now")


def _check_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    try:
        verify_signature(
            signer.public_key(),
            response.signature,
            response.tbs_response_bytes,
            response.signature_algorithm_oid.dotted_string,
        )
    except SignatureRejected as exc:
        raise OcspInvalid(f"the response's signature is not acceptable: {exc}") from exc


def _single_response_for(
    response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse:
    try:
        singles = list(response.responses)
    except (ValueError, TypeError) as exc:
        raise OcspInvalid("malformed single responses") from exc
    for single in singles:
        if single.serial_number != cert.serial_number:
            continue
        algorithm = single.hash_algorithm
        if not isinstance(algorithm, CERT_ID_HASHES):
            continue
        if (single.issuer_name_hash, single.issuer_key_hash) == issuer_hashes(issuer, algorithm):
            return single
    raise OcspInvalid("the response is not about this certificate")


def _check_times_and_status(
    response: ocsp.OCSPResponse,
    single: ocsp.OCSPSingleResponse,
    cert: x509.Certificate,
    *,
    now: datetime,
    max_age: timedelta,
    skew: timedelta,
) -> OcspStatus:
    produced_at = response.produced_at_utc
    this_update = single.this_update_utc
    next_update = single.next_update_utc
    latest_acceptable = now + skew
    # producedAt is informational (and set by the signing library's clock);
    # freshness and dating are judged on thisUpdate, as RFC 6960 §4.2.2.1 does.
    if this_update > latest_acceptable:
        raise OcspFutureDated(
            f"the response is dated {this_update.isoformat()}, after {now.isoformat()}"
        )
    if now - this_update > max_age:
        raise OcspStale(
            f"the response from {this_update.isoformat()} is older than {max_age} "
            f"at {now.isoformat()}"
        )
    if next_update is not None and now > next_update:
        raise OcspStale(f"the response expired at its nextUpdate {next_update.isoformat()}")
    status = single.certificate_status
    serial = f"{cert.serial_number:040x}"
    if status is ocsp.OCSPCertStatus.REVOKED:
        revoked_at = single.revocation_time_utc
        reason = single.revocation_reason
        raise OcspRevoked(
            f"certificate {serial} was revoked at "
            f"{revoked_at.isoformat() if revoked_at else '?'}"
            f" ({reason.value if reason else 'unspecified'})"
        )
    if status is not ocsp.OCSPCertStatus.GOOD:
        raise OcspUnknown(f"the responder does not know certificate {serial}")
    fresh_until = this_update + max_age
    if next_update is not None:
        fresh_until = min(fresh_until, next_update)
    return OcspStatus(
        serial=cert.serial_number,
        produced_at=produced_at,
        this_update=this_update,
        next_update=next_update,
        fresh_until=fresh_until,
    )

"""Building OCSP responses (RFC 6960) for the instance CA, signed by a delegated responder.

:class:`OcspResponder` answers one DER request at a time and never raises for
a bad request: it answers ``malformedRequest``, ``unauthorized`` (a CertID of
another CA: this responder is not authoritative for it) or ``internalError``
(the CA index cannot be read), as §2.3 describes. Status comes from a lookup
function called on every request, so a revocation applies at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from certs._time import require_aware
from certs.ca import CertStatus
from certs.crl import reason_flag
from certs.errors import CertsError
from certs.keys import PrivateKey, signature_hash
from certs.ocsp import CERT_ID_HASHES, issuer_hashes

__all__ = ["DEFAULT_VALIDITY", "OcspResponder"]

# nextUpdate = thisUpdate + this, unless configured otherwise.
DEFAULT_VALIDITY = timedelta(hours=1)

StatusLookup = Callable[[int], CertStatus]


@dataclass(frozen=True, slots=True)
class OcspResponder:
    """Signs responses about ``issuer``'s certificates with the delegated ``responder_key``."""

    issuer: x509.Certificate
    responder_certificate: x509.Certificate
    responder_key: PrivateKey
    status_of: StatusLookup
    validity: timedelta = DEFAULT_VALIDITY

    def respond(self, request_der: bytes, *, now: datetime) -> bytes:
        """The DER response to ``request_der`` at ``now``."""
        require_aware(now)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            serial = request.serial_number
            algorithm = request.hash_algorithm
            name_hash = request.issuer_name_hash
            key_hash = request.issuer_key_hash
            extensions = request.extensions
        except (
            ValueError,
            TypeError,
            UnsupportedAlgorithm,
            x509.DuplicateExtension,
            # cryptography's answer to a request about several certificates.
            NotImplementedError,
        ):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if not isinstance(algorithm, CERT_ID_HASHES):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if (name_hash, key_hash) != issuer_hashes(self.issuer, algorithm):
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        try:
            status = self.status_of(serial)
        except CertsError:
            return _unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)

        cert_status, revoked_at, reason = _cert_status(status)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=name_hash,
                issuer_key_hash=key_hash,
                serial_number=serial,
                algorithm=algorithm,
                cert_status=cert_status,
                this_update=now,
                next_update=now + self.validity,
                revocation_time=revoked_at,
                revocation_reason=reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.responder_certificate)
            .certificates([self.responder_certificate])
        )
        nonce = _nonce(extensions)
        if nonce is not None:
            # Echoed so that clients asking with a nonce (openssl ocsp) can match it.
            builder = builder.add_extension(nonce, critical=False)
        response = builder.sign(self.responder_key, signature_hash(self.responder_key))
        return response.public_bytes(serialization.Encoding.DER)


def _cert_status(
    status: CertStatus,
) -> tuple[ocsp.OCSPCertStatus, datetime | None, x509.ReasonFlags | None]:
    if status.state == "good":
        return ocsp.OCSPCertStatus.GOOD, None, None
    if status.state == "revoked" and status.revoked_at is not None:
        flag = reason_flag(status.reason or "unspecified")
        # As in the CRL, "unspecified" is expressed by leaving the reason out.
        reason = None if flag is x509.ReasonFlags.unspecified else flag
        return ocsp.OCSPCertStatus.REVOKED, status.revoked_at, reason
    return ocsp.OCSPCertStatus.UNKNOWN, None, None


def _nonce(extensions: x509.Extensions) -> x509.OCSPNonce | None:
    try:
        return extensions.get_extension_for_class(x509.OCSPNonce).value
    except x509.ExtensionNotFound:
        return None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(status)
    return response.public_bytes(serialization.Encoding.DER)

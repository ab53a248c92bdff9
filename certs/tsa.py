"""The time-stamping authority (RFC 3161): answering TimeStampReq with a signed token.

A token is a CMS SignedData (RFC 5652) whose content is a TSTInfo (§2.4.2):
our policy OID, the request's messageImprint echoed, a random serial, genTime,
one second of accuracy and the request's nonce echoed. The single SignerInfo
signs, as signed attributes, the content type, the message digest and the
ESSCertIDv2 signing-certificate attribute (RFC 5816) naming the TSA
certificate; the certificate itself is included when the request sets
``certReq``. Requests are refused with a ``rejection`` status and the RFC's
failure bit, never with an exception.

The TSA key must be ECDSA P-256 or RSA (signed with SHA-256). The certificate
must carry the critical id-kp-timeStamping usage (:mod:`certs.service_profiles`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from certs._signatures import digest, sign, signature_algorithm_name
from certs._time import require_aware
from certs.errors import TsaError
from certs.keys import PrivateKey

__all__ = [
    "ACCEPTED_DIGESTS",
    "DEFAULT_POLICY_OID",
    "TIMESTAMP_QUERY_TYPE",
    "TIMESTAMP_REPLY_TYPE",
    "TimeStampAuthority",
    "TimeStampReply",
    "rejection",
]

TIMESTAMP_QUERY_TYPE = "application/timestamp-query"
TIMESTAMP_REPLY_TYPE = "application/timestamp-reply"
# A UUID-derived OID (ITU-T X.667, arc 2.25): unique without registration.
DEFAULT_POLICY_OID = "2.25.300402647973914703790067654518918297658"
# messageImprint algorithms accepted, with their digest sizes.
ACCEPTED_DIGESTS: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}


@dataclass(frozen=True, slots=True)
class TimeStampAuthority:
    """Signs time-stamp tokens with ``key`` under ``certificate``."""

    certificate: x509.Certificate
    key: PrivateKey
    policy_oid: str = DEFAULT_POLICY_OID

    def __post_init__(self) -> None:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            raise TsaError("the TSA key must be ECDSA P-256 or RSA, not Ed25519")
        if self.certificate.public_key() != self.key.public_key():
            raise TsaError("the TSA key does not match its certificate")

    def respond(self, request_der: bytes, *, now: datetime, serial: int) -> bytes:
        """The DER TimeStampResp to ``request_der``: a token at ``now``, or a rejection."""
        require_aware(now)
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            request.native  # noqa: B018 - parse everything now, not lazily later
        except (ValueError, TypeError, KeyError) as exc:
            return rejection("bad_data_format", f"malformed TimeStampReq: {exc}")
        problem = self._problem_with(request)
        if problem is not None:
            return rejection(*problem)
        token = self._token(request, now=now, serial=serial)
        response = TimeStampReply(
            {"status": tsp.PKIStatusInfo({"status": "granted"}), "time_stamp_token": token}
        )
        return bytes(response.dump())

    def _problem_with(self, request: tsp.TimeStampReq) -> tuple[str, str] | None:
        if request["version"].native != "v1":
            return "bad_request", "only TimeStampReq version 1 is supported"
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        size = ACCEPTED_DIGESTS.get(algorithm)
        if size is None:
            return "bad_alg", f"message imprint algorithm {algorithm} is not accepted"
        if len(imprint["hashed_message"].native) != size:
            return "bad_data_format", f"a {algorithm} digest is {size} bytes"
        policy = request["req_policy"].native
        if policy is not None and request["req_policy"].dotted != self.policy_oid:
            return "unaccepted_policy", f"policy {policy} is not this TSA's"
        if request["extensions"].native:
            return "unaccepted_extensions", "no request extensions are supported"
        return None

    def _token(self, request: tsp.TimeStampReq, *, now: datetime, serial: int) -> cms.ContentInfo:
        tst_info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": self.policy_oid,
                "message_imprint": request["message_imprint"],
                "serial_number": serial,
                "gen_time": now,
                "accuracy": tsp.Accuracy({"seconds": 1}),
                "nonce": request["nonce"].native,
            }
        )
        content = tst_info.dump()
        certificate = asn1_x509.Certificate.load(
            self.certificate.public_bytes(serialization.Encoding.DER)
        )
        signed_attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute({"type": "message_digest", "values": [digest("sha256", content)]}),
                cms.CMSAttribute(
                    {
                        "type": "signing_certificate_v2",
                        "values": [_signing_certificate(certificate)],
                    }
                ),
            ]
        )
        # RFC 5652 §5.4: the signature covers the DER SET OF the attributes.
        signature = sign(self.key, signed_attrs.dump())
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                            {
                                "issuer": certificate.issuer,
                                "serial_number": certificate.serial_number,
                            }
                        )
                    }
                ),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm(
                    {"algorithm": signature_algorithm_name(self.key)}
                ),
                "signature": signature,
            }
        )
        signed_data = {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(content),
            },
            "signer_infos": [signer_info],
        }
        if request["cert_req"].native:
            signed_data["certificates"] = [certificate]
        return cms.ContentInfo(
            {"content_type": "signed_data", "content": cms.SignedData(signed_data)}
        )


def _signing_certificate(certificate: asn1_x509.Certificate) -> tsp.SigningCertificateV2:
    issuer_serial = tsp.IssuerSerial(
        {
            "issuer": [asn1_x509.GeneralName({"directory_name": certificate.issuer})],
            "serial_number": certificate.serial_number,
        }
    )
    cert_id = tsp.ESSCertIDv2(
        {
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "cert_hash": digest("sha256", certificate.dump()),
            "issuer_serial": issuer_serial,
        }
    )
    return tsp.SigningCertificateV2({"certs": [cert_id]})


def rejection(failure: str, text: str) -> bytes:
    """A TimeStampResp with status ``rejection`` and the RFC 3161 failure bit ``failure``."""
    status = tsp.PKIStatusInfo(
        {"status": "rejection", "status_string": [text], "fail_info": {failure}}
    )
    return bytes(TimeStampReply({"status": status}).dump())


class TimeStampReply(core.Sequence):  # type: ignore[misc]
    """RFC 3161 TimeStampResp, whose token is OPTIONAL (asn1crypto's type requires it)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]

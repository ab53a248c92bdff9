"""Verifying RFC 3161 time-stamp tokens (for the audit verifier). Pure: no I/O.

Shares no code with the TSA's token builder (:mod:`certs.tsa`) beyond the
pinned-algorithm signature check, so a bug in one does not hide in the other.
:func:`verify_timestamp_token` checks, failing closed with
:class:`~certs.errors.TimestampInvalid`:

* the token is a CMS SignedData (RFC 5652) with one SignerInfo, whose content
  is a TSTInfo (RFC 3161 §2.4.2);
* the messageImprint is ``digest`` under the caller's ``hash_algorithm``;
* the signed attributes hold the content type ``tst_info``, the message digest
  of the TSTInfo, and an ESSCertIDv2 (RFC 5816, SHA-256 or stronger) naming
  the signer's certificate;
* the signature, with a pinned algorithm, by the certificate named in ``sid``
  (taken from the token or from ``certificates``);
* that certificate was directly issued by one of ``trust_roots``, has the
  critical ExtendedKeyUsage id-kp-timeStamping and nothing else (§2.3), and it
  and its issuer were valid at genTime;
* genTime is not after ``now`` (plus ``skew``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs._signatures import DIGESTS, SignatureRejected, digest, verify_signature
from certs._time import require_aware
from certs.errors import TimestampInvalid

__all__ = ["DEFAULT_SKEW", "verify_timestamp_token"]

DEFAULT_SKEW = timedelta(seconds=60)


def verify_timestamp_token(
    token: bytes,
    *,
    digest: bytes,
    trust_roots: Sequence[x509.Certificate],
    now: datetime,
    hash_algorithm: str = "sha256",
    certificates: Sequence[x509.Certificate] = (),
    skew: timedelta = DEFAULT_SKEW,
) -> datetime:
    """Return the genTime of ``token`` (a DER ContentInfo) after checking it stamps ``digest``."""
    require_aware(now)
    if not trust_roots:
        raise TimestampInvalid("no trust roots given; nothing can be trusted")
    if hash_algorithm not in DIGESTS:
        raise TimestampInvalid(f"hash algorithm {hash_algorithm} is not accepted")
    signed_data, tst_bytes, tst_info = _parse(token)
    _check_imprint(tst_info, digest, hash_algorithm)
    gen_time: datetime = tst_info["gen_time"].native
    if gen_time > now + skew:
        raise TimestampInvalid(f"the token's genTime {gen_time.isoformat()} is in the future")
    signer_info = _only_signer(signed_data)
    signer = _signer_certificate(signed_data, signer_info, certificates)
    _check_signed_attributes(signer_info, tst_bytes, signer)
    _check_signature(signer_info, signer)
    _check_tsa_certificate(signer, trust_roots, gen_time)
    return gen_time


def _parse(token: bytes) -> tuple[cms.SignedData, bytes, tsp.TSTInfo]:
    try:
        info = cms.ContentInfo.load(token, strict=True)
        if info["content_type"].native != "signed_data":
            raise TimestampInvalid("the token is not a CMS SignedData")
        signed_data = info["content"]
        encapsulated = signed_data["encap_content_info"]
        if encapsulated["content_type"].native != "tst_info":
            raise TimestampInvalid("the token's content is not a TSTInfo")
        tst_bytes = bytes(encapsulated["content"])
        tst_info = tsp.TSTInfo.load(tst_bytes, strict=True)
        signed_data.native  # noqa: B018 - force a full parse while errors are still translated
        tst_info.native  # noqa: B018
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TimestampInvalid(f"malformed time-stamp token: {exc}") from exc
    if tst_info["version"].native != "v1":
        raise TimestampInvalid("unsupported TSTInfo version")
    return signed_data, tst_bytes, tst_info


def _check_imprint(tst_info: tsp.TSTInfo, expected: bytes, hash_algorithm: str) -> None:
    imprint = tst_info["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if algorithm != hash_algorithm:
        raise TimestampInvalid(f"the token stamps a {algorithm} digest, not {hash_algorithm}")
    if imprint["hashed_message"].native != expected:
        raise TimestampInvalid("the token stamps another digest")


def _only_signer(signed_data: cms.SignedData) -> cms.SignerInfo:
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise TimestampInvalid(f"expected one SignerInfo, found {len(signer_infos)}")
    return signer_infos[0]


def _signer_certificate(
    signed_data: cms.SignedData,
    signer_info: cms.SignerInfo,
    extra: Sequence[x509.Certificate],
) -> x509.Certificate:
    sid = signer_info["sid"]
    if sid.name != "issuer_and_serial_number":
        raise TimestampInvalid("the SignerInfo must identify its certificate by issuer and serial")
    issuer_der = sid.chosen["issuer"].dump()
    serial = sid.chosen["serial_number"].native
    candidates = list(extra)
    for choice in signed_data["certificates"] or []:
        if choice.name != "certificate":
            continue
        try:
            candidates.append(x509.load_der_x509_certificate(choice.chosen.dump()))
        except ValueError as exc:
            raise TimestampInvalid("a certificate in the token is malformed") from exc
    for candidate in candidates:
        issuer = candidate.issuer.public_bytes()
        if candidate.serial_number == serial and issuer == issuer_der:
            return candidate
    raise TimestampInvalid("the TSA certificate is neither in the token nor given")


def _attribute(signer_info: cms.SignerInfo, name: str) -> Any:
    values = [attr["values"] for attr in signer_info["signed_attrs"] if attr["type"].native == name]
    if len(values) != 1 or len(values[0]) != 1:
        raise TimestampInvalid(f"the signed attributes need exactly one {name}")
    return values[0][0]


def _check_signed_attributes(
    signer_info: cms.SignerInfo, tst_bytes: bytes, signer: x509.Certificate
) -> None:
    if not signer_info["signed_attrs"]:
        raise TimestampInvalid("the SignerInfo has no signed attributes")
    if _attribute(signer_info, "content_type").native != "tst_info":
        raise TimestampInvalid("the signed content type is not TSTInfo")
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in DIGESTS:
        raise TimestampInvalid(f"digest algorithm {digest_name} is not accepted")
    if _attribute(signer_info, "message_digest").native != digest(digest_name, tst_bytes):
        raise TimestampInvalid("the signed message digest does not match the TSTInfo")
    signing_certificate = _attribute(signer_info, "signing_certificate_v2")
    cert_ids = signing_certificate["certs"]
    if len(cert_ids) < 1:
        raise TimestampInvalid("the signing-certificate attribute names no certificate")
    cert_id = cert_ids[0]
    cert_hash_name = cert_id["hash_algorithm"]["algorithm"].native
    if cert_hash_name not in DIGESTS:
        raise TimestampInvalid(f"ESSCertIDv2 hash {cert_hash_name} is not accepted")
    signer_der = signer.public_bytes(serialization.Encoding.DER)
    if cert_id["cert_hash"].native != digest(cert_hash_name, signer_der):
        raise TimestampInvalid("the signing-certificate attribute names another certificate")


def _check_signature(signer_info: cms.SignerInfo, signer: x509.Certificate) -> None:
    encoded = signer_info["signed_attrs"].dump()
    # Signed over the attributes as a SET OF (RFC 5652 §5.4), not the [0] tag they travel with.
    if encoded[:1] != b"\xa0":
        raise TimestampInvalid("unexpected encoding of the signed attributes")
    signed = b"\x31" + encoded[1:]
    try:
        verify_signature(
            signer.public_key(),
            signer_info["signature"].native,
            signed,
            signer_info["signature_algorithm"]["algorithm"].dotted,
        )
    except SignatureRejected as exc:
        raise TimestampInvalid(f"the token's signature is not acceptable: {exc}") from exc


def _check_tsa_certificate(
    signer: x509.Certificate, trust_roots: Sequence[x509.Certificate], gen_time: datetime
) -> None:
    if not signer.not_valid_before_utc <= gen_time <= signer.not_valid_after_utc:
        raise TimestampInvalid("the TSA certificate was not valid at the token's genTime")
    try:
        usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError) as exc:
        raise TimestampInvalid("the TSA certificate has no ExtendedKeyUsage") from exc
    if not usage.critical or list(usage.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TimestampInvalid(
            "the TSA certificate's ExtendedKeyUsage must be exactly timeStamping, critical"
        )
    for root in trust_roots:
        if root.subject != signer.issuer:
            continue
        try:
            signer.verify_directly_issued_by(root)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if not root.not_valid_before_utc <= gen_time <= root.not_valid_after_utc:
            raise TimestampInvalid("the TSA's CA was not valid at the token's genTime")
        return
    raise TimestampInvalid("the TSA certificate was not issued by a trusted CA")

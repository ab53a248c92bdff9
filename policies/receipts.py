"""Signed consent receipts: Kantara Consent Receipt v1.1 and an ISO/IEC TS 27560 record.

For each consent the data holder's node issues two documents, each a compact JWS
(RFC 7515) made by the one recipe in ``certs.jws`` with the holder's sign key:

- a Kantara CR 1.1 receipt (``typ`` ``renkei-consent-receipt+jws``), with the controller
  contact fields CR 1.1 requires (``contact``, ``address``, ``email``, ``phone``);
- a consent record in the ISO/IEC TS 27560 form, with the field names of the W3C DPV
  guide for 27560 (``typ`` ``renkei-consent-record+jws``; JSON-LD, ``dct:conformsTo``
  the DPV 27560 record schema).

The protected header names the signing key twice: ``kid`` is the SHA-256 fingerprint of
the signer's certificate and ``x5c`` carries that certificate, so anyone holding the
token can check it with a standard JOSE library. The algorithm follows the key and is
pinned on verification.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography import x509

from certs import jws
from certs.errors import SignatureInvalid
from certs.keys import PrivateKey, fingerprint
from policies.consent import Consent
from policies.declarations import ServiceDeclaration
from policies.errors import ReceiptError

__all__ = [
    "RECEIPT_TYPE",
    "RECEIPT_VERSION",
    "RECORD_SCHEMA",
    "RECORD_TYPE",
    "make_consent_record",
    "make_receipt",
    "sign_receipt",
    "sign_record",
    "verify_receipt",
    "verify_record",
]

RECEIPT_TYPE = "renkei-consent-receipt+jws"
RECORD_TYPE = "renkei-consent-record+jws"
RECEIPT_VERSION = "KI-CR-v1.1.0"
RECORD_SCHEMA = "https://w3id.org/dpv/schema/dpv-27560#record"
# Kantara CR 1.1 §4: each PII controller names itself and how to reach it.
_REQUIRED_CONTROLLER = ("piiController", "contact", "address", "email", "phone")
_CONTROLLER_KEYS = (*_REQUIRED_CONTROLLER, "onBehalf", "piiControllerUrl")


def _check_controller(controller: Mapping[str, Any]) -> None:
    missing = [
        key for key in (*_REQUIRED_CONTROLLER, "jurisdiction", "policyUrl")
        if not isinstance(controller.get(key), str) or not controller[key].strip()
    ]
    if missing:
        raise ReceiptError(f"controller lacks {', '.join(missing)}")


def make_receipt(
    consent: Consent,
    declaration: ServiceDeclaration,
    controller: Mapping[str, Any],
    now: datetime,
    *,
    purpose_text: str | None = None,
    purpose_category: str = "treatment",
    collection_method: str = "management API of the data holder's Renkei node",
    withdrawal_method: str = "ask the data holder to revoke the consent",
) -> dict[str, Any]:
    """The Kantara CR 1.1 receipt for ``consent``.

    ``controller`` describes the data holder: ``piiController`` (name), ``contact``,
    ``address``, ``email``, ``phone``, ``jurisdiction`` and ``policyUrl`` are required;
    ``piiControllerUrl`` and ``onBehalf`` are copied when present.
    """
    _check_controller(controller)
    if now.utcoffset() is None:
        raise ReceiptError("now must be timezone-aware")
    pii_controller = {key: controller[key] for key in _CONTROLLER_KEYS if key in controller}
    termination = consent.valid_until.isoformat() if consent.valid_until else "until withdrawn"
    return {
        "version": RECEIPT_VERSION,
        "jurisdiction": controller["jurisdiction"],
        "consentTimestamp": int(consent.granted_at.timestamp()),
        "issuedAt": int(now.timestamp()),
        "collectionMethod": collection_method,
        "consentReceiptID": str(consent.id),
        "language": controller.get("language", "en"),
        "piiPrincipalId": consent.subject,
        "piiControllers": [pii_controller],
        "policyUrl": controller["policyUrl"],
        "services": [
            {
                "service": str(consent.service),
                "serviceDescription": declaration.description,
                "purposes": [
                    {
                        "purpose": purpose_text or consent.purpose,
                        "purposeCode": consent.purpose,
                        "purposeCategory": [purpose_category],
                        "consentType": "EXPLICIT",
                        "piiCategory": list(consent.fields),
                        "primaryPurpose": True,
                        "termination": termination,
                        "thirdPartyDisclosure": True,
                        "thirdPartyName": str(consent.consumer),
                        "withdrawalMethod": withdrawal_method,
                    }
                ],
            }
        ],
        "sensitive": True,
        "spiCat": ["health"] if declaration.is_fhir else [],
        "validFrom": consent.valid_from.isoformat(),
        "withdrawalMethod": withdrawal_method,
    }


def make_consent_record(
    consent: Consent,
    declaration: ServiceDeclaration,
    controller: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The consent as an ISO/IEC TS 27560 record, in the DPV guide's JSON-LD terms."""
    _check_controller(controller)
    if now.utcoffset() is None:
        raise ReceiptError("now must be timezone-aware")
    status = "dpv:ConsentWithdrawn" if consent.revoked_at is not None else "dpv:ConsentGiven"
    process: dict[str, Any] = {
        "@type": "dpv:Process",
        "dpv:hasService": str(consent.service),
        "dct:description": declaration.description,
        "dpv:hasPurpose": {"@type": "dpv:Purpose", "dct:identifier": consent.purpose},
        "dpv:hasPersonalData": list(consent.fields),
        "dpv:hasRecipient": str(consent.consumer),
    }
    valid = {"dpv:hasStart": consent.valid_from.isoformat()}
    if consent.valid_until is not None:
        valid["dpv:hasEnd"] = consent.valid_until.isoformat()
    return {
        "@context": {
            "dpv": "https://w3id.org/dpv#",
            "dct": "http://purl.org/dc/terms/",
        },
        "@id": f"urn:uuid:{consent.id}",
        "@type": "dpv:ConsentRecord",
        "dct:identifier": str(consent.id),
        "dct:conformsTo": RECORD_SCHEMA,
        "dct:created": now.isoformat(),
        "dpv:hasDataSubject": {"@type": "dpv:DataSubject", "dct:identifier": consent.subject},
        "dpv:hasDataController": {
            "@type": "dpv:DataController",
            "dct:title": controller["piiController"],
            "dpv:hasContact": {
                "contact": controller["contact"],
                "address": controller["address"],
                "email": controller["email"],
                "phone": controller["phone"],
            },
        },
        "dpv:hasJurisdiction": controller["jurisdiction"],
        "dpv:hasLegalBasis": "dpv:Consent",
        "dpv:hasConsentStatus": status,
        "dct:valid": valid,
        "dpv:hasProcess": process,
    }


def _header(certificate: x509.Certificate) -> dict[str, Any]:
    return {"kid": fingerprint(certificate), "x5c": [jws.certificate_der_base64(certificate)]}


def sign_receipt(
    receipt: Mapping[str, Any], key: PrivateKey, certificate: x509.Certificate
) -> str:
    """The Kantara receipt as a compact JWS by ``key``, naming ``certificate`` (kid, x5c)."""
    return jws.sign(receipt, key, typ=RECEIPT_TYPE, header=_header(certificate))


def sign_record(record: Mapping[str, Any], key: PrivateKey, certificate: x509.Certificate) -> str:
    """The ISO/IEC TS 27560 record as a compact JWS, like :func:`sign_receipt`."""
    return jws.sign(record, key, typ=RECORD_TYPE, header=_header(certificate))


def _verify(token: str, typ: str, certificate: x509.Certificate, now: datetime) -> dict[str, Any]:
    try:
        verified = jws.verify(
            token, typ=typ, trust=jws.PinnedKey(certificate), now=now, header=("kid", "x5c")
        )
        named = jws.x5c_certificates(verified.header)
    except (SignatureInvalid, ValueError) as exc:
        raise ReceiptError(f"the signed consent document does not verify: {exc}") from exc
    if verified.header.get("kid") != fingerprint(certificate) or named[0] != certificate:
        raise ReceiptError("the document names another signing key than the holder's")
    return verified.payload


def verify_receipt(token: str, certificate: x509.Certificate, now: datetime) -> dict[str, Any]:
    """Verify a Kantara receipt signed by ``certificate``'s key; return its content.

    Whether the certificate is trusted is the caller's decision (trust roots are the
    caller's); the token must name exactly this certificate in ``kid`` and ``x5c``.
    """
    receipt = _verify(token, RECEIPT_TYPE, certificate, now)
    if receipt.get("version") != RECEIPT_VERSION:
        raise ReceiptError("the receipt is not a Renkei consent receipt of a known version")
    return receipt


def verify_record(token: str, certificate: x509.Certificate, now: datetime) -> dict[str, Any]:
    """Verify an ISO/IEC TS 27560 consent record, like :func:`verify_receipt`."""
    record = _verify(token, RECORD_TYPE, certificate, now)
    if record.get("dct:conformsTo") != RECORD_SCHEMA:
        raise ReceiptError("the record does not conform to the DPV 27560 record schema")
    return record

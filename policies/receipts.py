"""Signed consent receipts (Kantara Consent Receipt v1.1, ISO/IEC TS 27560 fields).

A receipt is a JSON document given to the data subject as proof of what they agreed to,
signed as a compact JWS (RFC 7515) with ``typ`` ``renkei-consent-receipt+jws``. The
algorithm follows the key and is pinned on verification: ES256 for P-256 keys, EdDSA for
Ed25519, PS256 for RSA. This is a small signing module, so it may name key types from
``cryptography.hazmat``; signing itself is PyJWT's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from policies.consent import Consent
from policies.declarations import ServiceDeclaration
from policies.errors import ReceiptError

__all__ = [
    "RECEIPT_TYPE",
    "RECEIPT_VERSION",
    "make_receipt",
    "sign_receipt",
    "verify_receipt",
]

RECEIPT_TYPE = "renkei-consent-receipt+jws"
RECEIPT_VERSION = "KI-CR-v1.1.0"
_CONTROLLER_KEYS = ("piiController", "onBehalf", "contact", "address", "email", "phone")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


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
    """The receipt document for ``consent``.

    ``controller`` describes the data holder: ``piiController`` (name), ``jurisdiction``
    and ``policyUrl`` are required; ``contact``, ``address``, ``email``, ``phone``,
    ``piiControllerUrl`` and ``onBehalf`` are copied when present.
    """
    missing = [
        key for key in ("piiController", "jurisdiction", "policyUrl") if key not in controller
    ]
    if missing:
        raise ReceiptError(f"controller lacks {', '.join(missing)}")
    if now.utcoffset() is None:
        raise ReceiptError("now must be timezone-aware")
    pii_controller = {key: controller[key] for key in _CONTROLLER_KEYS if key in controller}
    if "piiControllerUrl" in controller:
        pii_controller["piiControllerUrl"] = controller["piiControllerUrl"]
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


def _algorithm(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ReceiptError("only P-256 EC keys are accepted (ES256)")
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ReceiptError("RSA keys must have at least 2048 bits")
        return "PS256"
    raise ReceiptError(f"unsupported key type {type(key).__name__}")


def sign_receipt(receipt: Mapping[str, Any], key: PrivateKey) -> str:
    """The receipt as a compact JWS signed by ``key``."""
    payload = json.dumps(receipt, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return jwt.api_jws.encode(
        payload, key, algorithm=_algorithm(key), headers={"typ": RECEIPT_TYPE}
    )


def verify_receipt(
    token: str, certificate_or_public_key: x509.Certificate | PublicKey
) -> dict[str, Any]:
    """Verify a receipt's signature (algorithm pinned by the key) and return its content.

    Only the signature is checked here; whether the certificate is trusted is the
    caller's decision (trust roots are the caller's).
    """
    key = (
        certificate_or_public_key.public_key()
        if isinstance(certificate_or_public_key, x509.Certificate)
        else certificate_or_public_key
    )
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise ReceiptError(f"unsupported key type {type(key).__name__}")
    algorithm = _algorithm(key)
    try:
        header = jwt.api_jws.get_unverified_header(token)
        if header.get("typ") != RECEIPT_TYPE or header.get("alg") != algorithm:
            raise ReceiptError("the receipt's typ or alg header is not the expected one")
        payload = jwt.api_jws.decode(token, key, algorithms=[algorithm])
        receipt = json.loads(payload)
    except jwt.PyJWTError as exc:
        raise ReceiptError(f"the receipt's signature does not verify: {exc}") from exc
    except ValueError as exc:
        raise ReceiptError("the receipt's payload is not JSON") from exc
    if not isinstance(receipt, dict) or receipt.get("version") != RECEIPT_VERSION:
        raise ReceiptError("the receipt is not a Renkei consent receipt of a known version")
    return receipt

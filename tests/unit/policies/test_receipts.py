from __future__ import annotations

import base64
import datetime as dt
import json
from uuid import uuid4

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from certs.identifiers import ServiceId, SubsystemId
from policies.consent import Consent
from policies.declarations import ServiceDeclaration
from policies.errors import ReceiptError
from policies.receipts import RECEIPT_TYPE, make_receipt, sign_receipt, verify_receipt

NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
SERVICE = ServiceId.parse("EE/GOV/B/records/patients")
DECLARATION = ServiceDeclaration(
    SERVICE,
    media_types=("application/fhir+json",),
    fields=("Patient.name", "Patient.birthDate", "AllergyIntolerance"),
    description="Patient records",
)
CONSENT = Consent(
    id=uuid4(),
    subject="38001010000",
    consumer=SubsystemId.parse("EE/GOV/A/clinic"),
    service=SERVICE,
    purpose="treatment",
    fields=("Patient.name", "AllergyIntolerance"),
    valid_from=NOW,
    valid_until=NOW + dt.timedelta(days=365),
    granted_at=NOW,
)
CONTROLLER = {
    "piiController": "Hospital B",
    "jurisdiction": "EE",
    "policyUrl": "https://hospital-b.example/privacy",
    "email": "dpo@hospital-b.example",
}


def receipt() -> dict[str, object]:
    return make_receipt(CONSENT, DECLARATION, CONTROLLER, NOW, purpose_text="Treatment")


def test_receipt_has_the_kantara_fields() -> None:
    document = receipt()
    for key in (
        "version",
        "jurisdiction",
        "consentTimestamp",
        "collectionMethod",
        "consentReceiptID",
        "piiPrincipalId",
        "piiControllers",
        "policyUrl",
        "services",
    ):
        assert key in document
    purpose = document["services"][0]["purposes"][0]  # type: ignore[index]
    assert purpose["piiCategory"] == ["Patient.name", "AllergyIntolerance"]
    assert purpose["termination"] == CONSENT.valid_until.isoformat()  # type: ignore[union-attr]
    assert purpose["purpose"] == "Treatment"
    assert document["piiPrincipalId"] == CONSENT.subject
    assert document["consentReceiptID"] == str(CONSENT.id)


def test_controller_must_name_itself_jurisdiction_and_policy() -> None:
    with pytest.raises(ReceiptError):
        make_receipt(CONSENT, DECLARATION, {"piiController": "B"}, NOW)


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP256R1()),
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
    ids=["p256", "ed25519", "rsa"],
)
def test_sign_and_verify_round_trip(key: ec.EllipticCurvePrivateKey) -> None:
    token = sign_receipt(receipt(), key)
    assert verify_receipt(token, key.public_key()) == receipt()


def test_es256_header() -> None:
    token = sign_receipt(receipt(), ec.generate_private_key(ec.SECP256R1()))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "typ": RECEIPT_TYPE}


def _certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hospital B")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_verify_with_certificate() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = sign_receipt(receipt(), key)
    assert verify_receipt(token, _certificate(key))["consentReceiptID"] == str(CONSENT.id)


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=="))
    document["piiPrincipalId"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_tampered_payload_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ReceiptError) as info:
        verify_receipt(_tamper(sign_receipt(receipt(), key)), key.public_key())
    assert info.value.code == "policies.receipt_invalid"


def test_other_key_is_refused() -> None:
    token = sign_receipt(receipt(), ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ReceiptError):
        verify_receipt(token, ec.generate_private_key(ec.SECP256R1()).public_key())


def test_algorithm_confusion_is_refused() -> None:
    # An Ed25519 token cannot be checked against an EC key, and vice versa.
    token = sign_receipt(receipt(), ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(ReceiptError):
        verify_receipt(token, ec.generate_private_key(ec.SECP256R1()).public_key())


def test_wrong_typ_and_garbage_are_refused() -> None:
    import jwt

    key = ec.generate_private_key(ec.SECP256R1())
    plain = jwt.api_jws.encode(b'{"version":"KI-CR-v1.1.0"}', key, algorithm="ES256")
    for token in (plain, "not.a.token", ""):
        with pytest.raises(ReceiptError):
            verify_receipt(token, key.public_key())


def test_non_p256_curve_is_refused() -> None:
    with pytest.raises(ReceiptError):
        sign_receipt(receipt(), ec.generate_private_key(ec.SECP384R1()))


def test_signed_non_receipt_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = sign_receipt({"version": "other"}, key)
    with pytest.raises(ReceiptError):
        verify_receipt(token, key.public_key())

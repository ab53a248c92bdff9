from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any
from uuid import uuid4

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from jwcrypto import jwk
from jwcrypto import jws as jose_jws

from certs import jws
from certs.identifiers import ServiceId, SubsystemId
from certs.keys import fingerprint
from policies.consent import Consent
from policies.declarations import ServiceDeclaration
from policies.errors import ReceiptError
from policies.receipts import (
    RECEIPT_TYPE,
    RECORD_SCHEMA,
    RECORD_TYPE,
    make_consent_record,
    make_receipt,
    sign_receipt,
    sign_record,
    verify_receipt,
    verify_record,
)

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
    "contact": "Data protection officer",
    "address": "1 Hospital Road, Tallinn",
    "email": "dpo@hospital-b.example",
    "phone": "+372 600 0000",
    "jurisdiction": "EE",
    "policyUrl": "https://hospital-b.example/privacy",
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


def test_the_controller_gives_kantaras_required_contact_fields() -> None:
    controller = receipt()["piiControllers"][0]  # type: ignore[index]
    assert {k: controller[k] for k in ("contact", "address", "email", "phone")} == {
        k: CONTROLLER[k] for k in ("contact", "address", "email", "phone")
    }


@pytest.mark.parametrize("missing", ["contact", "address", "email", "phone", "jurisdiction",
                                     "policyUrl", "piiController"])
def test_a_controller_without_a_required_field_gets_no_receipt(missing: str) -> None:
    partial = {key: value for key, value in CONTROLLER.items() if key != missing}
    with pytest.raises(ReceiptError, match=missing):
        make_receipt(CONSENT, DECLARATION, partial, NOW)
    with pytest.raises(ReceiptError, match=missing):
        make_consent_record(CONSENT, DECLARATION, partial, NOW)
    with pytest.raises(ReceiptError):
        make_receipt(CONSENT, DECLARATION, {**CONTROLLER, missing: "  "}, NOW)


def test_the_record_uses_the_dpv_27560_field_names() -> None:
    record = make_consent_record(CONSENT, DECLARATION, CONTROLLER, NOW)
    assert record["@type"] == "dpv:ConsentRecord"
    assert record["dct:conformsTo"] == RECORD_SCHEMA
    assert record["dct:identifier"] == str(CONSENT.id)
    assert record["dpv:hasDataSubject"]["dct:identifier"] == CONSENT.subject
    assert record["dpv:hasDataController"]["dct:title"] == "Hospital B"
    assert record["dpv:hasConsentStatus"] == "dpv:ConsentGiven"
    assert record["dpv:hasLegalBasis"] == "dpv:Consent"
    process = record["dpv:hasProcess"]
    assert process["dpv:hasPersonalData"] == ["Patient.name", "AllergyIntolerance"]
    assert process["dpv:hasRecipient"] == str(CONSENT.consumer)
    assert process["dpv:hasPurpose"]["dct:identifier"] == "treatment"
    assert record["dct:valid"]["dpv:hasEnd"] == CONSENT.valid_until.isoformat()  # type: ignore[union-attr]


def _certificate(key: Any) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hospital B")])
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(key, algorithm)
    )


KEYS = [
    ec.generate_private_key(ec.SECP256R1()),
    ed25519.Ed25519PrivateKey.generate(),
    rsa.generate_private_key(public_exponent=65537, key_size=2048),
]


@pytest.mark.parametrize("key", KEYS, ids=["p256", "ed25519", "rsa"])
def test_sign_and_verify_round_trip(key: Any) -> None:
    certificate = _certificate(key)
    token = sign_receipt(receipt(), key, certificate)
    assert verify_receipt(token, certificate, NOW) == receipt()
    record = make_consent_record(CONSENT, DECLARATION, CONTROLLER, NOW)
    assert verify_record(sign_record(record, key, certificate), certificate, NOW) == record


def _header(token: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")))


def test_the_receipt_names_its_signing_key() -> None:
    key = KEYS[0]
    certificate = _certificate(key)
    header = _header(sign_receipt(receipt(), key, certificate))
    assert header["alg"] == "ES256"
    assert header["typ"] == RECEIPT_TYPE
    assert header["kid"] == fingerprint(certificate)
    der = base64.b64decode(header["x5c"][0])
    assert x509.load_der_x509_certificate(der) == certificate
    record_header = _header(sign_record({"dct:conformsTo": RECORD_SCHEMA}, key, certificate))
    assert (record_header["typ"], record_header["kid"]) == (RECORD_TYPE, fingerprint(certificate))


@pytest.mark.parametrize("key", KEYS, ids=["p256", "ed25519", "rsa"])
def test_jwcrypto_verifies_receipt_and_record_with_the_key_from_x5c(key: Any) -> None:
    """An independent JOSE library checks both documents, taking the key from x5c."""
    certificate = _certificate(key)
    record = make_consent_record(CONSENT, DECLARATION, CONTROLLER, NOW)
    for token, document in (
        (sign_receipt(receipt(), key, certificate), receipt()),
        (sign_record(record, key, certificate), record),
    ):
        header = _header(token)
        named = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
        public = jwk.JWK.from_pem(named.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        verifier = jose_jws.JWS()
        verifier.deserialize(token)
        verifier.verify(public, alg=header["alg"])
        assert json.loads(verifier.payload) == document
        assert public.thumbprint() == jwk.JWK.from_pem(certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )).thumbprint()
        # A changed payload fails jwcrypto too.
        forged = jose_jws.JWS()
        forged.deserialize(_tamper(token))
        with pytest.raises(jose_jws.InvalidJWSSignature):
            forged.verify(public, alg=header["alg"])


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=="))
    document["piiPrincipalId"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_tampered_payload_is_refused() -> None:
    key = KEYS[0]
    certificate = _certificate(key)
    with pytest.raises(ReceiptError) as info:
        verify_receipt(_tamper(sign_receipt(receipt(), key, certificate)), certificate, NOW)
    assert info.value.code == "policies.receipt_invalid"


def test_another_signer_is_refused() -> None:
    key, other = KEYS[0], ec.generate_private_key(ec.SECP256R1())
    token = sign_receipt(receipt(), key, _certificate(key))
    with pytest.raises(ReceiptError):
        verify_receipt(token, _certificate(other), NOW)


def test_a_token_naming_another_certificate_is_refused() -> None:
    # Signed by the holder's key, but kid/x5c name a different certificate of that key.
    key = KEYS[0]
    certificate, other = _certificate(key), _certificate(key)
    other = (
        x509.CertificateBuilder().subject_name(certificate.subject)
        .issuer_name(certificate.issuer).public_key(key.public_key()).serial_number(2)
        .not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    token = sign_receipt(receipt(), key, other)
    with pytest.raises(ReceiptError, match="another signing key"):
        verify_receipt(token, certificate, NOW)


def test_a_receipt_is_not_a_record_and_back() -> None:
    key = KEYS[0]
    certificate = _certificate(key)
    record = make_consent_record(CONSENT, DECLARATION, CONTROLLER, NOW)
    with pytest.raises(ReceiptError):
        verify_record(sign_receipt(receipt(), key, certificate), certificate, NOW)
    with pytest.raises(ReceiptError):
        verify_receipt(sign_record(record, key, certificate), certificate, NOW)


def test_algorithm_confusion_is_refused() -> None:
    ed = KEYS[1]
    token = sign_receipt(receipt(), ed, _certificate(ed))
    with pytest.raises(ReceiptError):
        verify_receipt(token, _certificate(KEYS[0]), NOW)


def test_wrong_typ_and_garbage_are_refused() -> None:
    import jwt

    key = KEYS[0]
    plain = jwt.api_jws.encode(b'{"version":"KI-CR-v1.1.0"}', key, algorithm="ES256")
    for token in (plain, "not.a.token", ""):
        with pytest.raises(ReceiptError):
            verify_receipt(token, _certificate(key), NOW)


def test_signed_non_receipt_is_refused() -> None:
    key = KEYS[0]
    certificate = _certificate(key)
    token = sign_receipt({"version": "other"}, key, certificate)
    with pytest.raises(ReceiptError):
        verify_receipt(token, certificate, NOW)


def test_a_receipt_with_a_duplicate_key_is_refused() -> None:
    # Signed by the right key with an independent implementation: which subject it names
    # would depend on the reader.
    import jwt

    key = KEYS[0]
    certificate = _certificate(key)
    header = {"typ": RECEIPT_TYPE, "kid": fingerprint(certificate),
              "x5c": [jws.certificate_der_base64(certificate)]}
    payload = b'{"piiPrincipalId":"someone-else","version":"KI-CR-v1.1.0","piiPrincipalId":"mom"}'
    token = jwt.api_jws.encode(payload, key, algorithm="ES256", headers=header)
    with pytest.raises(ReceiptError, match="duplicate key"):
        verify_receipt(token, certificate, NOW)

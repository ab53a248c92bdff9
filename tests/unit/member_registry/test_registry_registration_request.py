"""The signed registration request: both signatures, certificates, identities, freshness."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from certs.ca import CertificateAuthority
from certs.identifiers import NodeId, SubsystemId
from certs.keys import KeyAlgorithm, generate_key
from member_registry.errors import (
    RegistrationCertificateInvalid,
    RegistrationIdentityMismatch,
    RegistrationRefused,
    RegistrationSignatureInvalid,
    RegistrationStale,
)
from member_registry.registration_request import (
    CONSENT_TYP,
    POP_TYP,
    SignedRegistration,
    check_fresh,
    sign_registration,
    verify_registration,
)
from tests.unit.member_registry.registration_samples import (
    CLINIC_EHR,
    CLINIC_NODE,
    OTHER_MEMBER,
    Credentials,
    credentials,
    request_for,
    signed_request,
)
from tests.unit.member_registry.registry_samples import NOW


def _verify(ca: CertificateAuthority, signed: SignedRegistration, **kwargs: Any) -> Any:
    return verify_registration(signed, trust_roots=[ca.certificate], now=kwargs.get("now", NOW))


def _parts(token: str) -> tuple[dict[str, Any], bytes, str]:
    header, payload, signature = token.split(".")
    padded = header + "=" * (-len(header) % 4)
    body = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return json.loads(base64.urlsafe_b64decode(padded)), body, signature


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _with_header(token: str, header: dict[str, Any]) -> str:
    _, payload, signature = token.split(".")
    return f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"


@pytest.fixture(scope="module")
def creds(instance_ca: CertificateAuthority) -> Credentials:
    return credentials(instance_ca)


@pytest.mark.parametrize("algorithm", ["ec-p256", "ed25519", "rsa-2048"])
def test_valid_request_verifies(instance_ca: CertificateAuthority,
                                algorithm: KeyAlgorithm) -> None:
    creds = credentials(instance_ca, sign_algorithm=algorithm)
    verified = _verify(instance_ca, signed_request(creds))
    assert verified.request.node == CLINIC_NODE
    assert verified.request.subsystems == (CLINIC_EHR,)
    assert verified.request.auth_certificate == creds.auth_certificate
    assert verified.sign_certificate == creds.sign_certificate
    check_fresh(verified.request, now=NOW)


def test_headers_are_pinned(creds: Credentials) -> None:
    signed = signed_request(creds)
    pop_header, pop_payload, _ = _parts(signed.proof_of_possession)
    consent_header, consent_payload, _ = _parts(signed.member_consent)
    assert set(pop_header) == {"alg", "typ", "x5c"} == set(consent_header)
    assert pop_header["typ"] == POP_TYP
    assert consent_header["typ"] == CONSENT_TYP
    assert pop_header["alg"] == "ES256"
    assert pop_payload == consent_payload
    assert json.loads(pop_payload)["format"] == "renkei-registration/1"


def test_bad_proof_of_possession_signature(instance_ca: CertificateAuthority,
                                           creds: Credentials) -> None:
    # Signed by some other key while claiming the new auth certificate.
    request = request_for(creds)
    forged = jwt.api_jws.encode(
        request.payload(), generate_key(), algorithm="ES256",
        headers={"typ": POP_TYP, "x5c": [_parts(signed_request(creds).proof_of_possession)[0]
                                         ["x5c"][0]]})
    signed = sign_registration(request, auth_key=creds.auth_key, sign_key=creds.sign_key,
                               sign_chain=(creds.sign_certificate,))
    with pytest.raises(RegistrationSignatureInvalid) as caught:
        _verify(instance_ca, SignedRegistration(forged, signed.member_consent))
    assert caught.value.code == "registry.registration_signature_invalid"


def test_signatures_over_different_requests(instance_ca: CertificateAuthority,
                                            creds: Credentials) -> None:
    first, second = signed_request(creds), signed_request(creds)  # different nonces
    with pytest.raises(RegistrationSignatureInvalid, match="different requests"):
        _verify(instance_ca, SignedRegistration(first.proof_of_possession,
                                                second.member_consent))


def test_swapped_signatures_are_refused(instance_ca: CertificateAuthority,
                                        creds: Credentials) -> None:
    signed = signed_request(creds)
    with pytest.raises(RegistrationSignatureInvalid, match="typ"):
        _verify(instance_ca, SignedRegistration(signed.member_consent,
                                                signed.proof_of_possession))


def test_pop_by_another_auth_certificate(instance_ca: CertificateAuthority,
                                         creds: Credentials) -> None:
    # A valid auth certificate of the same node signs, but the payload names another one.
    other = credentials(instance_ca)
    request = request_for(creds)
    pop = sign_registration(
        request.__class__(**{**request.__dict__, "auth_certificate": other.auth_certificate}),
        auth_key=other.auth_key, sign_key=creds.sign_key, sign_chain=(creds.sign_certificate,),
    ).proof_of_possession
    header, _, signature = pop.split(".")
    forged = f"{header}.{_b64(request.payload())}.{signature}"
    consent = sign_registration(request, auth_key=creds.auth_key, sign_key=creds.sign_key,
                                sign_chain=(creds.sign_certificate,)).member_consent
    with pytest.raises(RegistrationSignatureInvalid):
        _verify(instance_ca, SignedRegistration(forged, consent))


@pytest.mark.parametrize("header", [
    {"alg": "ES256", "typ": POP_TYP},
    {"alg": "ES256", "typ": POP_TYP, "x5c": [], "jwk": {}},
    {"alg": "ES256", "typ": POP_TYP, "x5c": []},
    {"alg": "ES256", "typ": POP_TYP, "x5c": ["not base64!"]},
    {"alg": "ES256", "typ": POP_TYP, "x5c": "single"},
    {"alg": "none", "typ": POP_TYP, "x5c": None},
    {"alg": "HS256", "typ": POP_TYP, "x5c": None},
    {"alg": "ES384", "typ": POP_TYP, "x5c": None},
    {"alg": "ES256", "typ": "JWT", "x5c": None},
])
def test_header_form_is_enforced(instance_ca: CertificateAuthority, creds: Credentials,
                                 header: dict[str, Any]) -> None:
    signed = signed_request(creds)
    real = _parts(signed.proof_of_possession)[0]
    if header.get("x5c", []) is None:
        header = {**header, "x5c": real["x5c"]}
    tampered = _with_header(signed.proof_of_possession, header)
    with pytest.raises(RegistrationSignatureInvalid):
        _verify(instance_ca, SignedRegistration(tampered, signed.member_consent))


def test_not_a_jws(instance_ca: CertificateAuthority, creds: Credentials) -> None:
    signed = signed_request(creds)
    with pytest.raises(RegistrationSignatureInvalid):
        _verify(instance_ca, SignedRegistration("garbage", signed.member_consent))


def test_sign_key_of_another_member(instance_ca: CertificateAuthority) -> None:
    creds = credentials(instance_ca, member=OTHER_MEMBER)
    with pytest.raises(RegistrationIdentityMismatch) as caught:
        _verify(instance_ca, signed_request(creds))
    assert caught.value.code == "registry.registration_identity_mismatch"


def test_auth_certificate_of_another_node(instance_ca: CertificateAuthority) -> None:
    creds = credentials(instance_ca, node=NodeId.parse("RENKEI/GOV/CLINIC/ss2"))
    with pytest.raises(RegistrationIdentityMismatch):
        _verify(instance_ca, signed_request(creds, CLINIC_NODE))


def test_subsystem_of_another_member(instance_ca: CertificateAuthority,
                                     creds: Credentials) -> None:
    foreign = SubsystemId.parse("RENKEI/GOV/OTHER/EHR")
    with pytest.raises(RegistrationIdentityMismatch, match="does not belong"):
        _verify(instance_ca, signed_request(creds, subsystems=(CLINIC_EHR, foreign)))


def test_expired_certificate(instance_ca: CertificateAuthority, creds: Credentials) -> None:
    later = NOW + timedelta(days=400)
    signed = signed_request(creds, now=later)
    with pytest.raises(RegistrationCertificateInvalid) as caught:
        _verify(instance_ca, signed, now=later)
    assert caught.value.code == "registry.registration_certificate_invalid"
    assert "certs.certificate_expired" in caught.value.message


def test_untrusted_certificate(tmp_path: Path, instance_ca: CertificateAuthority) -> None:
    foreign_ca = CertificateAuthority.create(tmp_path / "foreign", instance="RENKEI", now=NOW)
    signed = signed_request(credentials(foreign_ca))
    with pytest.raises(RegistrationCertificateInvalid, match="certificate_untrusted"):
        _verify(instance_ca, signed)


def test_no_trust_roots_fail_closed(creds: Credentials) -> None:
    with pytest.raises(RegistrationCertificateInvalid):
        verify_registration(signed_request(creds), trust_roots=[], now=NOW)


def test_sign_certificate_in_the_auth_role(instance_ca: CertificateAuthority,
                                           creds: Credentials) -> None:
    # The consent signer is an auth certificate: wrong profile.
    request = request_for(creds)
    signed = sign_registration(request, auth_key=creds.auth_key, sign_key=creds.auth_key,
                               sign_chain=(creds.auth_certificate,))
    with pytest.raises(RegistrationCertificateInvalid, match="wrong_usage"):
        _verify(instance_ca, signed)


def test_keys_must_match_certificates(creds: Credentials) -> None:
    request = request_for(creds)
    with pytest.raises(RegistrationSignatureInvalid):
        sign_registration(request, auth_key=creds.sign_key, sign_key=creds.sign_key,
                          sign_chain=(creds.sign_certificate,))
    with pytest.raises(RegistrationSignatureInvalid):
        sign_registration(request, auth_key=creds.auth_key, sign_key=creds.auth_key,
                          sign_chain=(creds.sign_certificate,))


def test_stale_and_future_requests(creds: Credentials) -> None:
    request = request_for(creds)
    check_fresh(request, now=NOW + timedelta(minutes=4))
    with pytest.raises(RegistrationStale) as caught:
        check_fresh(request, now=NOW + timedelta(minutes=6))
    assert caught.value.code == "registry.registration_stale"
    with pytest.raises(RegistrationStale, match="future"):
        check_fresh(request, now=NOW - timedelta(minutes=2))


@pytest.mark.parametrize("document", [
    None, [], {}, {"proof_of_possession": "a"},
    {"proof_of_possession": "a", "member_consent": "b", "extra": 1},
    {"proof_of_possession": 1, "member_consent": "b"},
])
def test_malformed_envelope(document: object) -> None:
    with pytest.raises(RegistrationRefused) as caught:
        SignedRegistration.from_json_dict(document)
    assert caught.value.code == "registry.registration_refused"


def test_malformed_signed_payload(instance_ca: CertificateAuthority, creds: Credentials) -> None:
    payload = json.dumps({"format": "renkei-registration/1"}).encode()
    x5c_auth = _parts(signed_request(creds).proof_of_possession)[0]["x5c"]
    x5c_sign = _parts(signed_request(creds).member_consent)[0]["x5c"]
    pop = jwt.api_jws.encode(payload, creds.auth_key, algorithm="ES256",
                             headers={"typ": POP_TYP, "x5c": x5c_auth})
    consent = jwt.api_jws.encode(payload, creds.sign_key, algorithm="ES256",
                                 headers={"typ": CONSENT_TYP, "x5c": x5c_sign})
    with pytest.raises(RegistrationRefused, match="malformed"):
        _verify(instance_ca, SignedRegistration(pop, consent))

"""The JWS recipe: what verifies, interop with an independent implementation (PyJWT),
and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from certs import jws
from certs.ca import CertificateAuthority
from certs.identifiers import MemberId, NodeId
from certs.keys import KeyAlgorithm, PrivateKey, fingerprint, generate_key
from certs.profiles import make_csr

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TYP = "renkei-test+jws"
PAYLOAD = {"kind": "request", "method": "GET", "n": 1}
MEMBER = MemberId.parse("RENKEI/GOV/HOSP-A")
KEY_TYPES: list[KeyAlgorithm] = ["ec-p256", "ed25519", "rsa-2048"]
PYJWT_NAMES = {"ec-p256": "ES256", "ed25519": "EdDSA", "rsa-2048": "PS256"}


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {name: generate_key(name) for name in KEY_TYPES}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(
        tmp_path_factory.mktemp("ca") / "ca", instance="RENKEI", now=NOW - timedelta(days=1)
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], bytes, bytes]:
    header, payload, signature = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        base64.urlsafe_b64decode(payload + "=="),
        base64.urlsafe_b64decode(signature + "=="),
    )


def pinned(key: PrivateKey) -> jws.PinnedKey:
    return jws.PinnedKey(key.public_key())


# -- what verifies ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", KEY_TYPES)
def test_round_trip_for_each_key_type(keys: dict[str, PrivateKey], name: str) -> None:
    token = jws.sign(PAYLOAD, keys[name], typ=TYP)
    verified = jws.verify(token, typ=TYP, trust=pinned(keys[name]), now=NOW)
    assert verified.payload == PAYLOAD
    assert verified.header == {"alg": PYJWT_NAMES[name], "typ": TYP}


@pytest.mark.parametrize("name", KEY_TYPES)
def test_an_independent_implementation_verifies_our_tokens(
    keys: dict[str, PrivateKey], name: str
) -> None:
    token = jws.sign(PAYLOAD, keys[name], typ=TYP, header={"kid": "k1"})
    decoded = jwt.api_jws.PyJWS().decode_complete(
        token, key=keys[name].public_key(), algorithms=[PYJWT_NAMES[name]]
    )
    assert json.loads(decoded["payload"]) == PAYLOAD
    assert decoded["header"] == {"alg": PYJWT_NAMES[name], "typ": TYP, "kid": "k1"}


@pytest.mark.parametrize("name", KEY_TYPES)
def test_we_verify_an_independent_implementations_tokens(
    keys: dict[str, PrivateKey], name: str
) -> None:
    token = jwt.api_jws.encode(
        json.dumps(PAYLOAD).encode(), keys[name], algorithm=PYJWT_NAMES[name],
        headers={"typ": TYP},
    )
    assert jws.verify(token, typ=TYP, trust=pinned(keys[name]), now=NOW).payload == PAYLOAD


def test_the_payload_is_canonical_json(keys: dict[str, PrivateKey]) -> None:
    token = jws.sign({"b": "\u00e9", "a": [1, 2]}, keys["ec-p256"], typ=TYP)
    assert parts(token)[1] == '{"a":[1,2],"b":"\u00e9"}'.encode()


def test_es256_signatures_are_raw_r_and_s(keys: dict[str, PrivateKey]) -> None:
    _, _, signature = parts(jws.sign(PAYLOAD, keys["ec-p256"], typ=TYP))
    assert len(signature) == 64  # RFC 7518 §3.4, not DER


def test_key_by_id_picks_the_named_certificate(
    ca: CertificateAuthority, keys: dict[str, PrivateKey]
) -> None:
    cert = ca.issue(make_csr(keys["ec-p256"], MEMBER, "sign"), profile="sign",
                    now=NOW - timedelta(hours=1))
    token = jws.sign(PAYLOAD, keys["ec-p256"], typ=TYP, header={"kid": fingerprint(cert)})
    verified = jws.verify(token, typ=TYP, trust=jws.KeyById([ca.certificate, cert]), now=NOW)
    assert verified.certificate == cert


def test_certificate_chain_validates_x5c_against_the_trust_roots(
    ca: CertificateAuthority, keys: dict[str, PrivateKey]
) -> None:
    cert = ca.issue(make_csr(keys["ed25519"], MEMBER, "sign"), profile="sign",
                    now=NOW - timedelta(hours=1))
    token = jws.sign(PAYLOAD, keys["ed25519"], typ=TYP,
                     header={"x5c": [jws.certificate_der_base64(cert)]})
    trust = jws.CertificateChain([ca.certificate], "sign")
    assert jws.verify(token, typ=TYP, trust=trust, now=NOW).certificate == cert


# -- what is refused: algorithms -------------------------------------------------------------


def _forge(header: dict[str, Any], payload: bytes, sign: Any = None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("header", [{"alg": "none"}, {"alg": None}, {"alg": ["ES256"]}, {}])
def test_alg_none_or_missing_is_refused(
    keys: dict[str, PrivateKey], header: dict[str, Any]
) -> None:
    token = _forge({**header, "typ": TYP}, json.dumps(PAYLOAD).encode())
    with pytest.raises(jws.SignatureInvalid, match="algorithm must be ES256"):
        jws.verify(token, typ=TYP, trust=pinned(keys["ec-p256"]), now=NOW)


def test_hmac_keyed_with_the_public_key_is_refused(keys: dict[str, PrivateKey]) -> None:
    public = keys["ec-p256"].public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    token = _forge(
        {"alg": "HS256", "typ": TYP}, json.dumps(PAYLOAD).encode(),
        lambda data: hmac.new(public, data, hashlib.sha256).digest(),
    )
    with pytest.raises(jws.SignatureInvalid, match="algorithm"):
        jws.verify(token, typ=TYP, trust=pinned(keys["ec-p256"]), now=NOW)


def test_rs256_for_an_rsa_key_is_refused(keys: dict[str, PrivateKey]) -> None:
    # A genuine PKCS#1 v1.5 signature by the right key: still not the pinned PS256.
    token = jwt.api_jws.encode(json.dumps(PAYLOAD).encode(), keys["rsa-2048"],
                               algorithm="RS256", headers={"typ": TYP})
    with pytest.raises(jws.SignatureInvalid, match="algorithm must be PS256"):
        jws.verify(token, typ=TYP, trust=pinned(keys["rsa-2048"]), now=NOW)


def test_an_algorithm_that_does_not_fit_the_key_is_refused(keys: dict[str, PrivateKey]) -> None:
    token = jws.sign(PAYLOAD, keys["ed25519"], typ=TYP)  # EdDSA
    with pytest.raises(jws.SignatureInvalid, match="must be ES256"):
        jws.verify(token, typ=TYP, trust=pinned(keys["ec-p256"]), now=NOW)


def test_a_der_encoded_ecdsa_signature_is_refused(keys: dict[str, PrivateKey]) -> None:
    key = keys["ec-p256"]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    token = _forge({"alg": "ES256", "typ": TYP}, json.dumps(PAYLOAD).encode(),
                   lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())))
    with pytest.raises(jws.SignatureInvalid, match="does not verify"):
        jws.verify(token, typ=TYP, trust=pinned(key), now=NOW)


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP384R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=1024),
    ],
    ids=["p384", "rsa1024"],
)
def test_keys_outside_the_accepted_types_cannot_sign_or_verify(key: Any) -> None:
    with pytest.raises(jws.SignatureInvalid):
        jws.sign(PAYLOAD, key, typ=TYP)
    with pytest.raises(jws.SignatureInvalid):
        jws.algorithm_for(key.public_key())


# -- what is refused: header -----------------------------------------------------------------


def test_wrong_typ_is_refused(keys: dict[str, PrivateKey]) -> None:
    token = jws.sign(PAYLOAD, keys["ec-p256"], typ="renkei-other+jws")
    with pytest.raises(jws.SignatureInvalid, match="type"):
        jws.verify(token, typ=TYP, trust=pinned(keys["ec-p256"]), now=NOW)


@pytest.mark.parametrize("extra", ["jku", "jwk", "x5u", "crit", "kid"])
def test_header_parameters_not_named_are_refused(keys: dict[str, PrivateKey], extra: str) -> None:
    token = jwt.api_jws.encode(json.dumps(PAYLOAD).encode(), keys["ec-p256"], algorithm="ES256",
                               headers={"typ": TYP, extra: "x"})
    with pytest.raises(jws.SignatureInvalid, match="not allowed"):
        jws.verify(token, typ=TYP, trust=pinned(keys["ec-p256"]), now=NOW)


def test_a_header_with_a_duplicate_key_is_refused(keys: dict[str, PrivateKey]) -> None:
    key = keys["ed25519"]
    header = b'{"alg":"EdDSA","typ":"other","typ":"' + TYP.encode() + b'"}'
    signing_input = f"{b64(header)}.{b64(json.dumps(PAYLOAD).encode())}"
    token = f"{signing_input}.{b64(key.sign(signing_input.encode()))}"  # type: ignore[call-arg]
    with pytest.raises(jws.SignatureInvalid, match="duplicate key 'typ'"):
        jws.verify(token, typ=TYP, trust=pinned(key), now=NOW)


def test_sign_refuses_to_set_alg_or_typ_through_the_header(keys: dict[str, PrivateKey]) -> None:
    for name in ("alg", "typ", "crit"):
        with pytest.raises(ValueError, match="fixed"):
            jws.sign(PAYLOAD, keys["ec-p256"], typ=TYP, header={name: "x"})


def test_a_missing_kid_or_unknown_kid_is_refused(
    ca: CertificateAuthority, keys: dict[str, PrivateKey]
) -> None:
    trust = jws.KeyById([ca.certificate])
    with pytest.raises(jws.SignatureInvalid, match="lacks kid"):
        jws.verify(jws.sign(PAYLOAD, keys["ec-p256"], typ=TYP), typ=TYP, trust=trust, now=NOW)
    token = jws.sign(PAYLOAD, keys["ec-p256"], typ=TYP, header={"kid": "00" * 32})
    with pytest.raises(jws.SignatureInvalid, match="kid names no certificate"):
        jws.verify(token, typ=TYP, trust=trust, now=NOW)


# -- what is refused: payload and signature ---------------------------------------------------


def _signed_raw(key: PrivateKey, payload: bytes) -> str:
    """A genuine EdDSA signature over any bytes, made by the independent implementation."""
    return jwt.api_jws.encode(payload, key, algorithm="EdDSA", headers={"typ": TYP})


@pytest.mark.parametrize(
    "payload",
    [
        b'{"kind":"request","method":"GET","method":"DELETE"}',
        b'{"destination":"A/B/C/D","destination":"A/B/C/E"}',
        b'{"status":200,"status":500}',
        b'{"n":NaN}',
        b'["not", "an", "object"]',
        b"not json",
        b'{"a":1}{"b":2}',
    ],
)
def test_a_payload_that_is_not_one_strict_object_is_refused(
    keys: dict[str, PrivateKey], payload: bytes
) -> None:
    token = _signed_raw(keys["ed25519"], payload)
    with pytest.raises(jws.SignatureInvalid, match="payload"):
        jws.verify(token, typ=TYP, trust=pinned(keys["ed25519"]), now=NOW)


def test_a_tampered_payload_is_refused(keys: dict[str, PrivateKey]) -> None:
    header, _, signature = jws.sign(PAYLOAD, keys["ec-p256"], typ=TYP).split(".")
    other = b64(json.dumps({**PAYLOAD, "method": "DELETE"}).encode())
    with pytest.raises(jws.SignatureInvalid, match="does not verify"):
        jws.verify(f"{header}.{other}.{signature}", typ=TYP, trust=pinned(keys["ec-p256"]),
                   now=NOW)


def test_a_signature_by_another_key_is_refused(keys: dict[str, PrivateKey]) -> None:
    token = jws.sign(PAYLOAD, generate_key("ec-p256"), typ=TYP)
    with pytest.raises(jws.SignatureInvalid, match="does not verify"):
        jws.verify(token, typ=TYP, trust=pinned(keys["ec-p256"]), now=NOW)


def test_non_canonical_base64url_is_refused(keys: dict[str, PrivateKey]) -> None:
    token = jws.sign(PAYLOAD, keys["ed25519"], typ=TYP)
    header, payload, signature = token.split(".")
    # The last character of a 64-byte signature carries 4 unused bits: set one of them.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(signature[-1]) ^ 1]
    variants = [
        f"{header}.{payload}.{signature}==",
        f"{header}=.{payload}.{signature}",
        f"{header}.{payload}.{signature[:-1]}{sibling}",
        f"{header}.{payload}.{signature.replace('-', '+').replace('_', '/')}x",
        f"{header}.{payload}",
        f"{header}.{payload}.{signature}.x",
        "",
        "\u00e9.a.b",
    ]
    for variant in variants:
        with pytest.raises(jws.SignatureInvalid):
            jws.verify(variant, typ=TYP, trust=pinned(keys["ed25519"]), now=NOW)


# -- what is refused: time and trust roots -----------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": int(NOW.timestamp())}, "expired"),
        ({"exp": int(NOW.timestamp()) - 1}, "expired"),
        ({"nbf": int(NOW.timestamp()) + 61}, "not yet valid"),
        ({"iat": int(NOW.timestamp()) + 61}, "not yet valid"),
        ({"exp": "tomorrow"}, "integer"),
        ({"exp": True}, "integer"),
        ({"exp": None}, "integer"),
    ],
)
def test_time_claims_are_judged_against_now(
    keys: dict[str, PrivateKey], claims: dict[str, Any], message: str
) -> None:
    token = jws.sign({**PAYLOAD, **claims}, keys["ec-p256"], typ=TYP)
    with pytest.raises(jws.SignatureInvalid, match=message):
        jws.verify(token, typ=TYP, trust=pinned(keys["ec-p256"]), now=NOW)


def test_time_claims_within_the_leeway_verify(keys: dict[str, PrivateKey]) -> None:
    stamp = int(NOW.timestamp())
    claims = {"exp": stamp + 1, "nbf": stamp + 60, "iat": stamp + 60}
    token = jws.sign({**PAYLOAD, **claims}, keys["ec-p256"], typ=TYP)
    assert jws.verify(token, typ=TYP, trust=pinned(keys["ec-p256"]), now=NOW).payload["exp"]


def test_a_naive_now_is_refused(keys: dict[str, PrivateKey]) -> None:
    token = jws.sign(PAYLOAD, keys["ec-p256"], typ=TYP)
    with pytest.raises(ValueError, match="timezone"):
        jws.verify(token, typ=TYP, trust=pinned(keys["ec-p256"]), now=NOW.replace(tzinfo=None))


def _x5c_token(ca: CertificateAuthority, key: PrivateKey, profile: str) -> str:
    if profile == "sign":
        csr = make_csr(key, MEMBER, "sign")
    else:
        csr = make_csr(key, NodeId("RENKEI", "GOV", "HOSP-A", "ss1"), "auth")
    cert = ca.issue(csr, profile=profile, now=NOW - timedelta(hours=1))  # type: ignore[arg-type]
    return jws.sign(PAYLOAD, key, typ=TYP, header={"x5c": [jws.certificate_der_base64(cert)]})


def test_certificate_chain_refuses_untrusted_expired_and_wrong_usage(
    ca: CertificateAuthority, keys: dict[str, PrivateKey], tmp_path: Path
) -> None:
    key = keys["ec-p256"]
    trust = jws.CertificateChain([ca.certificate], "sign")
    other = CertificateAuthority.create(tmp_path / "other", instance="RENKEI",
                                        now=NOW - timedelta(days=1))
    cases = [
        (_x5c_token(other, key, "sign"), trust, NOW),
        (_x5c_token(ca, key, "sign"), jws.CertificateChain([], "sign"), NOW),
        (_x5c_token(ca, key, "sign"), trust, NOW + timedelta(days=800)),
        (_x5c_token(ca, key, "auth"), trust, NOW),
        (jws.sign(PAYLOAD, key, typ=TYP), trust, NOW),
        (jws.sign(PAYLOAD, key, typ=TYP, header={"x5c": ["!!"]}), trust, NOW),
        (jws.sign(PAYLOAD, key, typ=TYP, header={"x5c": ["AAAA"] * 4}), trust, NOW),
        (jws.sign(PAYLOAD, key, typ=TYP, header={"x5c": "AAAA"}), trust, NOW),
    ]
    for token, chain_trust, now in cases:
        with pytest.raises(jws.SignatureInvalid):
            jws.verify(token, typ=TYP, trust=chain_trust, now=now)

"""Message signatures: what verifies, and every way a token is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certs import jws
from certs.ca import CertificateAuthority
from certs.identifiers import MemberId, NodeId
from certs.keys import KeyAlgorithm, generate_key
from certs.profiles import make_csr
from gateway.signing import (
    REQUEST_TYP,
    RESPONSE_TYP,
    CertificateCache,
    MessageSigner,
    SignatureError,
    request_hash,
    verify_message,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MEMBER = MemberId.parse("RENKEI/GOV/HOSP-A")
OTHER = MemberId.parse("RENKEI/GOV/HOSP-B")
PAYLOAD = {"kind": "request", "v": 1, "body_sha256": "x"}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(
        tmp_path_factory.mktemp("ca") / "ca", instance="RENKEI", now=NOW - timedelta(days=1)
    )


def signer_for(
    ca: CertificateAuthority,
    member: MemberId = MEMBER,
    algorithm: KeyAlgorithm = "ec-p256",
    profile: str = "sign",
) -> MessageSigner:
    key = generate_key(algorithm)
    if profile == "sign":
        cert = ca.issue(make_csr(key, member, "sign"), profile="sign", now=NOW - timedelta(hours=1))
    else:
        node = NodeId(member.instance, member.member_class, member.member_code, "ss1")
        cert = ca.issue(make_csr(key, node, "auth"), profile="auth", now=NOW - timedelta(hours=1))
    return MessageSigner(member=member, key=key, chain=(cert,))


def verify(token: str, ca: CertificateAuthority, **overrides: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "typ": REQUEST_TYP,
        "expected_member": MEMBER,
        "trust_roots": (ca.certificate,),
        "roots_key": 1,
        "now": NOW,
        "cache": CertificateCache(),
    }
    arguments.update(overrides)
    return verify_message(token, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["ec-p256", "ed25519", "rsa-2048"])
def test_round_trip_for_each_key_type(ca: CertificateAuthority, algorithm: KeyAlgorithm) -> None:
    token = signer_for(ca, algorithm=algorithm).sign(PAYLOAD, typ=REQUEST_TYP)
    assert verify(token, ca) == PAYLOAD


def test_algorithm_is_pinned_by_key_type(ca: CertificateAuthority) -> None:
    header = jwt.get_unverified_header(
        signer_for(ca, algorithm="rsa-2048").sign(PAYLOAD, typ=REQUEST_TYP)
    )
    assert header["alg"] == "PS256"


def test_request_hash_is_base64_sha512() -> None:
    assert len(base64.b64decode(request_hash("a.b.c"))) == 64


def test_wrong_type_is_refused(ca: CertificateAuthority) -> None:
    token = signer_for(ca).sign(PAYLOAD, typ=RESPONSE_TYP)
    with pytest.raises(SignatureError, match="type"):
        verify(token, ca)


def test_signer_of_another_member_is_refused(ca: CertificateAuthority) -> None:
    token = signer_for(ca, member=OTHER).sign(PAYLOAD, typ=REQUEST_TYP)
    with pytest.raises(SignatureError, match="expected"):
        verify(token, ca)


def test_untrusted_ca_is_refused(ca: CertificateAuthority, tmp_path: Path) -> None:
    other_ca = CertificateAuthority.create(
        tmp_path / "other", instance="RENKEI", now=NOW - timedelta(days=1)
    )
    token = signer_for(other_ca).sign(PAYLOAD, typ=REQUEST_TYP)
    with pytest.raises(SignatureError) as info:
        verify(token, ca)
    assert info.value.code == "certs.certificate_untrusted"


def test_empty_trust_store_is_refused(ca: CertificateAuthority) -> None:
    token = signer_for(ca).sign(PAYLOAD, typ=REQUEST_TYP)
    with pytest.raises(SignatureError):
        verify(token, ca, trust_roots=())


def test_auth_certificate_cannot_sign_messages(ca: CertificateAuthority) -> None:
    token = signer_for(ca, profile="auth").sign(PAYLOAD, typ=REQUEST_TYP)
    with pytest.raises(SignatureError) as info:
        verify(token, ca)
    assert info.value.code == "certs.certificate_wrong_usage"


def test_expired_signer_certificate_is_refused(ca: CertificateAuthority) -> None:
    token = signer_for(ca).sign(PAYLOAD, typ=REQUEST_TYP)
    with pytest.raises(SignatureError) as info:
        verify(token, ca, now=NOW + timedelta(days=400))
    assert info.value.code == "certs.certificate_expired"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, object], payload: bytes, secret: bytes) -> str:
    """An HS256 token made by hand (PyJWT itself refuses to make this forgery)."""
    import hashlib
    import hmac

    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def test_alg_none_is_refused(ca: CertificateAuthority) -> None:
    signer = signer_for(ca)
    token = signer.sign(PAYLOAD, typ=REQUEST_TYP)
    header, payload, _ = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=="))
    decoded["alg"] = "none"
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    with pytest.raises(SignatureError):
        verify(f"{forged}.{payload}.", ca)


def test_hmac_with_public_key_is_refused(ca: CertificateAuthority) -> None:
    signer = signer_for(ca)
    cert = signer.chain[0]
    x5c = [base64.b64encode(cert.public_bytes(Encoding.DER)).decode()]
    secret = cert.public_bytes(Encoding.PEM)
    forged = _forge({"alg": "HS256", "typ": REQUEST_TYP, "x5c": x5c}, jws.canonical_json(PAYLOAD),
                    secret)
    with pytest.raises(SignatureError, match="algorithm must be ES256"):
        verify(forged, ca)


def test_extra_header_fields_are_refused(ca: CertificateAuthority) -> None:
    signer = signer_for(ca)
    cert = signer.chain[0]
    x5c = [base64.b64encode(cert.public_bytes(Encoding.DER)).decode()]
    forged = jwt.api_jws.encode(
        jws.canonical_json(PAYLOAD),
        signer.key,
        algorithm="ES256",
        headers={"typ": REQUEST_TYP, "x5c": x5c, "jku": "http://evil.example/keys"},
    )
    with pytest.raises(SignatureError, match="not allowed"):
        verify(forged, ca)


def test_ecdsa_declared_as_another_algorithm_is_refused(ca: CertificateAuthority) -> None:
    signer = signer_for(ca)
    cert = signer.chain[0]
    x5c = [base64.b64encode(cert.public_bytes(Encoding.DER)).decode()]
    genuine_signature = signer.sign(PAYLOAD, typ=REQUEST_TYP).split(".")[2]
    header = _b64(json.dumps({"alg": "ES384", "typ": REQUEST_TYP, "x5c": x5c}).encode())
    forged = f"{header}.{_b64(jws.canonical_json(PAYLOAD))}.{genuine_signature}"
    with pytest.raises(SignatureError, match="algorithm"):
        verify(forged, ca)


def test_tampered_payload_is_refused(ca: CertificateAuthority) -> None:
    token = signer_for(ca).sign(PAYLOAD, typ=REQUEST_TYP)
    header, _, signature = token.split(".")
    other = (
        base64.urlsafe_b64encode(jws.canonical_json({"kind": "request", "v": 2}))
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(SignatureError, match="does not verify"):
        verify(f"{header}.{other}.{signature}", ca)


def test_signature_swapped_from_another_key_is_refused(ca: CertificateAuthority) -> None:
    genuine = signer_for(ca).sign(PAYLOAD, typ=REQUEST_TYP)
    impostor = signer_for(ca).sign(PAYLOAD, typ=REQUEST_TYP)  # same member, another key
    header = genuine.split(".")[0]
    _, payload, signature = impostor.split(".")
    with pytest.raises(SignatureError):
        verify(f"{header}.{payload}.{signature}", ca)


@pytest.mark.parametrize("chain", [None, [], "x", ["!!notbase64"], ["AAAA"] * 4])
def test_malformed_x5c_is_refused(ca: CertificateAuthority, chain: object) -> None:
    signer = signer_for(ca)
    headers: dict[str, object] = {"typ": REQUEST_TYP}
    if chain is not None:
        headers["x5c"] = chain
    forged = jwt.api_jws.encode(
        jws.canonical_json(PAYLOAD), signer.key, algorithm="ES256", headers=headers
    )
    with pytest.raises(SignatureError):
        verify(forged, ca)


def test_garbage_is_refused(ca: CertificateAuthority) -> None:
    for token in ("", "a.b", "a.b.c", "....", "eyJ.eyJ.x"):
        with pytest.raises(SignatureError):
            verify(token, ca)


def test_cache_checks_again_when_trust_roots_change(ca: CertificateAuthority) -> None:
    signer = signer_for(ca)
    der = signer.chain[0].public_bytes(Encoding.DER)
    cache = CertificateCache(ttl_s=60)
    cert = cache.validated(der, trust_roots=(ca.certificate,), roots_key=1, now=NOW)
    assert isinstance(cert, x509.Certificate)
    with pytest.raises(SignatureError):
        cache.validated(der, trust_roots=(), roots_key=2, now=NOW)  # new roots: checked again


def test_a_cached_signer_is_still_checked_against_the_expected_member(
    ca: CertificateAuthority,
) -> None:
    cache = CertificateCache()
    token = signer_for(ca).sign(PAYLOAD, typ=REQUEST_TYP)
    assert verify(token, ca, cache=cache) == PAYLOAD
    # Second time the member comes from the cache: still compared, still refused.
    with pytest.raises(SignatureError, match="expected"):
        verify(token, ca, cache=cache, expected_member=OTHER)


def test_a_certificate_naming_no_member_is_refused(ca: CertificateAuthority) -> None:
    auth = signer_for(ca, profile="auth").chain[0]
    with pytest.raises(SignatureError, match="names no member"):
        CertificateCache().member_of(auth)


@pytest.mark.parametrize(
    ("typ", "key", "first"),
    [
        (REQUEST_TYP, "method", "DELETE"),
        (REQUEST_TYP, "destination", "RENKEI/GOV/HOSP-C/ss1"),
        (RESPONSE_TYP, "status", 500),
    ],
)
def test_a_signed_description_with_a_duplicate_key_is_refused(
    ca: CertificateAuthority, typ: str, key: str, first: object
) -> None:
    signer = signer_for(ca)
    description = {**PAYLOAD, key: "GET" if key == "method" else 200}
    # The same key twice, genuinely signed: which one counts would depend on the reader.
    payload = b"{" + jws.canonical_json({key: first})[1:-1] + b"," + jws.canonical_json(
        description
    )[1:]
    x5c = [jws.certificate_der_base64(signer.chain[0])]
    token = jwt.api_jws.encode(payload, signer.key, algorithm="ES256",
                               headers={"typ": typ, "x5c": x5c})
    with pytest.raises(SignatureError, match=f"duplicate key '{key}'"):
        verify(token, ca, typ=typ)

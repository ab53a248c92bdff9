from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certs.jws import canonical_json
from certs.keys import private_key_pem
from member_registry._certificates import fingerprint
from member_registry.anchor import Anchor
from member_registry.errors import (
    GlobalConfError,
    GlobalConfExpired,
    GlobalConfMalformed,
    GlobalConfRollback,
    GlobalConfSignatureInvalid,
    RegistryError,
)
from member_registry.globalconf import GlobalConf
from member_registry.signing import (
    load_signing_key,
    sign_global_conf,
    verify_global_conf,
)
from tests.unit.member_registry.registry_samples import NOW, make_certificate

Identity = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _forge(header: dict[str, Any], payload: bytes, key: ec.EllipticCurvePrivateKey) -> str:
    """A JWS with an arbitrary header, signed ES256 by ``key`` (signature as JOSE r||s)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(payload)}".encode()
    algorithm = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256)
    return f"{signing_input.decode()}.{_b64(algorithm.sign(signing_input, key))}"


def _header(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def test_sign_and_verify(sample_conf: GlobalConf, registry_identity: Identity,
                         anchor: Anchor) -> None:
    token = sign_global_conf(sample_conf, *registry_identity)
    assert _header(token) == {"alg": "ES256", "typ": "renkei-globalconf+jws",
                              "kid": fingerprint(registry_identity[1])}
    assert verify_global_conf(token, anchor, now=NOW) == sample_conf
    assert verify_global_conf(token, anchor, now=NOW, min_version=6) == sample_conf


def test_payload_is_canonical_json(sample_conf: GlobalConf, registry_identity: Identity) -> None:
    token = sign_global_conf(sample_conf, *registry_identity)
    payload = base64.urlsafe_b64decode(token.split(".")[1] + "==")
    assert payload == canonical_json(sample_conf.to_json_dict())


def test_two_anchor_certificates_allow_rotation(
    sample_conf: GlobalConf, registry_identity: Identity, other_identity: Identity,
    anchor: Anchor,
) -> None:
    rotated = replace(anchor, verification_certificates=(registry_identity[1],
                                                         other_identity[1]))
    for identity in (registry_identity, other_identity):
        token = sign_global_conf(sample_conf, *identity)
        assert verify_global_conf(token, rotated, now=NOW) == sample_conf


def test_wrong_key_is_rejected(sample_conf: GlobalConf, other_identity: Identity,
                               anchor: Anchor) -> None:
    token = sign_global_conf(sample_conf, *other_identity)
    with pytest.raises(GlobalConfSignatureInvalid, match="kid names no certificate"):
        verify_global_conf(token, anchor, now=NOW)


def test_right_kid_wrong_key_is_rejected(sample_conf: GlobalConf, registry_identity: Identity,
                                         other_identity: Identity, anchor: Anchor) -> None:
    header = {"alg": "ES256", "typ": "renkei-globalconf+jws",
              "kid": fingerprint(registry_identity[1])}
    token = _forge(header, canonical_json(sample_conf.to_json_dict()), other_identity[0])
    with pytest.raises(GlobalConfSignatureInvalid, match="does not verify") as info:
        verify_global_conf(token, anchor, now=NOW)
    assert info.value.code == "server.clientproxy.global_conf_signature_invalid"


def test_forged_helper_signs_valid_tokens(sample_conf: GlobalConf, registry_identity: Identity,
                                          anchor: Anchor) -> None:
    # Guards the negative tests below: they fail for their header, not for the helper.
    header = {"alg": "ES256", "typ": "renkei-globalconf+jws",
              "kid": fingerprint(registry_identity[1])}
    token = _forge(header, canonical_json(sample_conf.to_json_dict()), registry_identity[0])
    assert verify_global_conf(token, anchor, now=NOW) == sample_conf


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"jwk": {"kty": "EC"}}, "not allowed: jwk"),
        ({"x5c": ["MIIB"]}, "not allowed: x5c"),
        ({"jku": "http://evil.example/keys"}, "not allowed: jku"),
        ({"x5u": "http://evil.example/cert"}, "not allowed: x5u"),
        ({"crit": ["b64"], "b64": False}, "not allowed: b64, crit"),
        ({"typ": "JWT"}, "type must be"),
        ({"kid": None}, None),
        ({"alg": "ES384"}, "algorithm must be ES256"),
        ({"kid": 5}, None),
    ],
)
def test_header_is_pinned(sample_conf: GlobalConf, registry_identity: Identity, anchor: Anchor,
                          extra: dict[str, Any], message: str | None) -> None:
    header = {"alg": "ES256", "typ": "renkei-globalconf+jws",
              "kid": fingerprint(registry_identity[1]), **extra}
    token = _forge(header, canonical_json(sample_conf.to_json_dict()), registry_identity[0])
    with pytest.raises(GlobalConfSignatureInvalid, match=message):
        verify_global_conf(token, anchor, now=NOW)


def test_missing_kid_is_rejected(sample_conf: GlobalConf, registry_identity: Identity,
                                 anchor: Anchor) -> None:
    header = {"alg": "ES256", "typ": "renkei-globalconf+jws"}
    token = _forge(header, canonical_json(sample_conf.to_json_dict()), registry_identity[0])
    with pytest.raises(GlobalConfSignatureInvalid):
        verify_global_conf(token, anchor, now=NOW)


def test_alg_none_is_rejected(sample_conf: GlobalConf, registry_identity: Identity,
                              anchor: Anchor) -> None:
    header = {"alg": "none", "typ": "renkei-globalconf+jws",
              "kid": fingerprint(registry_identity[1])}
    payload = canonical_json(sample_conf.to_json_dict())
    token = f"{_b64(json.dumps(header).encode())}.{_b64(payload)}."
    with pytest.raises(GlobalConfSignatureInvalid, match="algorithm"):
        verify_global_conf(token, anchor, now=NOW)


def test_hs256_with_the_public_key_as_secret_is_rejected(
    sample_conf: GlobalConf, registry_identity: Identity, anchor: Anchor
) -> None:
    public_pem = registry_identity[1].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "renkei-globalconf+jws",
              "kid": fingerprint(registry_identity[1])}
    signing_input = (f"{_b64(json.dumps(header).encode())}."
                     f"{_b64(canonical_json(sample_conf.to_json_dict()))}")
    import hmac
    mac = hmac.new(public_pem, signing_input.encode(), "sha256").digest()
    token = f"{signing_input}.{_b64(mac)}"
    with pytest.raises(GlobalConfSignatureInvalid, match="algorithm"):
        verify_global_conf(token, anchor, now=NOW)


def test_rs256_is_rejected(sample_conf: GlobalConf, registry_identity: Identity,
                           anchor: Anchor) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header = {"alg": "RS256", "typ": "renkei-globalconf+jws",
              "kid": fingerprint(registry_identity[1])}
    signing_input = (f"{_b64(json.dumps(header).encode())}."
                     f"{_b64(canonical_json(sample_conf.to_json_dict()))}")
    from cryptography.hazmat.primitives.asymmetric import padding
    signature = rsa_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(GlobalConfSignatureInvalid, match="algorithm"):
        verify_global_conf(f"{signing_input}.{_b64(signature)}", anchor, now=NOW)


def test_tampered_payload_is_rejected(sample_conf: GlobalConf, registry_identity: Identity,
                                      anchor: Anchor) -> None:
    token = sign_global_conf(sample_conf, *registry_identity)
    header, _, signature = token.split(".")
    d = sample_conf.to_json_dict()
    d["nodes"][0]["address"] = "203.0.113.9"
    with pytest.raises(GlobalConfSignatureInvalid):
        verify_global_conf(f"{header}.{_b64(canonical_json(d))}.{signature}", anchor, now=NOW)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!.??.**"])
def test_garbage_is_rejected(anchor: Anchor, token: str) -> None:
    with pytest.raises(GlobalConfSignatureInvalid):
        verify_global_conf(token, anchor, now=NOW)


def test_signed_but_malformed_payload_is_rejected(registry_identity: Identity,
                                                  anchor: Anchor) -> None:
    header = {"alg": "ES256", "typ": "renkei-globalconf+jws",
              "kid": fingerprint(registry_identity[1])}
    for payload in (b'{"format": "renkei-globalconf/1"}', b"[1", b'{"a":1,"a":2}'):
        with pytest.raises(GlobalConfMalformed):
            verify_global_conf(_forge(header, payload, registry_identity[0]), anchor, now=NOW)


def test_instance_mismatch_is_rejected(sample_conf: GlobalConf, registry_identity: Identity,
                                       anchor: Anchor) -> None:
    token = sign_global_conf(sample_conf, *registry_identity)
    with pytest.raises(GlobalConfError, match="instance") as info:
        verify_global_conf(token, replace(anchor, instance="OTHER"), now=NOW)
    assert info.value.code == "server.clientproxy.global_conf_invalid"


def test_expired_is_rejected(sample_conf: GlobalConf, registry_identity: Identity,
                             anchor: Anchor) -> None:
    token = sign_global_conf(sample_conf, *registry_identity)
    with pytest.raises(GlobalConfExpired) as info:
        verify_global_conf(token, anchor, now=sample_conf.expires_at)
    assert info.value.code == "server.clientproxy.global_conf_outdated"


def test_generated_in_the_future_is_rejected(sample_conf: GlobalConf,
                                             registry_identity: Identity,
                                             anchor: Anchor) -> None:
    token = sign_global_conf(sample_conf, *registry_identity)
    assert verify_global_conf(token, anchor, now=NOW - timedelta(seconds=60))
    with pytest.raises(GlobalConfExpired, match="future"):
        verify_global_conf(token, anchor, now=NOW - timedelta(seconds=61))


@pytest.mark.parametrize("min_version", [7, 8, 100])
def test_rollback_is_rejected(sample_conf: GlobalConf, registry_identity: Identity,
                              anchor: Anchor, min_version: int) -> None:
    token = sign_global_conf(sample_conf, *registry_identity)
    with pytest.raises(GlobalConfRollback) as info:
        verify_global_conf(token, anchor, now=NOW, min_version=min_version)
    assert info.value.code == "server.clientproxy.global_conf_rollback"


def test_naive_now_is_refused(sample_conf: GlobalConf, registry_identity: Identity,
                              anchor: Anchor) -> None:
    token = sign_global_conf(sample_conf, *registry_identity)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_global_conf(token, anchor, now=NOW.replace(tzinfo=None))


def test_anchor_with_a_non_p256_certificate_fails_closed(
    sample_conf: GlobalConf, registry_identity: Identity, anchor: Anchor
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    name = registry_identity[1].subject
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW).not_valid_after(NOW + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    header = {"alg": "ES256", "typ": "renkei-globalconf+jws", "kid": fingerprint(cert)}
    token = _forge(header, canonical_json(sample_conf.to_json_dict()), registry_identity[0])
    with pytest.raises(GlobalConfSignatureInvalid, match="P-256"):
        verify_global_conf(token, replace(anchor, verification_certificates=(cert,)), now=NOW)


def test_signing_with_a_mismatched_certificate_is_refused(
    sample_conf: GlobalConf, registry_identity: Identity, other_identity: Identity
) -> None:
    with pytest.raises(RegistryError, match="does not match"):
        sign_global_conf(sample_conf, registry_identity[0], other_identity[1])


def test_signing_key_round_trip(tmp_path: Any, registry_identity: Identity) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(private_key_pem(registry_identity[0]))
    loaded = load_signing_key(path)
    assert loaded.public_key() == registry_identity[0].public_key()


def test_bad_signing_keys_are_refused(tmp_path: Any) -> None:
    with pytest.raises(RegistryError):
        load_signing_key(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(RegistryError):
        load_signing_key(tmp_path / "junk.pem")
    p384 = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "p384.pem").write_bytes(private_key_pem(p384))
    with pytest.raises(RegistryError, match="P-256"):
        load_signing_key(tmp_path / "p384.pem")


def test_sample_certificate_helper() -> None:
    assert make_certificate("x").subject.rfc4514_string() == "CN=x"

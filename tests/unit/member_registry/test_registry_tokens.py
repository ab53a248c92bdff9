"""Registry bearer JWTs (member_registry.tokens): RFC 8725 checks, each with a token failing it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from member_registry.errors import TokenInvalid
from member_registry.tokens import REGISTRY_ROLES, BearerTokens, registry_audience

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AUDIENCE = registry_audience("RENKEI")


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def tokens(key: ec.EllipticCurvePrivateKey) -> BearerTokens:
    return BearerTokens(key, AUDIENCE, REGISTRY_ROLES)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": AUDIENCE,
        "aud": AUDIENCE,
        "sub": "alice",
        "role": "admin",
        "jti": "1",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    }
    base.update(overrides)
    return base


def signed(key: ec.EllipticCurvePrivateKey, body: dict[str, object], typ: str = "at+jwt") -> str:
    return jwt.encode(body, key, algorithm="ES256", headers={"typ": typ})


def test_round_trip(tokens: BearerTokens) -> None:
    token = tokens.issue(role="auditor", subject="bob", now=NOW, ttl=timedelta(hours=8))
    verified = tokens.verify(token, now=NOW + timedelta(hours=7))
    assert (verified.subject, verified.role) == ("bob", "auditor")
    assert verified.expires_at == NOW + timedelta(hours=8)


@pytest.mark.parametrize("role", ["consent", "root", ""])
def test_roles_outside_the_set_cannot_be_issued(tokens: BearerTokens, role: str) -> None:
    with pytest.raises(ValueError, match="role"):
        tokens.issue(role=role, subject="x", now=NOW, ttl=timedelta(minutes=1))


def test_non_positive_lifetime_cannot_be_issued(tokens: BearerTokens) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        tokens.issue(role="admin", subject="x", now=NOW, ttl=timedelta(0))


def test_expired(tokens: BearerTokens) -> None:
    token = tokens.issue(role="admin", subject="x", now=NOW, ttl=timedelta(minutes=1))
    with pytest.raises(TokenInvalid, match="expired"):
        tokens.verify(token, now=NOW + timedelta(minutes=1))


def test_not_yet_valid(tokens: BearerTokens) -> None:
    token = tokens.issue(role="admin", subject="x", now=NOW, ttl=timedelta(hours=1))
    with pytest.raises(TokenInvalid, match="not yet valid"):
        tokens.verify(token, now=NOW - timedelta(minutes=5))


@pytest.mark.parametrize(
    "override",
    [
        {"aud": "RENKEI/GOV/HOSP-A/ss1"},  # a node's token
        {"aud": registry_audience("OTHER")},
        {"iss": "someone-else"},
        {"role": "consent"},
        {"role": ["admin"]},
        {"sub": 7},
        {"iat": "now"},
        {"exp": True},
        {"exp": int((NOW - timedelta(seconds=1)).timestamp())},
    ],
)
def test_claims_are_checked(
    key: ec.EllipticCurvePrivateKey, tokens: BearerTokens, override: dict[str, object]
) -> None:
    with pytest.raises(TokenInvalid):
        tokens.verify(signed(key, claims(**override)), now=NOW)


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "sub", "aud", "iss"])
def test_required_claims(
    key: ec.EllipticCurvePrivateKey, tokens: BearerTokens, missing: str
) -> None:
    body = claims()
    del body[missing]
    with pytest.raises(TokenInvalid):
        tokens.verify(signed(key, body), now=NOW)


@pytest.mark.parametrize("typ", ["JWT", "at+JWT", "jwt"])
def test_wrong_type(key: ec.EllipticCurvePrivateKey, tokens: BearerTokens, typ: str) -> None:
    with pytest.raises(TokenInvalid, match="type"):
        tokens.verify(signed(key, claims(), typ=typ), now=NOW)


def test_wrong_key(tokens: BearerTokens) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TokenInvalid):
        tokens.verify(signed(other, claims()), now=NOW)


def test_a_node_token_key_does_not_open_the_registry(key: ec.EllipticCurvePrivateKey) -> None:
    node = BearerTokens(key, "RENKEI/GOV/HOSP-A/ss1", {"admin", "auditor", "consent"})
    token = node.issue(role="admin", subject="x", now=NOW, ttl=timedelta(minutes=5))
    with pytest.raises(TokenInvalid):
        BearerTokens(key, AUDIENCE, REGISTRY_ROLES).verify(token, now=NOW)


def test_alg_none(tokens: BearerTokens) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    with pytest.raises(TokenInvalid):
        tokens.verify(f"{header}.{b64(json.dumps(claims()).encode())}.", now=NOW)


def test_hs256_keyed_with_the_public_key(
    key: ec.EllipticCurvePrivateKey, tokens: BearerTokens
) -> None:
    secret = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'typ': 'at+jwt'}).encode())}."
        f"{b64(json.dumps(claims()).encode())}"
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenInvalid):
        tokens.verify(f"{signing_input}.{b64(mac)}", now=NOW)


def test_es384_is_not_accepted(tokens: BearerTokens) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    token = jwt.encode(claims(), p384, algorithm="ES384", headers={"typ": "at+jwt"})
    with pytest.raises(TokenInvalid, match="algorithm"):
        tokens.verify(token, now=NOW)


@pytest.mark.parametrize(
    "extra", [{"jku": "http://evil.example/jwks"}, {"kid": "x"}, {"x5u": "u"}, {"jwk": {}}]
)
def test_keys_and_urls_from_the_token_are_refused(
    key: ec.EllipticCurvePrivateKey, tokens: BearerTokens, extra: dict[str, object]
) -> None:
    token = jwt.encode(claims(), key, algorithm="ES256", headers={"typ": "at+jwt", **extra})
    with pytest.raises(TokenInvalid):
        tokens.verify(token, now=NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "..."])
def test_garbage(tokens: BearerTokens, garbage: str) -> None:
    with pytest.raises(TokenInvalid):
        tokens.verify(garbage, now=NOW)


def test_only_p256_keys() -> None:
    with pytest.raises(ValueError, match="P-256"):
        BearerTokens(ec.generate_private_key(ec.SECP384R1()), AUDIENCE, REGISTRY_ROLES)


def test_error_code() -> None:
    assert TokenInvalid.code == "registry.unauthorized"

"""Management bearer tokens: RFC 8725 checks, each with a token that fails it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.tokens import TokenError, TokenIssuer

NOW = datetime.now(UTC)
AUDIENCE = "RENKEI/GOV/HOSP-B/ss1"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def issuer(key: ec.EllipticCurvePrivateKey) -> TokenIssuer:
    return TokenIssuer(key, AUDIENCE)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": AUDIENCE,
        "aud": AUDIENCE,
        "sub": "alice",
        "role": "auditor",
        "jti": "1",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    }
    base.update(overrides)
    return base


def test_round_trip(issuer: TokenIssuer) -> None:
    token = issuer.issue(role="consent", subject="desk", now=NOW, ttl=timedelta(minutes=5))
    verified = issuer.verify(token, now=NOW)
    assert verified.role == "consent"
    assert verified.subject == "desk"


def test_unknown_role_cannot_be_issued(issuer: TokenIssuer) -> None:
    with pytest.raises(ValueError, match="role"):
        issuer.issue(role="root", subject="x", now=NOW, ttl=timedelta(minutes=1))


def test_expired(issuer: TokenIssuer) -> None:
    token = issuer.issue(role="admin", subject="x", now=NOW, ttl=timedelta(minutes=1))
    with pytest.raises(TokenError):
        issuer.verify(token, now=NOW + timedelta(minutes=2))


@pytest.mark.parametrize(
    "override",
    [
        {"aud": "RENKEI/GOV/HOSP-A/ss1"},
        {"iss": "someone-else"},
        {"role": "root"},
        {"exp": int((NOW - timedelta(seconds=1)).timestamp())},
    ],
)
def test_claims_are_checked(
    key: ec.EllipticCurvePrivateKey, issuer: TokenIssuer, override: dict[str, object]
) -> None:
    token = jwt.encode(claims(**override), key, algorithm="ES256", headers={"typ": "at+jwt"})
    with pytest.raises(TokenError):
        issuer.verify(token, now=NOW)


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "sub"])
def test_required_claims(
    key: ec.EllipticCurvePrivateKey, issuer: TokenIssuer, missing: str
) -> None:
    body = claims()
    del body[missing]
    token = jwt.encode(body, key, algorithm="ES256", headers={"typ": "at+jwt"})
    with pytest.raises(TokenError):
        issuer.verify(token, now=NOW)


def test_wrong_type(key: ec.EllipticCurvePrivateKey, issuer: TokenIssuer) -> None:
    token = jwt.encode(claims(), key, algorithm="ES256", headers={"typ": "JWT"})
    with pytest.raises(TokenError, match="type"):
        issuer.verify(token, now=NOW)


def test_another_key(issuer: TokenIssuer) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(), other, algorithm="ES256", headers={"typ": "at+jwt"})
    with pytest.raises(TokenError):
        issuer.verify(token, now=NOW)


def test_alg_none(issuer: TokenIssuer) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    token = f"{header}.{b64(json.dumps(claims()).encode())}."
    with pytest.raises(TokenError):
        issuer.verify(token, now=NOW)


def test_hmac_with_the_public_key(key: ec.EllipticCurvePrivateKey, issuer: TokenIssuer) -> None:
    import hashlib
    import hmac

    secret = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'typ': 'at+jwt'}).encode())}."
        f"{b64(json.dumps(claims()).encode())}"
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenError):
        issuer.verify(f"{signing_input}.{b64(mac)}", now=NOW)


@pytest.mark.parametrize("extra", [{"jku": "http://evil.example/jwks"}, {"kid": "x"}, {"x5u": "u"}])
def test_keys_and_urls_from_the_token_are_refused(
    key: ec.EllipticCurvePrivateKey, issuer: TokenIssuer, extra: dict[str, str]
) -> None:
    token = jwt.encode(claims(), key, algorithm="ES256", headers={"typ": "at+jwt", **extra})
    with pytest.raises(TokenError):
        issuer.verify(token, now=NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x"])
def test_garbage(issuer: TokenIssuer, garbage: str) -> None:
    with pytest.raises(TokenError):
        issuer.verify(garbage, now=NOW)


def test_cli_issues_registry_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main
    from member_registry.bootstrap import initialise_registry
    from member_registry.ops_api import load_registry_tokens
    from member_registry.settings import load_settings

    config = initialise_registry(tmp_path / "registry", "RENKEI", now=NOW).config
    argv = ["token", "issue", "--registry-config", str(config), "--subject", "carol"]
    assert main([*argv, "--role", "auditor", "--ttl", "8h"]) == 0
    token = capsys.readouterr().out.strip()
    tokens = load_registry_tokens(load_settings(config, {}))
    assert tokens is not None
    verified = tokens.verify(token, now=datetime.now(UTC))
    assert (verified.subject, verified.role) == ("carol", "auditor")
    # The registry has no consent desk; a node token is not a registry token.
    assert main([*argv, "--role", "consent"]) == 1
    assert "role" in capsys.readouterr().err
    with pytest.raises(TokenError):
        TokenIssuer(ec.generate_private_key(ec.SECP256R1()), AUDIENCE).verify(
            token, now=datetime.now(UTC)
        )


def test_each_refusal_names_its_reason(
    key: ec.EllipticCurvePrivateKey, issuer: TokenIssuer
) -> None:
    """The reason is what the rejection log and metric record (gateway/rejections.py)."""
    other = ec.generate_private_key(ec.SECP256R1())
    none_header = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    tokens = {
        "audience": jwt.encode(
            claims(aud="RENKEI/GOV/HOSP-A/ss1"), key, algorithm="ES256", headers={"typ": "at+jwt"}
        ),
        "algorithm": f"{none_header}.{b64(json.dumps(claims()).encode())}.",
        "signature": jwt.encode(claims(), other, algorithm="ES256", headers={"typ": "at+jwt"}),
        "malformed": "a.b.c",
        "expired": jwt.encode(
            claims(exp=int((NOW - timedelta(seconds=1)).timestamp())), key, algorithm="ES256",
            headers={"typ": "at+jwt"},
        ),
        "role": jwt.encode(claims(role="root"), key, algorithm="ES256", headers={"typ": "at+jwt"}),
    }
    for reason, token in tokens.items():
        with pytest.raises(TokenError) as caught:
            issuer.verify(token, now=NOW)
        assert caught.value.reason == reason, token

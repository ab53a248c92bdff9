"""Management API bearer tokens: JWTs checked as RFC 8725 asks.

Tokens are signed by the node's own token key (ES256). Verification pins the
algorithm, requires ``typ`` = ``at+jwt`` (RFC 9068), the node as audience, an
expiry and a known role, and takes no key or URL from the token itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from certs.keys import load_private_key

__all__ = ["ROLES", "TokenClaims", "TokenError", "TokenIssuer"]

ROLES = frozenset({"admin", "auditor", "consent"})
TYP = "at+jwt"
ALGORITHM = "ES256"


class TokenError(Exception):
    """The bearer token is missing, malformed, expired or not for this node."""

    code = "management.unauthorized"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    role: str
    token_id: str
    expires_at: datetime


class TokenIssuer:
    """Issues and verifies tokens for one audience (a node or the registry)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, audience: str) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the token key must be an ECDSA P-256 key")
        self._key = key
        self._public = key.public_key()
        self._audience = audience

    @classmethod
    def from_key_file(cls, path: Path, *, audience: str) -> TokenIssuer:
        key = load_private_key(path)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: the token key must be an ECDSA P-256 key")
        return cls(key, audience)

    def issue(self, *, role: str, subject: str, now: datetime, ttl: timedelta) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {sorted(ROLES)}")
        claims = {
            "iss": self._audience,
            "aud": self._audience,
            "sub": subject,
            "role": role,
            "jti": str(uuid.uuid4()),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"typ": TYP})

    def verify(self, token: str, *, now: datetime) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("the bearer token is not a JWT") from exc
        if header.get("typ") != TYP or header.get("alg") != ALGORITHM:
            raise TokenError("the bearer token has the wrong type or algorithm")
        if set(header) - {"typ", "alg"}:
            raise TokenError("the bearer token header carries fields that are not allowed")
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._audience,
                # Time is checked below against the caller's clock, not PyJWT's own.
                options={
                    "require": ["exp", "iat", "aud", "iss", "sub", "jti"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenError(f"the bearer token is not valid: {exc}") from exc
        iat, exp = claims.get("iat"), claims.get("exp")
        nbf = claims.get("nbf", iat)
        if not (isinstance(iat, int) and isinstance(exp, int) and isinstance(nbf, int)):
            raise TokenError("the bearer token's times must be integers")
        if not (max(iat, nbf) - 60 <= now.timestamp() < exp):
            raise TokenError("the bearer token is expired or not yet valid")
        role = claims.get("role")
        if role not in ROLES:
            raise TokenError("the bearer token carries no known role")
        return TokenClaims(
            subject=str(claims["sub"]),
            role=str(role),
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo),
        )

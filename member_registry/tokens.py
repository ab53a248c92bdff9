"""Bearer JWTs for management APIs, checked as RFC 8725 asks.

One :class:`BearerTokens` per audience (the registry, or a node): tokens are
signed with that audience's own token key (ES256) by the JWS recipe of
``certs.jws``. Verification pins the algorithm, requires ``typ`` = ``at+jwt``
(RFC 9068), the audience as ``aud`` and ``iss``, an expiry checked against the
caller's clock and a role from the allowed set, and takes no key or URL from
the token (any header field besides ``typ`` and ``alg`` is refused). The
node's tokens (``gateway.tokens``) use the same class with their own roles.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from certs import jws
from certs.keys import load_private_key
from member_registry.errors import TokenInvalid

__all__ = ["ALGORITHM", "REGISTRY_ROLES", "TYP", "BearerTokens", "TokenClaims", "registry_tokens"]

TYP = "at+jwt"
ALGORITHM = "ES256"
REGISTRY_ROLES = frozenset({"admin", "auditor"})
_REQUIRED = ("exp", "iat", "aud", "iss", "sub", "jti")
# The recipe's reasons in the fixed set TokenInvalid documents (a metric label).
_REASONS = {"type": "algorithm", "key": "algorithm", "payload": "malformed"}


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    role: str
    token_id: str
    expires_at: datetime


class BearerTokens:
    """Issues and verifies tokens for one audience with a fixed set of roles."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, audience: str, roles: Iterable[str]
    ) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the token key must be an ECDSA P-256 key")
        self._key = key
        self._public = key.public_key()
        self._audience = audience
        self.roles = frozenset(roles)
        if not self.roles:
            raise ValueError("at least one role is needed")

    @classmethod
    def from_key_file(cls, path: Path, *, audience: str, roles: Iterable[str]) -> BearerTokens:
        key = load_private_key(path)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: the token key must be an ECDSA P-256 key")
        return cls(key, audience, roles)

    @property
    def audience(self) -> str:
        return self._audience

    def issue(self, *, role: str, subject: str, now: datetime, ttl: timedelta) -> str:
        if role not in self.roles:
            raise ValueError(f"unknown role {role!r}; expected one of {sorted(self.roles)}")
        if ttl <= timedelta(0):
            raise ValueError("the token lifetime must be positive")
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
        return jws.sign(claims, self._key, typ=TYP)

    def verify(self, token: str, *, now: datetime) -> TokenClaims:
        """The token's claims; raises :class:`TokenInvalid` for anything not right."""
        try:
            # exp, nbf and iat are judged by the recipe against the caller's clock.
            claims = jws.verify(token, typ=TYP, trust=jws.PinnedKey(self._public), now=now).payload
        except jws.SignatureInvalid as exc:
            reason = _REASONS.get(exc.reason, exc.reason)
            raise TokenInvalid(f"the bearer token is not valid: {exc}", reason=reason) from exc
        missing = [name for name in _REQUIRED if name not in claims]
        if missing:
            raise TokenInvalid(f"the bearer token lacks {', '.join(missing)}", reason="claims")
        if claims["aud"] != self._audience or claims["iss"] != self._audience:
            raise TokenInvalid("the bearer token is for another audience or issuer",
                               reason="audience")
        exp = claims["exp"]
        role, subject, token_id = claims.get("role"), claims.get("sub"), claims.get("jti")
        if not isinstance(role, str) or role not in self.roles:
            raise TokenInvalid("the bearer token carries no known role", reason="role")
        if not isinstance(subject, str) or not isinstance(token_id, str):
            raise TokenInvalid("the bearer token's sub and jti must be strings", reason="claims")
        return TokenClaims(
            subject=subject,
            role=role,
            token_id=token_id,
            expires_at=datetime.fromtimestamp(exp, tz=now.tzinfo),
        )


def registry_tokens(key_path: Path, instance: str) -> BearerTokens:
    """The registry's tokens: audience ``registry:<instance>``, roles admin and auditor."""
    return BearerTokens.from_key_file(
        key_path, audience=registry_audience(instance), roles=REGISTRY_ROLES
    )


def registry_audience(instance: str) -> str:
    # Distinct from every node id (INSTANCE/CLASS/CODE/NODE), so a node's token never fits.
    return f"registry:{instance}"

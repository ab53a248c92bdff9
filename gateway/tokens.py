"""Management API bearer tokens of a node: JWTs checked as RFC 8725 asks.

The checks live in ``member_registry.tokens`` (shared with the registry's own
tokens); this module fixes the node's roles and audience (the node id) and
translates the registry's error into the node's ``management.unauthorized``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from certs.keys import load_private_key
from member_registry.errors import TokenInvalid
from member_registry.tokens import BearerTokens, TokenClaims

__all__ = ["ROLES", "TokenClaims", "TokenError", "TokenIssuer"]

ROLES = frozenset({"admin", "auditor", "consent"})


class TokenError(Exception):
    """The bearer token is missing, malformed, expired or not for this node."""

    code = "management.unauthorized"


class TokenIssuer:
    """Issues and verifies tokens for one node."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, audience: str) -> None:
        self._tokens = BearerTokens(key, audience, ROLES)

    @classmethod
    def from_key_file(cls, path: Path, *, audience: str) -> TokenIssuer:
        key = load_private_key(path)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: the token key must be an ECDSA P-256 key")
        return cls(key, audience)

    def issue(self, *, role: str, subject: str, now: datetime, ttl: timedelta) -> str:
        return self._tokens.issue(role=role, subject=subject, now=now, ttl=ttl)

    def verify(self, token: str, *, now: datetime) -> TokenClaims:
        try:
            return self._tokens.verify(token, now=now)
        except TokenInvalid as exc:
            raise TokenError(exc.message) from exc

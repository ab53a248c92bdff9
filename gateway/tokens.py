"""Bearer tokens of a node: JWTs checked as RFC 8725 asks.

The checks live in ``member_registry.tokens`` (shared with the registry's own
tokens); this module fixes the node's audiences and roles and translates the
registry's error into the node's ``management.unauthorized``.

Two kinds, both signed with the node's token key: management tokens
(audience: the node id; roles admin, auditor, consent) and client tokens
(audience ``client-port:`` plus the node id; role ``client``; subject: the
client subsystem), which information systems present on the client port. The
audiences differ, so neither kind is ever accepted in place of the other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from certs.keys import load_private_key
from member_registry.errors import TokenInvalid
from member_registry.tokens import BearerTokens, TokenClaims

__all__ = ["CLIENT_ROLE", "ROLES", "ClientTokens", "TokenClaims", "TokenError", "TokenIssuer"]

ROLES = frozenset({"admin", "auditor", "consent"})
CLIENT_ROLE = "client"


class TokenError(Exception):
    """The bearer token is missing, malformed, expired or not for this node."""

    code = "management.unauthorized"

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason  # one word, for the rejection log and metric


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
            raise TokenError(exc.message, reason=exc.reason) from exc


class ClientTokens:
    """Client-port tokens of one node: one subject (a client subsystem) per token."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, node_id: str) -> None:
        # Never a node id (INSTANCE/CLASS/CODE/NODE), so a management token never fits.
        self._tokens = BearerTokens(key, f"client-port:{node_id}", {CLIENT_ROLE})

    @classmethod
    def from_key_file(cls, path: Path, *, node_id: str) -> ClientTokens:
        key = load_private_key(path)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: the token key must be an ECDSA P-256 key")
        return cls(key, node_id)

    def issue(self, *, client: str, now: datetime, ttl: timedelta) -> tuple[str, TokenClaims]:
        """A token for ``client`` and its claims (the id is what the node records)."""
        token = self._tokens.issue(role=CLIENT_ROLE, subject=client, now=now, ttl=ttl)
        return token, self._tokens.verify(token, now=now)

    def verify(self, token: str, *, now: datetime) -> TokenClaims:
        try:
            return self._tokens.verify(token, now=now)
        except TokenInvalid as exc:
            raise TokenError(exc.message, reason=exc.reason) from exc

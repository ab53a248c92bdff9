"""Citizen links: a signed, expiring token naming exactly one data subject.

The consent desk issues one (``POST /api/citizen-links``); the citizen opens
``/console/citizen/enter?t=...`` and gets a session bound to that subject and
nothing else. The token is a JWT signed with the node's token key (checked by
``member_registry.tokens`` as RFC 8725 asks) under an audience no management
or client token carries, so neither kind is accepted in place of the other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from certs.keys import load_private_key
from member_registry.errors import TokenInvalid
from member_registry.tokens import BearerTokens, TokenClaims

__all__ = ["CITIZEN_ROLE", "MAX_LINK_TTL", "CitizenLinkInvalid", "CitizenLinks"]

CITIZEN_ROLE = "citizen"
MAX_LINK_TTL = timedelta(days=30)


class CitizenLinkInvalid(Exception):
    code = "console.link_invalid"


class CitizenLinks:
    def __init__(self, key: ec.EllipticCurvePrivateKey, node_id: str) -> None:
        self._tokens = BearerTokens(key, f"citizen:{node_id}", {CITIZEN_ROLE})

    @classmethod
    def from_key_file(cls, path: Path, *, node_id: str) -> CitizenLinks:
        key = load_private_key(path)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: the token key must be an ECDSA P-256 key")
        return cls(key, node_id)

    def issue(self, subject: str, *, now: datetime, ttl: timedelta) -> tuple[str, TokenClaims]:
        if not subject or len(subject) > 255:
            raise CitizenLinkInvalid("the subject must be 1-255 characters")
        if not timedelta(0) < ttl <= MAX_LINK_TTL:
            raise CitizenLinkInvalid(f"the link lifetime must be at most {MAX_LINK_TTL.days} days")
        token = self._tokens.issue(role=CITIZEN_ROLE, subject=subject, now=now, ttl=ttl)
        return token, self._tokens.verify(token, now=now)

    def verify(self, token: str, *, now: datetime) -> TokenClaims:
        try:
            return self._tokens.verify(token, now=now)
        except TokenInvalid as exc:
            raise CitizenLinkInvalid(exc.message) from exc

"""Who is calling the client port: proven, not claimed (X-Road's connection types).

Each client subsystem hosted on a node has a connection type, kept in the
node's database (``gateway/client_auth_store.py``):

``HTTP``
    plain HTTP or TLS; nothing is proven (X-Road's ``NOSSL``).
``HTTPS_NO_AUTH``
    TLS to the node's client TLS port; nothing is proven.
``HTTPS``
    TLS, and the caller proves it is the subsystem: with a TLS client
    certificate registered for it (X-Road's ``SSLAUTH``), or with a bearer
    token the node issued for it.
``TOKEN``
    a bearer token the node issued for the subsystem (or a registered
    certificate); plain HTTP is accepted only from the node's own host.

Whatever the type, a credential that was presented must be for the
subsystem the request names in ``X-Road-Client``: a certificate registered for
another subsystem, or a token issued for one, is refused, as is a bearer
token sent in clear from another host. Every refusal is
:class:`~gateway.errors.ClientAuthenticationFailed`.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from certs.identifiers import ClientId
from gateway.errors import ClientAuthenticationFailed
from gateway.settings import NodeSettings, SettingsError
from gateway.tokens import TokenClaims, TokenError

__all__ = [
    "TOKEN_HEADER",
    "CallerCredentials",
    "ClientAuthSnapshot",
    "ClientPortUnprotected",
    "ConnectionType",
    "Proof",
    "authenticate_client",
    "check_client_port_protected",
    "check_connection_type_allowed",
    "default_connection_type",
    "hosts_several_members",
    "is_loopback",
]

# The header that carries a client token; the node consumes it, it is never forwarded.
TOKEN_HEADER = "Renkei-Client-Token"  # noqa: S105 - a header name, not a secret

Proof = Literal["certificate", "token", "none"]


class ConnectionType(enum.StrEnum):
    HTTP = "HTTP"
    HTTPS_NO_AUTH = "HTTPS_NO_AUTH"
    HTTPS = "HTTPS"
    TOKEN = "TOKEN"  # noqa: S105 - a connection type, not a secret

    @property
    def requires_tls(self) -> bool:
        return self in (ConnectionType.HTTPS_NO_AUTH, ConnectionType.HTTPS)

    @property
    def requires_proof(self) -> bool:
        return self in (ConnectionType.HTTPS, ConnectionType.TOKEN)


@dataclass(frozen=True, slots=True)
class CallerCredentials:
    """What the connection and the request head prove about the caller."""

    tls: bool
    loopback: bool
    certificate_sha256: str | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class ClientAuthSnapshot:
    """The node's client authentication state, as of one database version."""

    version: int = 0
    connection_types: Mapping[str, ConnectionType] = field(default_factory=dict)
    # certificate SHA-256 -> the subsystems it is registered for
    certificates: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # PEM of every registered certificate: the client TLS port's trust store
    certificate_pems: tuple[str, ...] = ()
    # token id (jti) of every token issued and not revoked -> its subsystem
    tokens: Mapping[str, str] = field(default_factory=dict)

    def connection_type(self, client: ClientId, default: ConnectionType) -> ConnectionType:
        return self.connection_types.get(str(client), default)


TokenVerifier = Callable[[str], TokenClaims]


def _token_proves(
    client: ClientId, token: str, snapshot: ClientAuthSnapshot, verify: TokenVerifier
) -> None:
    try:
        claims = verify(token)
    except TokenError as exc:
        raise ClientAuthenticationFailed(f"the client token is not valid: {exc}") from exc
    if claims.subject != str(client):
        raise ClientAuthenticationFailed(
            f"the client token was issued for {claims.subject}, not for {client}"
        )
    if snapshot.tokens.get(claims.token_id) != str(client):
        raise ClientAuthenticationFailed("the client token was revoked or is unknown to this node")


def authenticate_client(
    client: ClientId,
    credentials: CallerCredentials,
    *,
    snapshot: ClientAuthSnapshot,
    default: ConnectionType,
    verify_token: TokenVerifier,
) -> Proof:
    """How the caller proved it is ``client``; raise ClientAuthenticationFailed otherwise."""
    kind = snapshot.connection_type(client, default)
    proof: Proof = "none"
    if credentials.token is not None:
        if not (credentials.tls or credentials.loopback):
            # A bearer token sent in clear over the network may have been read on the way.
            raise ClientAuthenticationFailed(
                "a client token is accepted only over TLS or from the node's own host"
            )
        _token_proves(client, credentials.token, snapshot, verify_token)
        proof = "token"
    if credentials.certificate_sha256 is not None:
        owners = snapshot.certificates.get(credentials.certificate_sha256, frozenset())
        if owners and str(client) not in owners:
            raise ClientAuthenticationFailed(
                f"the TLS client certificate is registered for another client, not for {client}"
            )
        if owners and proof == "none":
            proof = "certificate"
    if kind.requires_tls and not credentials.tls:
        raise ClientAuthenticationFailed(
            f"{client} must connect over HTTPS (connection type {kind}), not plain HTTP"
        )
    if kind.requires_proof and proof == "none":
        if credentials.certificate_sha256 is not None:
            raise ClientAuthenticationFailed(
                f"the TLS client certificate is not registered for {client}"
            )
        raise ClientAuthenticationFailed(
            f"{client} must prove who it is (connection type {kind}): a registered TLS client"
            f" certificate or a client token in {TOKEN_HEADER}"
        )
    return proof


# -- which nodes must authenticate ------------------------------------------------


class ClientPortUnprotected(SettingsError):
    """A node hosting several members would let them act as one another."""


def hosts_several_members(settings: NodeSettings) -> bool:
    return len({entry.member for entry in settings.sign_keys}) > 1


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_connection_type(settings: NodeSettings) -> ConnectionType:
    """The type of a subsystem with none of its own: plain HTTP only where nobody
    else can call (one member, loopback) or where the operator allowed it."""
    if settings.client_allow_unauthenticated:
        return ConnectionType.HTTP
    if not hosts_several_members(settings) and is_loopback(settings.client.host):
        return ConnectionType.HTTP
    return ConnectionType.HTTPS


def check_client_port_protected(settings: NodeSettings, snapshot: ClientAuthSnapshot) -> None:
    """Refuse to serve a node of several members whose client port proves nobody."""
    if settings.client_allow_unauthenticated or not hosts_several_members(settings):
        return
    unprotected = sorted(
        name for name, kind in snapshot.connection_types.items() if not kind.requires_proof
    )
    if unprotected:
        raise ClientPortUnprotected(
            "this node hosts several members, so its client port must authenticate callers;"
            f" {', '.join(unprotected)} accept(s) unauthenticated calls. Set their connection"
            " type to HTTPS or TOKEN, or set [client] allow_unauthenticated = true"
        )


def check_connection_type_allowed(settings: NodeSettings, kind: ConnectionType) -> None:
    """The same rule for a change made while the node runs."""
    if kind.requires_proof or settings.client_allow_unauthenticated:
        return
    if hosts_several_members(settings):
        raise ClientPortUnprotected(
            f"this node hosts several members: connection type {kind} needs"
            " [client] allow_unauthenticated = true in the node's settings"
        )

"""Self-signed certificates for the client port's TLS (X-Road's "internal TLS").

Outside the federation's PKI on purpose: an information system and its own
node trust each other by exchanging these certificates out of band, as X-Road
does. The node's certificate is a TLS server certificate its information
systems pin; an information system's certificate is a TLS client certificate
the node registers, by SHA-256 fingerprint, for a client subsystem.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.keys import PrivateKey, signature_hash

__all__ = ["TlsRole", "self_signed_tls_certificate"]

TlsRole = Literal["server", "client"]


def _alternative_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def self_signed_tls_certificate(
    key: PrivateKey,
    common_name: str,
    *,
    role: TlsRole,
    now: datetime,
    days: int = 825,
    hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost"),
) -> x509.Certificate:
    """A self-signed TLS certificate for ``role``; a server one names ``hosts``."""
    if days <= 0:
        raise ValueError("the certificate lifetime must be positive")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = ExtendedKeyUsageOID.SERVER_AUTH if role == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if role == "server":
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_alternative_name(host) for host in hosts]),
            critical=False,
        )
    return builder.sign(key, signature_hash(key))

"""The client TLS port's SSL context (X-Road's HTTPS connection types).

Server-authenticated with the node's internal TLS certificate; a client
certificate is optional, and only registered ones complete the handshake:
each is loaded as a trust anchor of its own (partial chains allowed, so a
certificate issued by an organisation's CA needs no chain). Which subsystem
a certificate proves is decided afterwards, by its fingerprint
(``gateway/client_auth.py``).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.client_auth import ClientAuthSnapshot

__all__ = ["client_tls_context", "trust_registered"]


def client_tls_context(
    certificate: Path, key: Path, snapshot: ClientAuthSnapshot
) -> ssl.SSLContext:
    """A context whose handshakes accept no client certificate or a registered one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_cert_chain(certfile=str(certificate), keyfile=str(key))
    trust_registered(context, snapshot)
    return context


def trust_registered(context: ssl.SSLContext, snapshot: ClientAuthSnapshot) -> None:
    """Add the snapshot's certificates to the trust store (new handshakes see them).

    OpenSSL cannot drop a certificate from a live store; a removed one still
    completes the handshake until the node restarts, and is then refused by
    the fingerprint check, with its code and audit row.
    """
    if snapshot.certificate_pems:
        context.load_verify_locations(cadata="".join(snapshot.certificate_pems))

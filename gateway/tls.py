"""TLS contexts for the peer link: mutual TLS 1.3 with auth certificates.

OpenSSL checks that the other side's certificate chains to a CA the global
configuration trusts; the node then checks that certificate's SHA-256
fingerprint against the one the configuration lists for that node, which is
the check that matters (hostnames are not used between nodes).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography import x509

from certs.keys import certificate_pem

__all__ = [
    "client_context",
    "on_handshake_failure",
    "peer_certificate_der",
    "server_context",
    "trust_bundle",
]


def trust_bundle(roots: Iterable[x509.Certificate]) -> str:
    return "".join(certificate_pem(root) for root in roots)


def _base(purpose: ssl.Purpose, cert: Path, key: Path, cadata: str) -> ssl.SSLContext:
    context = ssl.SSLContext(
        ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # Key exchange on P-256 only: inside Mozilla's "modern" curve set (make sslyze).
    context.set_ecdh_curve("prime256v1")
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    if cadata:
        context.load_verify_locations(cadata=cadata)
    return context


def server_context(cert: Path, key: Path, cadata: str) -> ssl.SSLContext:
    """The peer port's context: a client certificate is required."""
    return _base(ssl.Purpose.CLIENT_AUTH, cert, key, cadata)


def client_context(cert: Path, key: Path, cadata: str) -> ssl.SSLContext:
    """The context for connecting to other nodes' peer ports."""
    return _base(ssl.Purpose.SERVER_AUTH, cert, key, cadata)


def on_handshake_failure(context: ssl.SSLContext, report: Callable[[ssl.SSLError], None]) -> None:
    """Call ``report`` with the error of every handshake ``context`` fails.

    asyncio logs a failed server-side handshake only in debug mode; the
    context's ``sslobject_class`` (the documented hook for it) sees each one.
    """

    class _Reporting(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise  # not a failure: the handshake waits for more bytes
            except ssl.SSLError as exc:
                report(exc)
                raise

    context.sslobject_class = _Reporting


def peer_certificate_der(ssl_object: object) -> bytes | None:
    """The DER certificate the other side presented, if any."""
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return der if der else None

"""Self-signed certificates for the client port's TLS."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs.internal_tls import self_signed_tls_certificate
from certs.keys import generate_key

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_a_server_certificate_names_its_hosts_and_is_for_servers_only() -> None:
    cert = self_signed_tls_certificate(
        generate_key(), "node", role="server", now=NOW, hosts=("127.0.0.1", "node.example")
    )
    assert cert.issuer == cert.subject
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["node.example"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_a_client_certificate_is_for_clients_only() -> None:
    cert = self_signed_tls_certificate(generate_key("ed25519"), "his", role="client", now=NOW)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_a_lifetime_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lifetime"):
        self_signed_tls_certificate(generate_key(), "x", role="client", now=NOW, days=0)

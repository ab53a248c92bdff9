"""Constants and certificate-forging helpers shared by the certs tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from certs.identifiers import MemberId, NodeId
from certs.keys import PrivateKey, PublicKey, save_certificate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INSTANCE = "EE"
NODE = NodeId(INSTANCE, "GOV", "70000001", "node1")
MEMBER = MemberId(INSTANCE, "GOV", "70000001")

# The fixture types of conftest.py, for annotating test parameters.
KeyFactory = Callable[[str], PrivateKey]
Issuer = Callable[..., x509.Certificate]


def forge(
    *,
    issuer_key: PrivateKey,
    issuer_name: x509.Name,
    subject_name: x509.Name,
    public_key: PublicKey,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=30),
    hash_algorithm: hashes.SHA224 | hashes.SHA256 | None = None,
) -> x509.Certificate:
    """Build an arbitrary certificate, bypassing the CA's rules (for negative tests)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hash_algorithm or hashes.SHA256())


def name(common_name: str, organisation: str = INSTANCE) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def ca_extensions(
    public_key: PublicKey, path_length: int | None = 0
) -> list[tuple[x509.ExtensionType, bool]]:
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (usage, True),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
    ]


def openssl_verify(
    tmp_path: Path, ca_cert: x509.Certificate, cert: x509.Certificate, *options: str
) -> subprocess.CompletedProcess[str]:
    """Run the real ``openssl verify`` (at the certificate's own time) on ``cert``."""
    ca_file = tmp_path / "openssl-ca.pem"
    cert_file = tmp_path / "openssl-leaf.pem"
    save_certificate(ca_cert, ca_file)
    save_certificate(cert, cert_file)
    at_time = str(int((cert.not_valid_before_utc + timedelta(hours=1)).timestamp()))
    return subprocess.run(
        [
            "openssl",
            "verify",
            "-attime",
            at_time,
            "-CAfile",
            str(ca_file),
            *options,
            str(cert_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

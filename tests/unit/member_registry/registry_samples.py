"""Sample identifiers and certificates for the member registry's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certs.ca import CertificateAuthority
from certs.identifiers import GlobalGroupId, MemberId, NodeId, SubsystemId
from certs.keys import generate_key
from certs.profiles import make_csr
from member_registry.settings import RegistrySettings

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
HOSP_A = MemberId.parse("RENKEI/GOV/HOSP-A")
EHR = SubsystemId.parse("RENKEI/GOV/HOSP-A/EHR")
CITY = MemberId.parse("RENKEI/GOV/CITY")
PLANNING = SubsystemId.parse("RENKEI/GOV/CITY/PLANNING")
NODE1 = NodeId.parse("RENKEI/GOV/HOSP-A/node1")
TRANSIT = GlobalGroupId.parse("RENKEI/transit-partners")


def make_certificate(common_name: str, *, ca: bool = False) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )



def issue_auth_certificate(ca: CertificateAuthority, node: NodeId) -> x509.Certificate:
    """An auth certificate bound to ``node``, issued by the instance CA at ``NOW``."""
    return ca.issue(make_csr(generate_key(), node, "auth"), profile="auth", now=NOW)


def registry_settings(tmp_path: Path, token: str) -> RegistrySettings:
    """A registry's settings whose static admin token is ``token`` (in ``tmp_path``)."""
    token_file = tmp_path / "admin-token"
    token_file.write_text(token)
    return RegistrySettings(
        instance="RENKEI",
        database_url="unused",
        signing_key_path=tmp_path / "k",
        signing_cert_path=tmp_path / "c",
        admin_token_file=token_file,
    )

"""Profiles: identity binding (CN, O, SAN URI), CSRs, and the extensions of each profile."""

from __future__ import annotations

from typing import TypeVar

import pytest
from certs_helpers import INSTANCE, MEMBER, NODE, Issuer, KeyFactory, forge, name
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.ca import CertificateAuthority
from certs.errors import CsrError, IdentityMismatch
from certs.identifiers import MemberId, NodeId
from certs.keys import generate_key
from certs.profiles import (
    identity_name,
    identity_of,
    identity_uri,
    make_csr,
    member_id_of,
    node_id_of,
    profile_extensions,
)


def test_identity_uri_and_name() -> None:
    assert identity_uri(NODE) == "urn:renkei:node:EE/GOV/70000001/node1"
    assert identity_uri(MEMBER) == "urn:renkei:member:EE/GOV/70000001"
    assert identity_name(NODE).rfc4514_string() == "O=EE,CN=EE/GOV/70000001/node1"


def test_make_csr_binds_identity_and_is_self_signed() -> None:
    csr = make_csr(generate_key(), NODE, "auth")
    assert csr.is_signature_valid
    assert csr.subject == identity_name(NODE)
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [identity_uri(NODE)]
    assert not san.get_values_for_type(x509.DNSName)
    assert not san.get_values_for_type(x509.IPAddress)


@pytest.mark.parametrize(
    ("identity", "profile"),
    [(MEMBER, "auth"), (NODE, "sign"), (NODE.member.subsystem("s"), "auth")],
)
def test_make_csr_profile_must_fit_identity(identity: object, profile: str) -> None:
    with pytest.raises(CsrError, match="needs a"):
        make_csr(generate_key(), identity, profile)  # type: ignore[arg-type]


def test_make_csr_rejects_unsupported_key() -> None:
    with pytest.raises(CsrError, match="curve"):
        make_csr(ec.generate_private_key(ec.SECP384R1()), NODE, "auth")


def test_common_name_length_limit() -> None:
    long_node = NodeId(INSTANCE, "GOV", "x" * 60, "node")
    with pytest.raises(CsrError, match="64"):
        make_csr(generate_key(), long_node, "auth")


_E = TypeVar("_E", bound=x509.ExtensionType)
Extensions = list[tuple[x509.ExtensionType, bool]]


def _find(extensions: Extensions, kind: type[_E]) -> tuple[_E, bool]:
    for extension, critical in extensions:
        if isinstance(extension, kind):
            return extension, critical
    raise AssertionError(f"no {kind.__name__}")


def _has(extensions: Extensions, kind: type[x509.ExtensionType]) -> bool:
    return any(isinstance(extension, kind) for extension, _ in extensions)


def test_auth_extensions_exactly() -> None:
    extensions = profile_extensions("auth", NODE, generate_key().public_key())
    usage, critical = _find(extensions, x509.KeyUsage)
    assert critical
    assert usage.digital_signature
    assert not usage.key_encipherment
    assert not usage.content_commitment
    assert not usage.key_cert_sign
    eku, _ = _find(extensions, x509.ExtendedKeyUsage)
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    constraints, critical = _find(extensions, x509.BasicConstraints)
    assert critical
    assert not constraints.ca
    assert _has(extensions, x509.SubjectKeyIdentifier)
    san, _ = _find(extensions, x509.SubjectAlternativeName)
    assert list(san) == [x509.UniformResourceIdentifier(identity_uri(NODE))]


def test_auth_rsa_adds_key_encipherment(key_of: KeyFactory) -> None:
    extensions = profile_extensions("auth", NODE, key_of("rsa-2048").public_key())
    usage, _ = _find(extensions, x509.KeyUsage)
    assert usage.key_encipherment
    assert usage.digital_signature


def test_sign_extensions_exactly() -> None:
    extensions = profile_extensions("sign", MEMBER, generate_key().public_key())
    usage, critical = _find(extensions, x509.KeyUsage)
    assert critical
    assert usage.digital_signature
    assert usage.content_commitment
    assert not usage.key_encipherment
    assert not _has(extensions, x509.ExtendedKeyUsage)
    constraints, critical = _find(extensions, x509.BasicConstraints)
    assert critical
    assert not constraints.ca
    san, _ = _find(extensions, x509.SubjectAlternativeName)
    assert list(san) == [x509.UniformResourceIdentifier(identity_uri(MEMBER))]


def test_identity_of_issued_certificates(issue: Issuer) -> None:
    auth, sign = issue("auth"), issue("sign")
    assert node_id_of(auth) == NODE
    assert identity_of(auth, "auth") == NODE
    assert member_id_of(sign) == MEMBER
    assert identity_of(sign, "sign") == MEMBER


def test_identity_of_wrong_profile(issue: Issuer) -> None:
    with pytest.raises(IdentityMismatch, match="not a sign-profile identity"):
        member_id_of(issue("auth"))
    with pytest.raises(IdentityMismatch, match="not a auth-profile identity"):
        node_id_of(issue("sign"))


def _cert_with(
    ca: CertificateAuthority,
    subject: x509.Name,
    san: list[x509.GeneralName] | None,
) -> x509.Certificate:
    key = generate_key()
    extensions: list[tuple[x509.ExtensionType, bool]] = []
    if san is not None:
        extensions.append((x509.SubjectAlternativeName(san), False))
    return forge(
        issuer_key=ca.private_key,
        issuer_name=ca.certificate.subject,
        subject_name=subject,
        public_key=key.public_key(),
        extensions=extensions,
    )


URI = x509.UniformResourceIdentifier


@pytest.mark.parametrize(
    ("subject", "san", "message"),
    [
        (name(str(NODE)), None, "no SubjectAlternativeName"),
        (name(str(NODE)), [URI(identity_uri(NODE)), x509.DNSName("localhost")], "exactly one"),
        (name(str(NODE)), [URI(identity_uri(NODE)), URI(identity_uri(NODE))], "exactly one"),
        (name(str(NODE)), [x509.DNSName("node1")], "exactly one URI"),
        (name("EE/GOV/70000001/node2"), [URI(identity_uri(NODE))], "does not match SAN"),
        (name(str(NODE), "FI"), [URI(identity_uri(NODE))], "subject O"),
        (name(str(NODE)), [URI("urn:renkei:node:EE/GOV/70000001")], "4 parts"),
        (name(str(NODE)), [URI("urn:renkei:node:EE/GOV/7 1/node1")], "outside"),
        (name(str(NODE)), [URI("https://example.org/")], "not a auth-profile identity"),
        (
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(NODE))]),
            [URI(identity_uri(NODE))],
            "exactly CN",
        ),
        (
            x509.Name(
                [
                    *name(str(NODE)),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "extra"),
                ]
            ),
            [URI(identity_uri(NODE))],
            "exactly CN",
        ),
        (
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, str(NODE)),
                    x509.NameAttribute(NameOID.COMMON_NAME, str(NODE)),
                ]
            ),
            [URI(identity_uri(NODE))],
            "exactly CN",
        ),
    ],
)
def test_identity_mismatch(
    ca: CertificateAuthority,
    subject: x509.Name,
    san: list[x509.GeneralName] | None,
    message: str,
) -> None:
    cert = _cert_with(ca, subject, san)
    with pytest.raises(IdentityMismatch, match=message):
        node_id_of(cert)


def test_member_identity_mismatch(ca: CertificateAuthority) -> None:
    other = MemberId(INSTANCE, "GOV", "other")
    cert = _cert_with(ca, name(str(other)), [URI(identity_uri(MEMBER))])
    with pytest.raises(IdentityMismatch, match="does not match SAN"):
        member_id_of(cert)

"""Path validation (certs/validation.py): the happy paths and one negative test per check."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from certs_helpers import MEMBER, NODE, NOW, Issuer, ca_extensions, forge, name
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ObjectIdentifier

from certs.ca import CertificateAuthority
from certs.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    CertsError,
    IdentityMismatch,
    UntrustedCertificate,
    WrongKeyUsage,
)
from certs.keys import PrivateKey, generate_key
from certs.profiles import Profile, identity_name, identity_uri, profile_extensions
from certs.validation import MAX_PATH_LENGTH, check_identity, verify_certificate


def _verify(
    cert: x509.Certificate,
    ca: CertificateAuthority,
    profile: Profile = "auth",
    now: datetime = NOW,
    intermediates: list[x509.Certificate] | None = None,
) -> None:
    verify_certificate(
        cert,
        trust_roots=[ca.certificate],
        now=now,
        profile=profile,
        intermediates=intermediates or [],
    )


def test_valid_auth_and_sign(ca: CertificateAuthority, issue: Issuer) -> None:
    _verify(issue("auth"), ca, "auth")
    _verify(issue("sign"), ca, "sign")


def test_valid_at_the_window_edges(ca: CertificateAuthority, issue: Issuer) -> None:
    cert = issue("auth", validity_days=1)
    _verify(cert, ca, now=NOW)
    _verify(cert, ca, now=NOW + timedelta(days=1))


def test_expired(ca: CertificateAuthority, issue: Issuer) -> None:
    cert = issue("auth", validity_days=1)
    with pytest.raises(CertificateExpired, match="the certificate expired"):
        _verify(cert, ca, now=NOW + timedelta(days=1, seconds=1))


def test_not_yet_valid(ca: CertificateAuthority, issue: Issuer) -> None:
    cert = issue("auth", now=NOW + timedelta(days=1))
    with pytest.raises(CertificateNotYetValid, match="the certificate is not valid before"):
        _verify(cert, ca, now=NOW)


def test_expired_root(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca", instance="EE", now=NOW, validity_days=10)
    key = generate_key()
    # A leaf outliving its root cannot come from our CA (it clamps), so forge one.
    leaf = forge(
        issuer_key=ca.private_key,
        issuer_name=ca.certificate.subject,
        subject_name=identity_name(NODE),
        public_key=key.public_key(),
        extensions=profile_extensions("auth", NODE, key.public_key()),
        not_after=NOW + timedelta(days=30),
    )
    with pytest.raises(CertificateExpired, match="the trust root expired"):
        _verify(leaf, ca, now=NOW + timedelta(days=11))


def test_naive_now_is_refused(ca: CertificateAuthority, issue: Issuer) -> None:
    with pytest.raises(CertsError, match="timezone"):
        _verify(issue("auth"), ca, now=NOW.replace(tzinfo=None))


def test_empty_trust_store_fails_closed(issue: Issuer) -> None:
    with pytest.raises(UntrustedCertificate, match="no trust roots"):
        verify_certificate(issue("auth"), trust_roots=[], now=NOW, profile="auth")


def test_another_cas_root(tmp_path: Path, issue: Issuer) -> None:
    other = CertificateAuthority.create(tmp_path / "other", instance="EE", now=NOW)
    with pytest.raises(UntrustedCertificate, match="no trusted issuer"):
        _verify(issue("auth"), other)


def test_another_ca_with_the_same_name_and_the_right_one(
    tmp_path: Path,
    ca: CertificateAuthority,
    issue: Issuer,
) -> None:
    impostor = CertificateAuthority.create(tmp_path / "impostor", instance="EE", now=NOW)
    assert impostor.certificate.subject == ca.certificate.subject
    cert = issue("auth")
    with pytest.raises(UntrustedCertificate):
        verify_certificate(cert, trust_roots=[impostor.certificate], now=NOW, profile="auth")
    # Both present: the path is found through the key that really signed.
    verify_certificate(
        cert, trust_roots=[impostor.certificate, ca.certificate], now=NOW, profile="auth"
    )


def _tamper(cert: x509.Certificate, offset: int) -> x509.Certificate:
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[offset] ^= 0x01
    return x509.load_der_x509_certificate(bytes(der))


def test_tampered_signature(ca: CertificateAuthority, issue: Issuer) -> None:
    with pytest.raises(UntrustedCertificate):
        _verify(_tamper(issue("auth"), -5), ca)


def test_tampered_content(ca: CertificateAuthority, issue: Issuer) -> None:
    cert = issue("auth")
    der = cert.public_bytes(serialization.Encoding.DER)
    serial = cert.serial_number.to_bytes(20, "big").lstrip(b"\x00")
    tampered = _tamper(cert, der.index(serial) + 3)
    assert tampered.serial_number != cert.serial_number
    with pytest.raises(UntrustedCertificate):
        _verify(tampered, ca)


def test_sign_certificate_used_as_auth(ca: CertificateAuthority, issue: Issuer) -> None:
    with pytest.raises(WrongKeyUsage, match="serverAuth"):
        _verify(issue("sign"), ca, "auth")


def test_auth_certificate_used_as_sign(ca: CertificateAuthority, issue: Issuer) -> None:
    with pytest.raises(WrongKeyUsage, match="contentCommitment"):
        _verify(issue("auth"), ca, "sign")


def _leaf(
    ca: CertificateAuthority,
    extensions: list[tuple[x509.ExtensionType, bool]],
    *,
    issuer_key: PrivateKey | None = None,
    issuer_name: x509.Name | None = None,
    hash_algorithm: hashes.SHA224 | hashes.SHA256 | None = None,
) -> x509.Certificate:
    key = generate_key()
    return forge(
        issuer_key=issuer_key or ca.private_key,
        issuer_name=issuer_name or ca.certificate.subject,
        subject_name=identity_name(NODE),
        public_key=key.public_key(),
        extensions=extensions,
        hash_algorithm=hash_algorithm,
    )


def _usage(**flags: bool) -> x509.KeyUsage:
    names = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    ]
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})


def _without(
    extensions: list[tuple[x509.ExtensionType, bool]], kind: type[x509.ExtensionType]
) -> list[tuple[x509.ExtensionType, bool]]:
    return [(ext, critical) for ext, critical in extensions if not isinstance(ext, kind)]


def _auth_extensions() -> list[tuple[x509.ExtensionType, bool]]:
    return profile_extensions("auth", NODE, generate_key().public_key())


def test_missing_key_usage(ca: CertificateAuthority) -> None:
    cert = _leaf(ca, _without(_auth_extensions(), x509.KeyUsage))
    with pytest.raises(WrongKeyUsage, match="digitalSignature"):
        _verify(cert, ca, "auth")


def test_missing_extended_key_usage(ca: CertificateAuthority) -> None:
    cert = _leaf(ca, _without(_auth_extensions(), x509.ExtendedKeyUsage))
    with pytest.raises(WrongKeyUsage, match="serverAuth"):
        _verify(cert, ca, "auth")


def test_sign_certificate_with_tls_usage(ca: CertificateAuthority) -> None:
    extensions = profile_extensions("sign", MEMBER, generate_key().public_key())
    eku = x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH])
    cert = _leaf(ca, [*extensions, (eku, False)])
    with pytest.raises(WrongKeyUsage, match="TLS"):
        _verify(cert, ca, "sign")


def test_leaf_that_is_a_ca(ca: CertificateAuthority) -> None:
    extensions = [
        *_without(_auth_extensions(), x509.BasicConstraints),
        (x509.BasicConstraints(ca=True, path_length=None), True),
    ]
    with pytest.raises(WrongKeyUsage, match="CA certificate"):
        _verify(_leaf(ca, extensions), ca, "auth")


def test_leaf_with_key_cert_sign(ca: CertificateAuthority) -> None:
    extensions = [
        *_without(_auth_extensions(), x509.KeyUsage),
        (_usage(digital_signature=True, key_cert_sign=True), True),
    ]
    with pytest.raises(WrongKeyUsage, match="CA certificate"):
        _verify(_leaf(ca, extensions), ca, "auth")


def test_root_itself_is_not_a_leaf(ca: CertificateAuthority) -> None:
    with pytest.raises(WrongKeyUsage):
        _verify(ca.certificate, ca, "auth")


def test_unknown_critical_extension(ca: CertificateAuthority) -> None:
    unknown = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    cert = _leaf(ca, [*_auth_extensions(), (unknown, True)])
    with pytest.raises(UntrustedCertificate, match="critical extension"):
        _verify(cert, ca, "auth")
    # The same extension, non-critical, is ignored as RFC 5280 allows.
    _verify(_leaf(ca, [*_auth_extensions(), (unknown, False)]), ca, "auth")


def test_weak_signature_hash(ca: CertificateAuthority) -> None:
    cert = _leaf(ca, _auth_extensions(), hash_algorithm=hashes.SHA224())
    with pytest.raises(UntrustedCertificate, match="too weak"):
        _verify(cert, ca, "auth")


def test_issuer_that_is_not_a_ca(ca: CertificateAuthority, issue: Issuer) -> None:
    # A node's auth key signs a "certificate" naming its own certificate as issuer.
    node_key = generate_key()
    node_cert = issue("auth", key=node_key)
    forged = _leaf(ca, _auth_extensions(), issuer_key=node_key, issuer_name=node_cert.subject)
    with pytest.raises(UntrustedCertificate, match="not a CA"):
        _verify(forged, ca, "auth", intermediates=[node_cert])


def _intermediate(
    root_key: PrivateKey,
    root_name: x509.Name,
    common_name: str,
    *,
    path_length: int | None = 0,
    usage: x509.KeyUsage | None = None,
    not_after: datetime = NOW + timedelta(days=30),
) -> tuple[x509.Certificate, PrivateKey]:
    key = generate_key()
    extensions = ca_extensions(key.public_key(), path_length)
    if usage is not None:
        extensions = [*_without(extensions, x509.KeyUsage), (usage, True)]
    cert = forge(
        issuer_key=root_key,
        issuer_name=root_name,
        subject_name=name(common_name),
        public_key=key.public_key(),
        extensions=extensions,
        not_after=not_after,
    )
    return cert, key


def _own_root(path_length: int | None) -> tuple[x509.Certificate, PrivateKey]:
    key = generate_key()
    root = forge(
        issuer_key=key,
        issuer_name=name("Test Root"),
        subject_name=name("Test Root"),
        public_key=key.public_key(),
        extensions=ca_extensions(key.public_key(), path_length),
        not_after=NOW + timedelta(days=365),
    )
    return root, key


def test_path_through_an_intermediate() -> None:
    root, root_key = _own_root(path_length=1)
    intermediate, intermediate_key = _intermediate(root_key, root.subject, "Issuing CA")
    key = generate_key()
    leaf = forge(
        issuer_key=intermediate_key,
        issuer_name=intermediate.subject,
        subject_name=identity_name(NODE),
        public_key=key.public_key(),
        extensions=profile_extensions("auth", NODE, key.public_key()),
    )
    verify_certificate(
        leaf, trust_roots=[root], now=NOW, profile="auth", intermediates=[intermediate]
    )
    with pytest.raises(UntrustedCertificate, match="no trusted issuer"):
        verify_certificate(leaf, trust_roots=[root], now=NOW, profile="auth")


def test_expired_intermediate() -> None:
    root, root_key = _own_root(path_length=1)
    intermediate, intermediate_key = _intermediate(
        root_key, root.subject, "Issuing CA", not_after=NOW + timedelta(days=1)
    )
    key = generate_key()
    leaf = forge(
        issuer_key=intermediate_key,
        issuer_name=intermediate.subject,
        subject_name=identity_name(NODE),
        public_key=key.public_key(),
        extensions=profile_extensions("auth", NODE, key.public_key()),
    )
    with pytest.raises(CertificateExpired, match="intermediate CA"):
        verify_certificate(
            leaf,
            trust_roots=[root],
            now=NOW + timedelta(days=2),
            profile="auth",
            intermediates=[intermediate],
        )


def test_intermediate_without_key_cert_sign() -> None:
    root, root_key = _own_root(path_length=1)
    intermediate, intermediate_key = _intermediate(
        root_key, root.subject, "Issuing CA", usage=_usage(crl_sign=True)
    )
    key = generate_key()
    leaf = forge(
        issuer_key=intermediate_key,
        issuer_name=intermediate.subject,
        subject_name=identity_name(NODE),
        public_key=key.public_key(),
        extensions=profile_extensions("auth", NODE, key.public_key()),
    )
    with pytest.raises(UntrustedCertificate, match="keyCertSign"):
        verify_certificate(
            leaf, trust_roots=[root], now=NOW, profile="auth", intermediates=[intermediate]
        )


def test_path_length_constraint_of_our_root(ca: CertificateAuthority) -> None:
    # Our CA has pathlen 0: an intermediate under it must not be accepted.
    intermediate, intermediate_key = _intermediate(
        ca.private_key, ca.certificate.subject, "Rogue Sub CA"
    )
    leaf = _leaf(
        ca,
        _auth_extensions(),
        issuer_key=intermediate_key,
        issuer_name=intermediate.subject,
    )
    with pytest.raises(UntrustedCertificate, match="allows 0 intermediate"):
        _verify(leaf, ca, "auth", intermediates=[intermediate])


def test_path_length_bound_against_loops() -> None:
    # Two CAs that cross-sign each other and an unconstrained chain never reach a root.
    key_a, key_b = generate_key(), generate_key()
    name_a, name_b = name("Loop A"), name("Loop B")
    a = forge(
        issuer_key=key_b,
        issuer_name=name_b,
        subject_name=name_a,
        public_key=key_a.public_key(),
        extensions=ca_extensions(key_a.public_key(), None),
    )
    b = forge(
        issuer_key=key_a,
        issuer_name=name_a,
        subject_name=name_b,
        public_key=key_b.public_key(),
        extensions=ca_extensions(key_b.public_key(), None),
    )
    root, _ = _own_root(path_length=None)
    key = generate_key()
    leaf = forge(
        issuer_key=key_a,
        issuer_name=name_a,
        subject_name=identity_name(NODE),
        public_key=key.public_key(),
        extensions=profile_extensions("auth", NODE, key.public_key()),
    )
    with pytest.raises(UntrustedCertificate, match=f"within {MAX_PATH_LENGTH}"):
        verify_certificate(leaf, trust_roots=[root], now=NOW, profile="auth", intermediates=[a, b])


def test_check_identity(issue: Issuer) -> None:
    cert = issue("auth")
    check_identity(cert, "auth", NODE)
    with pytest.raises(IdentityMismatch, match="expected"):
        check_identity(cert, "auth", NODE.member.node("node2"))


def test_san_uri_is_what_binds(ca: CertificateAuthority) -> None:
    # verify_certificate checks the path; the identity check is separate and catches this.
    key = generate_key()
    extensions = [
        *_without(profile_extensions("auth", NODE, key.public_key()), x509.SubjectAlternativeName),
        (
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(identity_uri(NODE.member.node("other")))]
            ),
            False,
        ),
    ]
    cert = _leaf(ca, extensions)
    _verify(cert, ca, "auth")
    with pytest.raises(IdentityMismatch):
        check_identity(cert, "auth", NODE)

"""The CA: files it writes, what it issues for each profile and key type, what it refuses."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from certs_helpers import INSTANCE, MEMBER, NODE, NOW, Issuer, KeyFactory, openssl_verify
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.ca import CertificateAuthority
from certs.errors import CaError, CaExists, CertsError, CsrError
from certs.identifiers import MemberId, NodeId
from certs.keys import fingerprint, generate_key, save_private_key
from certs.profiles import identity_name, identity_uri, make_csr
from certs.validation import verify_certificate


def test_create_writes_the_ca_directory(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    ca = CertificateAuthority.create(directory, instance=INSTANCE, now=NOW)
    assert sorted(p.name for p in directory.iterdir()) == [
        "ca.key",
        "ca.pem",
        "index.json",
        "issued",
    ]
    assert stat.S_IMODE((directory / "ca.key").stat().st_mode) == 0o600
    assert json.loads((directory / "index.json").read_text()) == {
        "version": 1,
        "instance": INSTANCE,
        "certificates": [],
    }
    assert ca.instance == INSTANCE
    assert ca.issued() == []


def test_root_certificate_profile(ca: CertificateAuthority) -> None:
    root = ca.certificate
    assert root.subject == root.issuer
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "EE Renkei CA"
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "EE"
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert root.not_valid_before_utc == NOW
    assert root.not_valid_after_utc == NOW + timedelta(days=3650)
    root.verify_directly_issued_by(root)


def test_create_refuses_to_overwrite(tmp_path: Path, ca: CertificateAuthority) -> None:
    before = (ca.directory / "ca.key").read_bytes()
    with pytest.raises(CaExists, match="refusing to overwrite"):
        CertificateAuthority.create(ca.directory, instance=INSTANCE, now=NOW)
    assert (ca.directory / "ca.key").read_bytes() == before


@pytest.mark.parametrize("instance", ["", "EE/GOV", "E E", "x" * 60])
def test_create_rejects_bad_instances(tmp_path: Path, instance: str) -> None:
    with pytest.raises(CaError):
        CertificateAuthority.create(tmp_path / "ca", instance=instance, now=NOW)
    assert not (tmp_path / "ca" / "ca.key").exists()


def test_create_rejects_naive_time_and_bad_validity(tmp_path: Path) -> None:
    with pytest.raises(CertsError, match="timezone"):
        CertificateAuthority.create(tmp_path / "a", instance=INSTANCE, now=NOW.replace(tzinfo=None))
    with pytest.raises(CertsError, match="at least one day"):
        CertificateAuthority.create(tmp_path / "b", instance=INSTANCE, now=NOW, validity_days=0)


def test_load_round_trip(ca: CertificateAuthority, issue: Issuer) -> None:
    issue("auth")
    loaded = CertificateAuthority.load(ca.directory)
    assert loaded.certificate == ca.certificate
    assert loaded.instance == INSTANCE
    assert loaded.issued() == ca.issued()


def test_load_missing(tmp_path: Path) -> None:
    with pytest.raises(CaError, match="no CA"):
        CertificateAuthority.load(tmp_path)


def test_load_rejects_a_foreign_key(ca: CertificateAuthority) -> None:
    save_private_key(generate_key(), ca.directory / "ca.key", overwrite=True)
    with pytest.raises(CaError, match="does not match"):
        CertificateAuthority.load(ca.directory)


def test_load_rejects_a_broken_certificate(ca: CertificateAuthority) -> None:
    (ca.directory / "ca.pem").write_text("garbage")
    with pytest.raises(CaError, match="broken CA"):
        CertificateAuthority.load(ca.directory)


@pytest.mark.parametrize("ca_algorithm", ["ec-p256", "ed25519", "rsa-2048"])
@pytest.mark.parametrize("subject_algorithm", ["ec-p256", "ed25519", "rsa-2048"])
@pytest.mark.parametrize("profile", ["auth", "sign"])
def test_issue_every_profile_and_algorithm_and_openssl_agrees(
    tmp_path: Path,
    key_of: KeyFactory,
    ca_algorithm: str,
    subject_algorithm: str,
    profile: str,
) -> None:
    ca = CertificateAuthority.create(
        tmp_path / "ca",
        instance=INSTANCE,
        now=NOW,
        algorithm=ca_algorithm,  # type: ignore[arg-type]
    )
    identity = NODE if profile == "auth" else MEMBER
    csr = make_csr(key_of(subject_algorithm), identity, profile)  # type: ignore[arg-type]
    cert = ca.issue(csr, profile=profile, now=NOW)  # type: ignore[arg-type]

    assert cert.subject == identity_name(identity)
    assert cert.issuer == ca.certificate.subject
    assert cert.not_valid_before_utc == NOW
    assert cert.not_valid_after_utc == NOW + timedelta(days=365)
    assert 0 < cert.serial_number < 2**159
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    verify_certificate(cert, trust_roots=[ca.certificate], now=NOW, profile=profile)  # type: ignore[arg-type]

    result = openssl_verify(tmp_path, ca.certificate, cert)
    assert result.returncode == 0, result.stdout + result.stderr
    if profile == "auth":
        for purpose in ("sslclient", "sslserver"):
            result = openssl_verify(tmp_path, ca.certificate, cert, "-purpose", purpose)
            assert result.returncode == 0, result.stdout + result.stderr


def test_openssl_rejects_a_certificate_from_another_ca(
    tmp_path: Path,
    issue: Issuer,
) -> None:
    other = CertificateAuthority.create(tmp_path / "other", instance=INSTANCE, now=NOW)
    result = openssl_verify(tmp_path, other.certificate, issue("auth"))
    assert result.returncode != 0


def test_issue_records_the_certificate(ca: CertificateAuthority, issue: Issuer) -> None:
    auth, sign = issue("auth"), issue("sign")
    records = ca.issued()
    assert [r.profile for r in records] == ["auth", "sign"]
    first = records[0]
    assert first.serial == auth.serial_number
    assert first.identity == str(NODE)
    assert first.subject == auth.subject.rfc4514_string()
    assert first.not_before == NOW
    assert first.not_after == NOW + timedelta(days=365)
    assert first.status == "valid"
    assert first.fingerprint == fingerprint(auth)
    assert records[1].identity == str(MEMBER)
    for record, cert in zip(records, (auth, sign), strict=True):
        path = ca.directory / "issued" / f"{record.serial_hex}.pem"
        assert x509.load_pem_x509_certificate(path.read_bytes()) == cert
    entry = json.loads((ca.directory / "index.json").read_text())["certificates"][0]
    assert set(entry) == {
        "serial",
        "subject",
        "identity",
        "profile",
        "not_before",
        "not_after",
        "status",
        "fingerprint",
    }
    assert len(entry["serial"]) == 40


def test_serials_are_unique(issue: Issuer) -> None:
    serials = {issue("sign").serial_number for _ in range(5)}
    assert len(serials) == 5


def test_issue_never_copies_csr_extensions(ca: CertificateAuthority) -> None:
    key = generate_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(identity_name(MEMBER))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity_uri(MEMBER))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert = ca.issue(csr, profile="sign", now=NOW)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_validity_is_clamped_to_the_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca", instance=INSTANCE, now=NOW, validity_days=30)
    cert = ca.issue(make_csr(generate_key(), NODE, "auth"), profile="auth", now=NOW)
    assert cert.not_valid_after_utc == ca.certificate.not_valid_after_utc


def test_issue_refuses_outside_the_ca_validity(ca: CertificateAuthority) -> None:
    csr = make_csr(generate_key(), NODE, "auth")
    with pytest.raises(CaError, match="not valid at"):
        ca.issue(csr, profile="auth", now=NOW - timedelta(seconds=1))
    with pytest.raises(CaError, match="not valid at"):
        ca.issue(csr, profile="auth", now=NOW + timedelta(days=3651))
    assert ca.issued() == []


def test_issue_refuses_bad_parameters(ca: CertificateAuthority) -> None:
    csr = make_csr(generate_key(), NODE, "auth")
    with pytest.raises(CertsError, match="at least one day"):
        ca.issue(csr, profile="auth", now=NOW, validity_days=0)
    with pytest.raises(CertsError, match="timezone"):
        ca.issue(csr, profile="auth", now=NOW.replace(tzinfo=None))


def _tamper_signature(csr: x509.CertificateSigningRequest) -> x509.CertificateSigningRequest:
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature value
    return x509.load_der_x509_csr(bytes(der))


@pytest.mark.parametrize("algorithm", ["ec-p256", "ed25519", "rsa-2048"])
def test_issue_rejects_a_csr_with_a_bad_signature(
    ca: CertificateAuthority,
    key_of: KeyFactory,
    algorithm: str,
) -> None:
    csr = _tamper_signature(make_csr(key_of(algorithm), NODE, "auth"))
    with pytest.raises(CsrError, match="no proof of key possession"):
        ca.issue(csr, profile="auth", now=NOW)
    assert ca.issued() == []


def test_issue_rejects_another_instance(ca: CertificateAuthority) -> None:
    csr = make_csr(generate_key(), NodeId("FI", "GOV", "123", "node"), "auth")
    with pytest.raises(CsrError, match="instance 'FI'"):
        ca.issue(csr, profile="auth", now=NOW)


@pytest.mark.parametrize(
    ("identity", "profile"),
    [(NODE, "sign"), (MEMBER, "auth")],
)
def test_issue_rejects_profile_identity_mismatch(
    ca: CertificateAuthority, identity: NodeId | MemberId, profile: str
) -> None:
    csr = make_csr(generate_key(), identity, "auth" if profile == "sign" else "sign")
    with pytest.raises(CsrError, match="does not fit"):
        ca.issue(csr, profile=profile, now=NOW)  # type: ignore[arg-type]


def test_issue_rejects_csr_with_mismatched_cn(ca: CertificateAuthority) -> None:
    key = generate_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(identity_name(NodeId(INSTANCE, "GOV", "70000001", "other")))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity_uri(NODE))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CsrError, match="CN"):
        ca.issue(csr, profile="auth", now=NOW)


def test_issue_rejects_csr_with_unsupported_key(ca: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(identity_name(NODE))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CsrError, match="not accepted"):
        ca.issue(csr, profile="auth", now=NOW)


def test_issued_reports_a_corrupt_index(ca: CertificateAuthority) -> None:
    (ca.directory / "index.json").write_text("{not json")
    with pytest.raises(CaError, match=r"index\.json"):
        ca.issued()

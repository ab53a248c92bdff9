"""Keys and PEM files: supported algorithms only, 0600 atomic writes, translated errors."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from certs_helpers import Issuer, KeyFactory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from certs.ca import CertificateAuthority
from certs.errors import CertificateError, CsrError, KeyFileError
from certs.keys import (
    KEY_ALGORITHMS,
    PrivateKey,
    certificate_pem,
    check_supported_key,
    fingerprint,
    generate_key,
    load_certificate,
    load_certificates,
    load_csr,
    load_private_key,
    parse_certificate_pem,
    save_certificate,
    save_private_key,
    signature_hash,
)


def _pkcs8(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [
        ("ec-p256", ec.EllipticCurvePrivateKey),
        ("ed25519", ed25519.Ed25519PrivateKey),
        ("rsa-2048", rsa.RSAPrivateKey),
    ],
)
def test_save_and_load_round_trip(tmp_path: Path, algorithm: str, kind: type) -> None:
    key = generate_key(algorithm)  # type: ignore[arg-type]
    path = tmp_path / "node.key"
    save_private_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    loaded = load_private_key(path)
    assert isinstance(loaded, kind)
    assert _pkcs8(loaded) == _pkcs8(key)
    assert [p.name for p in tmp_path.iterdir()] == ["node.key"]  # no temporary left behind


def test_algorithms_list_matches_the_literal() -> None:
    assert KEY_ALGORITHMS == ("ec-p256", "ed25519", "rsa-2048", "rsa-3072")


def test_rsa_3072(key_of: KeyFactory) -> None:
    key = key_of("rsa-3072")
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 3072


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(KeyFileError):
        generate_key("dsa-1024")  # type: ignore[arg-type]


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    first, second = generate_key(), generate_key()
    save_private_key(first, path)
    with pytest.raises(KeyFileError, match="already exists"):
        save_private_key(second, path)
    assert _pkcs8(load_private_key(path)) == _pkcs8(first)
    save_private_key(second, path, overwrite=True)
    assert _pkcs8(load_private_key(path)) == _pkcs8(second)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_into_missing_directory_is_a_key_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot write"):
        save_private_key(generate_key(), tmp_path / "missing" / "node.key")


def _write_pem(path: Path, key: object, password: bytes | None = None) -> Path:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
    )
    return path


@pytest.mark.parametrize(
    ("make_key", "message"),
    [
        (lambda: ec.generate_private_key(ec.SECP384R1()), "curve"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "curve"),
        (lambda: rsa.generate_private_key(65537, 1024), "RSA key size"),
        (lambda: rsa.generate_private_key(3, 2048), "exponent"),
        (ed448.Ed448PrivateKey.generate, "unsupported key type"),
    ],
)
def test_load_rejects_unsupported_keys(tmp_path: Path, make_key, message: str) -> None:  # type: ignore[no-untyped-def]
    path = _write_pem(tmp_path / "bad.key", make_key())
    with pytest.raises(KeyFileError, match=message):
        load_private_key(path)


def test_load_rejects_encrypted_keys(tmp_path: Path) -> None:
    path = _write_pem(tmp_path / "enc.key", generate_key(), password=b"secret")
    with pytest.raises(KeyFileError, match="unencrypted"):
        load_private_key(path)


@pytest.mark.parametrize("content", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_load_rejects_garbage(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError):
        load_private_key(path)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        load_private_key(tmp_path / "missing.key")


def test_check_supported_key_accepts_public_keys() -> None:
    check_supported_key(generate_key().public_key())
    with pytest.raises(KeyFileError):
        check_supported_key(ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(KeyFileError):
        check_supported_key("not a key")


def test_signature_hash() -> None:
    assert signature_hash(generate_key("ed25519")) is None
    assert signature_hash(generate_key("ec-p256")).name == "sha256"  # type: ignore[union-attr]


def test_certificate_files(tmp_path: Path, ca: CertificateAuthority, issue: Issuer) -> None:
    leaf = issue("auth")
    path = tmp_path / "leaf.pem"
    save_certificate(leaf, path)
    assert load_certificate(path) == leaf
    assert parse_certificate_pem(certificate_pem(leaf)) == leaf

    bundle = tmp_path / "bundle.pem"
    bundle.write_text(certificate_pem(leaf) + certificate_pem(ca.certificate))
    assert load_certificates(bundle) == [leaf, ca.certificate]
    with pytest.raises(CertificateError, match="2 certificates"):
        load_certificate(bundle)
    with pytest.raises(CertificateError, match="got 2"):
        parse_certificate_pem(bundle.read_text())


def test_fingerprint_is_sha256_of_der(issue: Issuer) -> None:
    leaf = issue("sign")
    expected = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert fingerprint(leaf) == expected
    assert fingerprint(leaf) == fingerprint(leaf).lower()


@pytest.mark.parametrize("text", ["", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n", "é"])
def test_certificate_parse_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(CertificateError):
        parse_certificate_pem(text)
    path = tmp_path / "bad.pem"
    path.write_text(text)
    with pytest.raises(CertificateError):
        load_certificates(path)
    with pytest.raises(CertificateError, match="cannot read"):
        load_certificate(tmp_path / "missing.pem")


def test_csr_parse_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.csr"
    path.write_text("garbage")
    with pytest.raises(CsrError):
        load_csr(path)
    with pytest.raises(CsrError, match="cannot read"):
        load_csr(tmp_path / "missing.csr")

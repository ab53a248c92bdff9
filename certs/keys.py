"""Key pairs and PEM files: generating, saving, loading, fingerprinting.

Only the key types the federation accepts are ever loaded (DESIGN §3): ECDSA
P-256 (the default), Ed25519, and RSA of 2048 to 4096 bits. Anything else is
refused with :class:`~certs.errors.KeyFileError` rather than used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from certs._files import write_atomic
from certs.errors import CertificateError, CsrError, KeyFileError

__all__ = [
    "KEY_ALGORITHMS",
    "KeyAlgorithm",
    "PrivateKey",
    "PublicKey",
    "certificate_pem",
    "check_supported_key",
    "csr_pem",
    "fingerprint",
    "generate_key",
    "load_certificate",
    "load_certificates",
    "load_csr",
    "load_private_key",
    "parse_certificate_pem",
    "private_key_pem",
    "save_certificate",
    "save_csr",
    "save_private_key",
    "signature_hash",
]

KeyAlgorithm = Literal["ec-p256", "ed25519", "rsa-2048", "rsa-3072"]
KEY_ALGORITHMS: tuple[KeyAlgorithm, ...] = get_args(KeyAlgorithm)

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

_RSA_SIZES = range(2048, 4097)
_RSA_EXPONENT = 65537
_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644


def generate_key(algorithm: KeyAlgorithm = "ec-p256") -> PrivateKey:
    """A fresh private key of the given algorithm."""
    if algorithm == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "rsa-2048":
        return rsa.generate_private_key(public_exponent=_RSA_EXPONENT, key_size=2048)
    if algorithm == "rsa-3072":
        return rsa.generate_private_key(public_exponent=_RSA_EXPONENT, key_size=3072)
    raise KeyFileError(f"unsupported key algorithm {algorithm!r}")


def check_supported_key(key: object) -> None:
    """Raise :class:`KeyFileError` unless ``key`` (private or public) is of an accepted type."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFileError(f"unsupported elliptic curve {key.curve.name}; only P-256")
        return
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size not in _RSA_SIZES:
            raise KeyFileError(f"unsupported RSA key size {key.key_size}; 2048 to 4096 bits")
        public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
        if public.public_numbers().e != _RSA_EXPONENT:
            raise KeyFileError("unsupported RSA public exponent; only 65537")
        return
    raise KeyFileError(f"unsupported key type {type(key).__name__}")


def signature_hash(key: PrivateKey) -> hashes.SHA256 | None:
    """The hash to sign certificates and CSRs with: SHA-256, or none for Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    return hashes.SHA256()


def private_key_pem(key: PrivateKey) -> bytes:
    """PEM PKCS#8, unencrypted (file permissions protect it)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def save_private_key(key: PrivateKey, path: Path, *, overwrite: bool = False) -> None:
    """Write ``key`` atomically to ``path`` with mode 0600.

    An existing file is kept (``KeyFileError``) unless ``overwrite`` is set:
    silently replacing a key would orphan every certificate issued for it.
    """
    check_supported_key(key)
    try:
        write_atomic(path, private_key_pem(key), mode=_PRIVATE_MODE, overwrite=overwrite)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot write key {path}: {exc.strerror or exc}") from exc


def load_private_key(path: Path) -> PrivateKey:
    """Read an unencrypted PEM private key of a supported type."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key {path}: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    ):
        raise KeyFileError(f"{path}: unsupported key type {type(key).__name__}")
    try:
        check_supported_key(key)
    except KeyFileError as exc:
        raise KeyFileError(f"{path}: {exc}") from exc
    return key


def fingerprint(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate's DER encoding (how peers pin certificates)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def parse_certificate_pem(text: str) -> x509.Certificate:
    """Parse exactly one PEM certificate; a bundle is refused rather than truncated."""
    try:
        certificates = x509.load_pem_x509_certificates(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CertificateError("not a PEM certificate") from exc
    if len(certificates) != 1:
        raise CertificateError(f"expected one PEM certificate, got {len(certificates)}")
    return certificates[0]


def save_certificate(cert: x509.Certificate, path: Path) -> None:
    """Write ``cert`` as PEM atomically, replacing any previous file."""
    try:
        write_atomic(path, certificate_pem(cert).encode("ascii"), mode=_PUBLIC_MODE, overwrite=True)
    except OSError as exc:
        raise CertificateError(f"cannot write certificate {path}: {exc.strerror or exc}") from exc


def load_certificate(path: Path) -> x509.Certificate:
    """Read a file holding exactly one PEM certificate."""
    certificates = load_certificates(path)
    if len(certificates) != 1:
        raise CertificateError(f"{path} holds {len(certificates)} certificates, expected one")
    return certificates[0]


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Read a PEM bundle of one or more certificates, in file order."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read certificate {path}: {exc.strerror or exc}") from exc
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(f"{path} is not a PEM certificate bundle") from exc


def csr_pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def save_csr(csr: x509.CertificateSigningRequest, path: Path) -> None:
    try:
        write_atomic(path, csr_pem(csr).encode("ascii"), mode=_PUBLIC_MODE, overwrite=True)
    except OSError as exc:
        raise CsrError(f"cannot write CSR {path}: {exc.strerror or exc}") from exc


def load_csr(path: Path) -> x509.CertificateSigningRequest:
    """Read a PEM CSR. Its signature is *not* checked here; the CA does that."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CsrError(f"cannot read CSR {path}: {exc.strerror or exc}") from exc
    try:
        return x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise CsrError(f"{path} is not a PEM certificate signing request") from exc

"""The instance certificate authority: a self-signed root that issues auth and sign certificates.

A CA lives in one directory::

    ca.key        the CA private key (PEM PKCS#8, mode 0600)
    ca.pem        the self-signed root certificate
    index.json    one entry per issued certificate (see :class:`IssuedRecord`)
    issued/       every issued certificate as <serial-hex>.pem
    .lock         taken while issuing, so concurrent issuers do not lose index entries

Phase 2 will add revocation (status in the index, a CRL) and the OCSP and TSA
signer certificates; the index already has a ``status`` for that.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self, cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from certs._files import write_atomic
from certs._time import days, require_aware
from certs.errors import CaError, CaExists, CertsError, CsrError, IdentityMismatch, KeyFileError
from certs.identifiers import IdentifierError, MemberId, NodeId, check_instance
from certs.keys import (
    KeyAlgorithm,
    PrivateKey,
    PublicKey,
    certificate_pem,
    check_supported_key,
    fingerprint,
    generate_key,
    load_certificate,
    load_private_key,
    private_key_pem,
    signature_hash,
)
from certs.profiles import PROFILES, Profile, bound_identity, identity_name, profile_extensions

__all__ = ["CertificateAuthority", "IssuedRecord"]

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.pem"
INDEX_FILE = "index.json"
ISSUED_DIR = "issued"
LOCK_FILE = ".lock"
_INDEX_VERSION = 1
# RFC 5280 upper bound for a commonName; the CA's is "<instance> Renkei CA".
_MAX_COMMON_NAME = 64

CertificateStatus = Literal["valid"]


@dataclass(frozen=True, slots=True)
class IssuedRecord:
    """One entry of ``index.json``: a certificate this CA issued."""

    serial: int
    subject: str
    identity: str
    profile: Profile
    not_before: datetime
    not_after: datetime
    status: CertificateStatus
    fingerprint: str

    @property
    def serial_hex(self) -> str:
        return serial_hex(self.serial)

    def to_json(self) -> dict[str, str]:
        entry = asdict(self)
        entry["serial"] = self.serial_hex
        entry["not_before"] = self.not_before.isoformat()
        entry["not_after"] = self.not_after.isoformat()
        return entry

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Self:
        profile = entry["profile"]
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}")
        if entry["status"] != "valid":
            raise ValueError(f"unknown status {entry['status']!r}")
        return cls(
            serial=int(entry["serial"], 16),
            subject=str(entry["subject"]),
            identity=str(entry["identity"]),
            profile=profile,
            not_before=datetime.fromisoformat(entry["not_before"]),
            not_after=datetime.fromisoformat(entry["not_after"]),
            status="valid",
            fingerprint=str(entry["fingerprint"]),
        )


def serial_hex(serial: int) -> str:
    """The serial as the 40 lowercase hex digits used for file names and the index."""
    return f"{serial:040x}"


class CertificateAuthority:
    """A CA loaded from (or created in) its directory."""

    def __init__(
        self, directory: Path, certificate: x509.Certificate, private_key: PrivateKey
    ) -> None:
        self.directory = directory
        self.certificate = certificate
        self._private_key = private_key

    @property
    def private_key(self) -> PrivateKey:
        return self._private_key

    @property
    def instance(self) -> str:
        """The federation instance this CA serves (its certificate's O attribute)."""
        organisations = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(organisations[0].value)

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        instance: str,
        now: datetime,
        validity_days: int = 3650,
        algorithm: KeyAlgorithm = "ec-p256",
    ) -> CertificateAuthority:
        """Create a new CA in ``directory``; an existing CA there is never overwritten."""
        require_aware(now)
        try:
            check_instance(instance)
        except IdentifierError as exc:
            raise CaError(str(exc)) from exc
        common_name = f"{instance} Renkei CA"
        if len(common_name) > _MAX_COMMON_NAME:
            raise CaError(f"instance {instance!r} is too long for the CA's common name")
        for file_name in (CA_KEY_FILE, CA_CERT_FILE, INDEX_FILE):
            if (directory / file_name).exists():
                raise CaExists(f"{directory / file_name} exists; refusing to overwrite a CA")

        key = generate_key(algorithm)
        public_key = key.public_key()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, instance),
            ]
        )
        ca_usage = x509.KeyUsage(
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
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + days(validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(ca_usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(key, signature_hash(key))
        )
        index = {"version": _INDEX_VERSION, "instance": instance, "certificates": []}
        try:
            directory.mkdir(parents=True, exist_ok=True)
            write_atomic(directory / CA_KEY_FILE, private_key_pem(key), mode=0o600, overwrite=False)
            write_atomic(
                directory / CA_CERT_FILE,
                certificate_pem(certificate).encode("ascii"),
                mode=0o644,
                overwrite=False,
            )
            (directory / ISSUED_DIR).mkdir(exist_ok=True)
            write_atomic(directory / INDEX_FILE, _dump(index), mode=0o644, overwrite=False)
        except FileExistsError as exc:
            raise CaExists(f"a CA appeared in {directory} while creating one") from exc
        except OSError as exc:
            raise CaError(f"cannot create CA in {directory}: {exc.strerror or exc}") from exc
        return cls(directory, certificate, key)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Load the CA in ``directory``, checking that its key and certificate belong together."""
        if not (directory / CA_CERT_FILE).is_file() or not (directory / CA_KEY_FILE).is_file():
            raise CaError(f"no CA in {directory} (expected {CA_CERT_FILE} and {CA_KEY_FILE})")
        try:
            certificate = load_certificate(directory / CA_CERT_FILE)
            key = load_private_key(directory / CA_KEY_FILE)
        except CertsError as exc:
            raise CaError(f"broken CA in {directory}: {exc}") from exc
        if _spki(key.public_key()) != _spki(certificate.public_key()):
            raise CaError(f"{CA_KEY_FILE} does not match {CA_CERT_FILE} in {directory}")
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError) as exc:
            raise CaError(f"{CA_CERT_FILE} in {directory} is not a CA certificate") from exc
        if not constraints.value.ca:
            raise CaError(f"{CA_CERT_FILE} in {directory} is not a CA certificate")
        return cls(directory, certificate, key)

    def issue(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        profile: Profile,
        now: datetime,
        validity_days: int = 365,
    ) -> x509.Certificate:
        """Issue a ``profile`` certificate for the identity and key in ``csr``.

        Only the CSR's subject identity and public key are used; its other
        extensions are ignored and the profile's are built here.
        """
        require_aware(now)
        lifetime = days(validity_days)
        identity, public_key = self._check_csr(csr, profile)
        ca_not_before = self.certificate.not_valid_before_utc
        ca_not_after = self.certificate.not_valid_after_utc
        if not ca_not_before <= now < ca_not_after:
            raise CaError(
                f"the CA certificate is not valid at {now.isoformat()} "
                f"({ca_not_before.isoformat()} to {ca_not_after.isoformat()})"
            )
        # A certificate never outlives the CA that vouches for it.
        not_after = min(now + lifetime, ca_not_after)
        builder = (
            x509.CertificateBuilder()
            .subject_name(identity_name(identity))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(not_after)
        )
        for extension, critical in profile_extensions(profile, identity, public_key):
            builder = builder.add_extension(extension, critical=critical)
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self._private_key.public_key())
        builder = builder.add_extension(aki, critical=False)
        certificate = builder.sign(self._private_key, signature_hash(self._private_key))
        self._record(certificate, identity=str(identity), profile=profile)
        return certificate

    def issued(self) -> list[IssuedRecord]:
        """Every certificate this CA has issued, oldest first."""
        try:
            index = json.loads((self.directory / INDEX_FILE).read_bytes())
            return [IssuedRecord.from_json(entry) for entry in index["certificates"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CaError(f"cannot read {INDEX_FILE} in {self.directory}: {exc}") from exc

    def _check_csr(
        self, csr: x509.CertificateSigningRequest, profile: Profile
    ) -> tuple[NodeId | MemberId, PublicKey]:
        try:
            signature_ok = csr.is_signature_valid
            public_key = csr.public_key()
            extensions = csr.extensions
        except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
            raise CsrError(f"malformed CSR: {exc}") from exc
        if not signature_ok:
            raise CsrError("the CSR's signature is invalid (no proof of key possession)")
        try:
            check_supported_key(public_key)
        except KeyFileError as exc:
            raise CsrError(f"the CSR's key is not accepted: {exc}") from exc
        try:
            identity = bound_identity(csr.subject, extensions, profile)
        except IdentityMismatch as exc:
            raise CsrError(f"the CSR does not fit the {profile} profile: {exc}") from exc
        if identity.instance != self.instance:
            raise CsrError(
                f"the CSR is for instance {identity.instance!r}; this CA serves {self.instance!r}"
            )
        return identity, cast(PublicKey, public_key)

    def _record(self, certificate: x509.Certificate, *, identity: str, profile: Profile) -> None:
        record = IssuedRecord(
            serial=certificate.serial_number,
            subject=certificate.subject.rfc4514_string(),
            identity=identity,
            profile=profile,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            status="valid",
            fingerprint=fingerprint(certificate),
        )
        pem_path = self.directory / ISSUED_DIR / f"{record.serial_hex}.pem"
        index_path = self.directory / INDEX_FILE
        try:
            with self._locked():
                write_atomic(
                    pem_path,
                    certificate_pem(certificate).encode("ascii"),
                    mode=0o644,
                    overwrite=False,
                )
                index = json.loads(index_path.read_bytes())
                index["certificates"].append(record.to_json())
                write_atomic(index_path, _dump(index), mode=0o644, overwrite=True)
        except (OSError, ValueError, KeyError) as exc:
            raise CaError(f"cannot record the issued certificate: {exc}") from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.directory / LOCK_FILE).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _spki(public_key: object) -> bytes:
    encode = getattr(public_key, "public_bytes", None)
    if encode is None:
        return b""
    return cast(
        bytes,
        encode(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    )


def _dump(index: dict[str, Any]) -> bytes:
    return (json.dumps(index, indent=2, sort_keys=True) + "\n").encode("utf-8")

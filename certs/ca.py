"""The instance certificate authority: a self-signed root that issues auth and sign certificates.

A CA lives in one directory::

    ca.key        the CA private key (PEM PKCS#8, mode 0600)
    ca.pem        the self-signed root certificate
    index.json    one entry per issued certificate (see :class:`IssuedRecord`)
    issued/       every issued certificate as <serial-hex>.pem
    crl.pem       the latest CRL (also crl.der), written by :meth:`CertificateAuthority.build_crl`
    .lock         taken while issuing or revoking, so concurrent writers lose nothing

Revocation is a status in the index (``valid`` or ``revoked`` with the time and
the RFC 5280 reason); the OCSP responder reads it on every request, so a
revocation applies at once. The CA also issues its service certificates: the
delegated OCSP responder's and the TSA's (:mod:`certs.service_profiles`).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self, cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from certs._files import write_atomic
from certs._time import days, require_aware
from certs.crl import RevokedEntry, make_crl, reason_flag
from certs.errors import (
    CaError,
    CaExists,
    CertsError,
    CsrError,
    IdentityMismatch,
    KeyFileError,
    UnknownSerial,
)
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
from certs.service_profiles import (
    SERVICE_PROFILES,
    ServiceProfile,
    service_extensions,
    service_name,
)

__all__ = ["CertStatus", "CertificateAuthority", "IssuedRecord", "serial_hex"]

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.pem"
INDEX_FILE = "index.json"
ISSUED_DIR = "issued"
CRL_PEM_FILE = "crl.pem"
CRL_DER_FILE = "crl.der"
LOCK_FILE = ".lock"
_INDEX_VERSION = 1
# RFC 5280 upper bound for a commonName; the CA's is "<instance> Renkei CA".
_MAX_COMMON_NAME = 64

CertificateStatus = Literal["valid", "revoked"]
IssuedProfile = Profile | ServiceProfile
_ALL_PROFILES: tuple[str, ...] = (*PROFILES, *SERVICE_PROFILES)


@dataclass(frozen=True, slots=True)
class IssuedRecord:
    """One entry of ``index.json``: a certificate this CA issued."""

    serial: int
    subject: str
    identity: str
    profile: IssuedProfile
    not_before: datetime
    not_after: datetime
    status: CertificateStatus
    fingerprint: str
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    @property
    def serial_hex(self) -> str:
        return serial_hex(self.serial)

    def to_json(self) -> dict[str, str]:
        entry = {key: value for key, value in asdict(self).items() if value is not None}
        entry["serial"] = self.serial_hex
        entry["not_before"] = self.not_before.isoformat()
        entry["not_after"] = self.not_after.isoformat()
        if self.revoked_at is not None:
            entry["revoked_at"] = self.revoked_at.isoformat()
        return entry

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Self:
        profile = entry["profile"]
        if profile not in _ALL_PROFILES:
            raise ValueError(f"unknown profile {profile!r}")
        status = entry["status"]
        revoked_at: datetime | None = None
        reason: str | None = None
        if status == "revoked":
            revoked_at = datetime.fromisoformat(entry["revoked_at"])
            reason = str(entry["revocation_reason"])
            reason_flag(reason)
        elif status != "valid":
            raise ValueError(f"unknown status {status!r}")
        return cls(
            serial=int(entry["serial"], 16),
            subject=str(entry["subject"]),
            identity=str(entry["identity"]),
            profile=profile,
            not_before=datetime.fromisoformat(entry["not_before"]),
            not_after=datetime.fromisoformat(entry["not_after"]),
            status=status,
            fingerprint=str(entry["fingerprint"]),
            revoked_at=revoked_at,
            revocation_reason=reason,
        )


@dataclass(frozen=True, slots=True)
class CertStatus:
    """What the CA knows about a serial: ``good``, ``revoked`` (when, why) or ``unknown``."""

    state: Literal["good", "revoked", "unknown"]
    revoked_at: datetime | None = None
    reason: str | None = None


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
        certificate = self._sign(
            identity_name(identity),
            public_key,
            profile_extensions(profile, identity, public_key),
            now=now,
            lifetime=lifetime,
        )
        self._record(certificate, identity=str(identity), profile=profile)
        return certificate

    def issue_service_certificate(
        self,
        public_key: PublicKey,
        *,
        profile: ServiceProfile,
        now: datetime,
        validity_days: int = 365,
    ) -> x509.Certificate:
        """Issue the delegated OCSP responder's (``ocsp``) or the TSA's (``tsa``) certificate.

        Takes a public key rather than a CSR: service certificates are made by
        whoever holds the CA key, for keys generated on the same host.
        """
        require_aware(now)
        lifetime = days(validity_days)
        if profile not in SERVICE_PROFILES:
            raise CaError(f"unknown service profile {profile!r}")
        try:
            check_supported_key(public_key)
        except KeyFileError as exc:
            raise CaError(f"the service key is not accepted: {exc}") from exc
        subject = service_name(self.instance, profile)
        certificate = self._sign(
            subject, public_key, service_extensions(profile, public_key), now=now, lifetime=lifetime
        )
        common_name = subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        self._record(certificate, identity=str(common_name), profile=profile)
        return certificate

    def revoke(self, serial: int, *, reason: str, now: datetime) -> IssuedRecord:
        """Mark the certificate ``serial`` revoked at ``now`` for an RFC 5280 ``reason``.

        Revoking twice is refused (the first time and reason stand); an unknown
        serial is :class:`UnknownSerial`.
        """
        require_aware(now)
        try:
            reason_flag(reason)
        except ValueError as exc:
            raise CaError(str(exc)) from exc
        index_path = self.directory / INDEX_FILE
        with self._locked():
            index = self._read_index()
            for position, entry in enumerate(index["certificates"]):
                record = self._parse_record(entry)
                if record.serial != serial:
                    continue
                if record.status == "revoked":
                    raise CaError(
                        f"certificate {record.serial_hex} is already revoked "
                        f"({record.revocation_reason}, {record.revoked_at})"
                    )
                revoked = replace(
                    record, status="revoked", revoked_at=now, revocation_reason=reason
                )
                index["certificates"][position] = revoked.to_json()
                self._write(index_path, _dump(index))
                return revoked
        raise UnknownSerial(f"this CA never issued a certificate with serial {serial:x}")

    def status_of(self, serial: int) -> CertStatus:
        """The current status of ``serial``, read from the index (no caching)."""
        for record in self.issued():
            if record.serial == serial:
                if record.status == "revoked":
                    return CertStatus("revoked", record.revoked_at, record.revocation_reason)
                return CertStatus("good")
        return CertStatus("unknown")

    def build_crl(self, now: datetime, next_update: datetime) -> x509.CertificateRevocationList:
        """Sign a CRL of every revoked certificate, with the next CRL number.

        Writes ``crl.pem`` and ``crl.der`` in the CA directory.
        """
        require_aware(now)
        with self._locked():
            index = self._read_index()
            records = [self._parse_record(entry) for entry in index["certificates"]]
            number = int(index.get("crl_number", 0)) + 1
            revoked = [
                RevokedEntry(r.serial, r.revoked_at, r.revocation_reason)
                for r in records
                if r.revoked_at is not None and r.revocation_reason is not None
            ]
            try:
                crl = make_crl(
                    issuer=self.certificate,
                    issuer_key=self._private_key,
                    revoked=revoked,
                    number=number,
                    now=now,
                    next_update=next_update,
                )
            except ValueError as exc:
                raise CaError(f"cannot build the CRL: {exc}") from exc
            index["crl_number"] = number
            self._write(self.directory / INDEX_FILE, _dump(index))
            self._write(self.directory / CRL_PEM_FILE, crl.public_bytes(serialization.Encoding.PEM))
            self._write(self.directory / CRL_DER_FILE, crl.public_bytes(serialization.Encoding.DER))
        return crl

    def _sign(
        self,
        subject: x509.Name,
        public_key: PublicKey,
        extensions: list[tuple[x509.ExtensionType, bool]],
        *,
        now: datetime,
        lifetime: timedelta,
    ) -> x509.Certificate:
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
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(not_after)
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self._private_key.public_key())
        builder = builder.add_extension(aki, critical=False)
        return builder.sign(self._private_key, signature_hash(self._private_key))

    def _read_index(self) -> dict[str, Any]:
        try:
            index = json.loads((self.directory / INDEX_FILE).read_bytes())
        except (OSError, ValueError) as exc:
            raise CaError(f"cannot read {INDEX_FILE} in {self.directory}: {exc}") from exc
        if not isinstance(index, dict) or not isinstance(index.get("certificates"), list):
            raise CaError(f"{INDEX_FILE} in {self.directory} is malformed")
        return index

    def _parse_record(self, entry: Any) -> IssuedRecord:
        try:
            return IssuedRecord.from_json(entry)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CaError(f"malformed entry in {INDEX_FILE} in {self.directory}: {exc}") from exc

    def _write(self, path: Path, data: bytes) -> None:
        try:
            write_atomic(path, data, mode=0o644, overwrite=True)
        except OSError as exc:
            raise CaError(f"cannot write {path}: {exc.strerror or exc}") from exc

    def issued(self) -> list[IssuedRecord]:
        """Every certificate this CA has issued, oldest first."""
        return [self._parse_record(entry) for entry in self._read_index()["certificates"]]

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

    def _record(
        self, certificate: x509.Certificate, *, identity: str, profile: IssuedProfile
    ) -> None:
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

"""Message signatures between nodes, on the JWS recipe of ``certs.jws``.

The recipe fixes the form (canonical JSON payload, strict parsing, algorithm
pinned by the signer certificate's key type, explicit ``typ``). This module
adds what is particular to messages: the header is ``alg``, ``typ``, ``x5c``
and optionally ``ocsp`` (the signer's stapled OCSP response, covered by the
signature because it sits in the protected header); the signer's certificate
must chain to a trusted CA, be a sign certificate, name the member the
verifier expects, and have good status.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from certs import jws
from certs.errors import CertificateError
from certs.identifiers import IdentifierError, MemberId
from certs.keys import PrivateKey, PublicKey
from certs.profiles import member_id_of
from certs.validation import verify_certificate
from gateway.errors import GatewayError

__all__ = [
    "REQUEST_TYP",
    "RESPONSE_TYP",
    "CertificateCache",
    "MessageSigner",
    "SignatureError",
    "request_hash",
    "verify_message",
]

REQUEST_TYP = "renkei-request+jws"
RESPONSE_TYP = "renkei-response+jws"
_MAX_STAPLE = 16 * 1024

StatusCheck = Callable[[x509.Certificate, bytes | None], None]


class SignatureError(GatewayError):
    """A signature, its header or its signer certificate is not acceptable."""

    code = "server.serverproxy.signature_invalid"


def request_hash(token: str) -> str:
    """``X-Road-Request-Hash``: base64 SHA-512 of the signed request token."""
    return base64.b64encode(hashlib.sha512(token.encode("ascii")).digest()).decode("ascii")


@dataclass(frozen=True)
class MessageSigner:
    """Signs descriptions with one member's sign key."""

    member: MemberId
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]
    _x5c: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        jws.algorithm_for(self.key)  # refuse a key the recipe cannot sign with, at start
        object.__setattr__(self, "_x5c", tuple(jws.certificate_der_base64(c) for c in self.chain))

    def sign(self, description: Mapping[str, Any], *, typ: str, ocsp: bytes | None = None) -> str:
        header: dict[str, Any] = {"x5c": list(self._x5c)}
        if ocsp is not None:
            header["ocsp"] = base64.b64encode(ocsp).decode("ascii")
        return jws.sign(description, self.key, typ=typ, header=header)


class CertificateCache:
    """Parsed and path-validated signer certificates, keyed by their DER bytes.

    Validation is cached for ``ttl_s`` seconds so a busy node does not redo
    path building per message; a change of trust roots clears the cache.
    """

    def __init__(self, ttl_s: float = 60.0, max_entries: int = 1024) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: dict[tuple[bytes, int], tuple[x509.Certificate, PublicKey, float]] = {}
        self._members: dict[x509.Certificate, MemberId] = {}

    def member_of(self, cert: x509.Certificate) -> MemberId:
        """The member ``cert`` names (parsed once per certificate)."""
        member = self._members.get(cert)
        if member is None:
            try:
                member = member_id_of(cert)
            except (CertificateError, IdentifierError) as exc:
                raise SignatureError("signer certificate names no member") from exc
            if len(self._members) >= self._max:
                self._members.clear()
            self._members[cert] = member
        return member

    def validated(
        self,
        der: bytes,
        *,
        trust_roots: Sequence[x509.Certificate],
        roots_key: int,
        now: datetime,
    ) -> x509.Certificate:
        return self.signer(der, trust_roots=trust_roots, roots_key=roots_key, now=now)[0]

    def signer(
        self,
        der: bytes,
        *,
        trust_roots: Sequence[x509.Certificate],
        roots_key: int,
        now: datetime,
    ) -> tuple[x509.Certificate, PublicKey]:
        """The validated certificate and its public key (loading a key costs as much as
        checking a signature, so it is kept with the certificate)."""
        key = (hashlib.sha256(der).digest(), roots_key)
        stamp = now.timestamp()
        hit = self._entries.get(key)
        if hit is not None and stamp - hit[2] < self._ttl_s and hit[0].not_valid_after_utc >= now:
            return hit[0], hit[1]
        try:
            cert = x509.load_der_x509_certificate(der)
            verify_certificate(cert, trust_roots=trust_roots, now=now, profile="sign")
            loaded = cert.public_key()
        except CertificateError as exc:
            raise SignatureError(f"signer certificate refused: {exc}", code=exc.code) from exc
        except ValueError as exc:
            raise SignatureError("signer certificate is not valid DER") from exc
        if not isinstance(loaded, PublicKey):
            raise SignatureError("unsupported signer key type")
        public_key: PublicKey = loaded
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (cert, public_key, stamp)
        return cert, public_key


@dataclass(frozen=True)
class _SignerOf:
    """The recipe's trust for messages: the ``x5c`` signer, validated through the cache,
    of the expected member, with acceptable status."""

    expected_member: MemberId
    trust_roots: Sequence[x509.Certificate]
    roots_key: int
    cache: CertificateCache
    status_check: StatusCheck | None
    header: frozenset[str] = frozenset({"x5c"})

    def key_for(
        self, header: Mapping[str, Any], now: datetime
    ) -> tuple[PublicKey, x509.Certificate | None]:
        try:
            leaf_der = jws.x5c_entries(header)[0]
        except jws.SignatureInvalid as exc:
            raise SignatureError(f"signature must carry the signer certificate: {exc}") from exc
        cert, key = self.cache.signer(
            leaf_der, trust_roots=self.trust_roots, roots_key=self.roots_key, now=now
        )
        signer_member = self.cache.member_of(cert)
        if signer_member != self.expected_member:
            raise SignatureError(f"signed by {signer_member}, expected {self.expected_member}")
        if self.status_check is not None:
            staple = header.get("ocsp")
            if staple is not None and (not isinstance(staple, str) or len(staple) > _MAX_STAPLE):
                raise SignatureError("the stapled OCSP response is malformed")
            try:
                der = base64.b64decode(staple, validate=True) if staple else None
            except ValueError as exc:
                raise SignatureError("the stapled OCSP response is not base64") from exc
            self.status_check(cert, der)
        return key, cert


def verify_message(
    token: str,
    *,
    typ: str,
    expected_member: MemberId,
    trust_roots: Sequence[x509.Certificate],
    roots_key: int,
    now: datetime,
    cache: CertificateCache,
    status_check: StatusCheck | None = None,
) -> dict[str, Any]:
    """Verify ``token`` and return its strictly parsed payload, or raise
    :class:`SignatureError`.

    ``status_check(cert, staple)`` judges the signer certificate's stapled
    OCSP response (None when absent) and raises its own error to refuse.
    """
    trust = _SignerOf(expected_member, trust_roots, roots_key, cache, status_check)
    try:
        return jws.verify(token, typ=typ, trust=trust, now=now, header={"ocsp"}).payload
    except jws.SignatureInvalid as exc:
        raise SignatureError(exc.args[0] if exc.args else "the signature is refused") from exc

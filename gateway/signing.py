"""Message signatures between nodes: compact JWS (RFC 7515) with an ``x5c`` chain.

The algorithm is pinned by the signer certificate's key type, never taken
from the token alone (RFC 8725 §3.1): ECDSA P-256 → ES256, Ed25519 → EdDSA,
RSA → PS256. Only ``alg``, ``typ`` and ``x5c`` may appear in the header; the
signer's certificate must chain to a trusted CA, be a sign certificate, and
name the member the verifier expects.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

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
    "canonical_json",
    "request_hash",
    "verify_message",
]

REQUEST_TYP = "renkei-request+jws"
RESPONSE_TYP = "renkei-response+jws"
# "ocsp": the signer certificate's stapled OCSP response (base64 DER), covered
# by the signature because it sits in the protected header.
_ALLOWED_HEADER_KEYS = frozenset({"alg", "typ", "x5c", "ocsp"})
_MAX_CHAIN = 3
_MAX_STAPLE = 16 * 1024

StatusCheck = Callable[[x509.Certificate, bytes | None], None]


class SignatureError(GatewayError):
    """A signature, its header or its signer certificate is not acceptable."""

    code = "server.serverproxy.signature_invalid"


def canonical_json(document: dict[str, Any]) -> bytes:
    """The one byte form of a description that is signed."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def request_hash(token: str) -> str:
    """``X-Road-Request-Hash``: base64 SHA-512 of the signed request token."""
    return base64.b64encode(hashlib.sha512(token.encode("ascii")).digest()).decode("ascii")


def algorithm_for(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise SignatureError("only the P-256 curve is accepted for ECDSA signatures")
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise SignatureError("RSA keys shorter than 2048 bits are refused")
        return "PS256"
    raise SignatureError("unsupported signature key type")


@dataclass(frozen=True)
class MessageSigner:
    """Signs descriptions with one member's sign key."""

    member: MemberId
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]
    _x5c: tuple[str, ...] = field(init=False)
    _algorithm: str = field(init=False)

    def __post_init__(self) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding

        object.__setattr__(
            self,
            "_x5c",
            tuple(base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in self.chain),
        )
        object.__setattr__(self, "_algorithm", algorithm_for(self.key))

    def sign(self, payload: bytes, *, typ: str, ocsp: bytes | None = None) -> str:
        headers: dict[str, Any] = {"typ": typ, "x5c": list(self._x5c)}
        if ocsp is not None:
            headers["ocsp"] = base64.b64encode(ocsp).decode("ascii")
        return jwt.api_jws.encode(payload, self.key, algorithm=self._algorithm, headers=headers)


class CertificateCache:
    """Parsed and path-validated signer certificates, keyed by their DER bytes.

    Validation is cached for ``ttl_s`` seconds so a busy node does not redo
    path building per message; a change of trust roots clears the cache.
    """

    def __init__(self, ttl_s: float = 60.0, max_entries: int = 1024) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: dict[tuple[bytes, int], tuple[x509.Certificate, float]] = {}
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
        key = (hashlib.sha256(der).digest(), roots_key)
        stamp = now.timestamp()
        hit = self._entries.get(key)
        if hit is not None and stamp - hit[1] < self._ttl_s:
            cert = hit[0]
            if cert.not_valid_after_utc >= now:
                return cert
        try:
            cert = x509.load_der_x509_certificate(der)
            verify_certificate(cert, trust_roots=trust_roots, now=now, profile="sign")
        except CertificateError as exc:
            raise SignatureError(f"signer certificate refused: {exc}", code=exc.code) from exc
        except ValueError as exc:
            raise SignatureError("signer certificate is not valid DER") from exc
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (cert, stamp)
        return cert


def _header(token: str) -> dict[str, Any]:
    try:
        header = jwt.api_jws.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SignatureError("signature is not a compact JWS") from exc
    return header


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
) -> bytes:
    """Verify ``token`` and return its payload, or raise :class:`SignatureError`.

    ``status_check(cert, staple)`` judges the signer certificate's stapled
    OCSP response (None when absent) and raises its own error to refuse.
    """
    header = _header(token)
    if not set(header) <= _ALLOWED_HEADER_KEYS:
        raise SignatureError("signature header carries fields that are not allowed")
    if header.get("typ") != typ:
        raise SignatureError(f"signature type must be {typ}")
    chain = header.get("x5c")
    if not isinstance(chain, list) or not 1 <= len(chain) <= _MAX_CHAIN:
        raise SignatureError("signature must carry the signer certificate in x5c")
    try:
        leaf_der = base64.b64decode(chain[0], validate=True)
    except (ValueError, TypeError) as exc:
        raise SignatureError("x5c is not base64") from exc
    cert = cache.validated(leaf_der, trust_roots=trust_roots, roots_key=roots_key, now=now)
    signer_member = cache.member_of(cert)
    if signer_member != expected_member:
        raise SignatureError(f"signed by {signer_member}, expected {expected_member}")
    if status_check is not None:
        staple = header.get("ocsp")
        if staple is not None and (not isinstance(staple, str) or len(staple) > _MAX_STAPLE):
            raise SignatureError("the stapled OCSP response is malformed")
        try:
            der = base64.b64decode(staple, validate=True) if staple else None
        except ValueError as exc:
            raise SignatureError("the stapled OCSP response is not base64") from exc
        status_check(cert, der)
    public_key = cert.public_key()
    if not isinstance(
        public_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
    ):
        raise SignatureError("unsupported signer key type")
    algorithm = algorithm_for(public_key)
    if header.get("alg") != algorithm:
        raise SignatureError(f"signature algorithm must be {algorithm} for this certificate")
    try:
        decoded = jwt.api_jws.decode_complete(token, key=public_key, algorithms=[algorithm])
    except jwt.PyJWTError as exc:
        raise SignatureError("signature does not verify") from exc
    payload: bytes = decoded["payload"]
    return payload

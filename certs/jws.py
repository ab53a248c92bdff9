"""The one recipe for every signed JSON document in Renkei: compact JWS (RFC 7515).

Everything the project signs (messages between nodes, the global
configuration, registrations, checkpoints and cosignatures, consent
receipts, catalogue publications, management tokens) goes through
:func:`sign` and :func:`verify`. The rules, fixed here once:

* The payload is one JSON object in canonical form (RFC 8785, see
  :func:`canonical_json`). On verification it is parsed strictly: a
  duplicate key, ``NaN`` or a payload that is not an object is refused, so a
  signed document cannot mean one thing to this reader and another to the next.
* The protected header is ``alg``, an explicit ``typ`` and only the parameters
  the caller names (``kid``, ``x5c``, ...); anything else, ``crit``, ``jku``,
  ``jwk`` and ``x5u`` included, is refused. The header is parsed once, strictly.
* The algorithm is pinned by the verifying key's type (RFC 8725 §3.1), never
  read from the token: ECDSA P-256 → ES256 (raw ``r || s``, RFC 7518 §3.4),
  Ed25519 → EdDSA (RFC 8037), RSA of 2048 bits or more → PS256 (RFC 7518 §3.5,
  salt as long as the hash). There is no HMAC and no ``none``.
* The key comes from a :class:`Trust` the caller passes: a pinned key, a
  certificate named by ``kid`` among given ones, or an ``x5c`` chain validated
  against given trust roots at the given time. Time is an argument too: a
  payload carrying RFC 7519 ``exp``, ``nbf`` or ``iat`` is judged against it.
* :func:`verify` returns the :class:`Verified` payload or raises
  :class:`~certs.errors.SignatureInvalid` (:class:`~certs.errors.PayloadInvalid`
  when the signature holds but the payload is not one strict object); nothing
  returns a boolean.

Only base64url and JSON glue lives here; the signatures are ``cryptography``'s.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from certs._json import JsonRefused, canonical_json, loads_strict
from certs.errors import CertificateError, PayloadInvalid, SignatureInvalid
from certs.keys import PrivateKey, PublicKey, fingerprint
from certs.validation import verify_certificate

__all__ = [
    "ALGORITHMS",
    "CertificateChain",
    "JsonRefused",
    "KeyById",
    "PayloadInvalid",
    "PinnedKey",
    "SignatureInvalid",
    "Trust",
    "Unverified",
    "Verified",
    "algorithm_for",
    "canonical_json",
    "certificate_der_base64",
    "loads_strict",
    "parse",
    "sign",
    "verify",
    "x5c_certificates",
    "x5c_entries",
]

Algorithm = Literal["ES256", "EdDSA", "PS256"]
ALGORITHMS: tuple[Algorithm, ...] = ("ES256", "EdDSA", "PS256")
# Tolerated clock difference for nbf and iat (RFC 7519 §4.1.5: "a small leeway").
CLOCK_LEEWAY_S = 60
_MAX_CHAIN = 3
_P256_BYTES = 32
_B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# Bits of the last character that carry no data, by the length of the text modulo 4.
_UNUSED_BITS = {2: 0b1111, 3: 0b11}
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


# -- algorithms -----------------------------------------------------------------------------


def algorithm_for(key: PrivateKey | PublicKey) -> Algorithm:
    """The one JWS algorithm a key signs and verifies with; raises for any other key."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise SignatureInvalid(
                "only the P-256 curve is accepted for ECDSA (ES256)", reason="key"
            )
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise SignatureInvalid("RSA keys shorter than 2048 bits are refused", reason="key")
        return "PS256"
    raise SignatureInvalid(f"unsupported signature key type {type(key).__name__}", reason="key")


def _signature(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _PSS, hashes.SHA256())
    return key.sign(data)


def _check_signature(key: PublicKey, signature: bytes, data: bytes) -> None:
    """Raise ``InvalidSignature`` unless ``signature`` over ``data`` verifies with ``key``."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if len(signature) != 2 * _P256_BYTES:  # RFC 7518 §3.4: exactly r || s, 32 bytes each
            raise InvalidSignature
        r = int.from_bytes(signature[:_P256_BYTES], "big")
        s = int.from_bytes(signature[_P256_BYTES:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, _PSS, hashes.SHA256())
    else:
        key.verify(signature, data)


# -- encoding glue ----------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str, what: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): one spelling per byte string."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise SignatureInvalid(f"the JWS {what} is not base64url", reason="malformed")
    unused = _UNUSED_BITS.get(len(text) % 4, 0)
    if unused and _B64URL_ALPHABET.index(text[-1]) & unused:
        raise SignatureInvalid(  # stray low bits
            f"the JWS {what} is not canonical base64url", reason="malformed"
        )
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def certificate_der_base64(certificate: x509.Certificate) -> str:
    """A certificate as an ``x5c`` entry: standard base64 of its DER (RFC 7515 §4.1.6)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = loads_strict(data)
        if not isinstance(value, dict):
            raise JsonRefused("not a JSON object")
    except JsonRefused as exc:
        message = f"the JWS {what} is not one strict JSON object: {exc}"
        if what == "payload":
            raise PayloadInvalid(message) from exc
        raise SignatureInvalid(message, reason="malformed") from exc
    return value


# -- signing ----------------------------------------------------------------------------------


def sign(
    payload: Mapping[str, Any],
    key: PrivateKey,
    *,
    typ: str,
    header: Mapping[str, Any] | None = None,
) -> str:
    """``payload`` in canonical JSON, signed with ``key`` as a compact JWS of type ``typ``.

    ``header`` adds protected header parameters (``kid``, ``x5c``, ...); it may not
    set ``alg`` or ``typ``, which are fixed by the key and by ``typ``.
    """
    extra = dict(header or {})
    if {"alg", "typ", "crit"} & set(extra):
        raise ValueError("alg and typ are fixed by the recipe; crit is never used")
    protected = {"alg": algorithm_for(key), "typ": typ, **extra}
    try:
        signing_input = f"{_b64url(canonical_json(protected))}.{_b64url(canonical_json(payload))}"
    except JsonRefused as exc:
        raise ValueError(f"the payload cannot be signed: {exc}") from exc
    signature = _signature(key, signing_input.encode("ascii"))
    return f"{signing_input}.{_b64url(signature)}"


# -- where the verifying key comes from ---------------------------------------------------------


class Trust(Protocol):
    """Chooses the verifying key for a token; raises ``SignatureInvalid`` to refuse.

    ``header`` names the header parameters it reads (they are allowed and required).
    It returns the key and, when the key came from a certificate, that certificate.
    """

    @property
    def header(self) -> frozenset[str]: ...

    def key_for(
        self, header: Mapping[str, Any], now: datetime
    ) -> tuple[PublicKey, x509.Certificate | None]: ...


@dataclass(frozen=True)
class PinnedKey:
    """The verifier already holds the one key (its own token key, a receipt's signer)."""

    key: PublicKey | x509.Certificate
    header: frozenset[str] = frozenset()

    def key_for(
        self, header: Mapping[str, Any], now: datetime
    ) -> tuple[PublicKey, x509.Certificate | None]:
        if isinstance(self.key, x509.Certificate):
            return _public_key(self.key), self.key
        return self.key, None


@dataclass(frozen=True)
class KeyById:
    """``kid`` is the SHA-256 fingerprint of one of ``certificates`` (e.g. the anchor's)."""

    certificates: Sequence[x509.Certificate]
    header: frozenset[str] = frozenset({"kid"})

    def key_for(
        self, header: Mapping[str, Any], now: datetime
    ) -> tuple[PublicKey, x509.Certificate | None]:
        kid = header["kid"]
        for certificate in self.certificates:
            if isinstance(kid, str) and fingerprint(certificate) == kid:
                return _public_key(certificate), certificate
        raise SignatureInvalid("the JWS kid names no certificate that is trusted", reason="key")


@dataclass(frozen=True)
class CertificateChain:
    """``x5c`` carries the signer's certificate (and intermediates), validated at ``now``
    for ``profile`` against ``trust_roots``; an empty store trusts nothing."""

    trust_roots: Sequence[x509.Certificate]
    profile: Literal["auth", "sign"]
    header: frozenset[str] = frozenset({"x5c"})

    def key_for(
        self, header: Mapping[str, Any], now: datetime
    ) -> tuple[PublicKey, x509.Certificate | None]:
        chain = x5c_certificates(header)
        try:
            verify_certificate(chain[0], trust_roots=self.trust_roots, now=now,
                               profile=self.profile, intermediates=chain[1:])
        except CertificateError as exc:
            raise SignatureInvalid(
                f"the signer certificate is refused: {exc}", reason="key"
            ) from exc
        return _public_key(chain[0]), chain[0]


def x5c_entries(header: Mapping[str, Any]) -> list[bytes]:
    """The DER bytes of a header's ``x5c`` (1 to 3 base64 certificates), not yet parsed."""
    chain = header.get("x5c")
    if not isinstance(chain, list) or not 1 <= len(chain) <= _MAX_CHAIN:
        raise SignatureInvalid(f"x5c must hold 1 to {_MAX_CHAIN} certificates", reason="key")
    entries = []
    for entry in chain:
        try:
            if not isinstance(entry, str):
                raise TypeError(entry)
            entries.append(base64.b64decode(entry, validate=True))
        except (TypeError, ValueError, binascii.Error) as exc:
            raise SignatureInvalid("x5c holds something that is not base64", reason="key") from exc
    return entries


def x5c_certificates(header: Mapping[str, Any]) -> tuple[x509.Certificate, ...]:
    """A header's ``x5c`` parsed as DER certificates, signer first."""
    try:
        return tuple(x509.load_der_x509_certificate(der) for der in x5c_entries(header))
    except ValueError as exc:
        raise SignatureInvalid(
            "x5c holds something that is not a DER certificate", reason="key"
        ) from exc


def _public_key(certificate: x509.Certificate) -> PublicKey:
    key = certificate.public_key()
    if not isinstance(
        key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
    ):
        raise SignatureInvalid("the signer certificate's key type is not accepted", reason="key")
    return key


# -- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    """A token whose signature verified: its strict payload, header and signer."""

    payload: dict[str, Any]
    header: Mapping[str, Any]
    certificate: x509.Certificate | None


@dataclass(frozen=True)
class Unverified:
    """A token split once and its header parsed once; nothing in it is trusted yet."""

    header: Mapping[str, Any]
    _signing_input: bytes
    _payload: bytes
    _signature: bytes

    def verify(self, trust: Trust, *, now: datetime) -> Verified:
        """The payload if the signature verifies with the key ``trust`` gives for it."""
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        missing = trust.header - set(self.header)
        if missing:
            raise SignatureInvalid(
                f"the JWS header lacks {', '.join(sorted(missing))}", reason="header"
            )
        key, certificate = trust.key_for(self.header, now)
        algorithm = algorithm_for(key)
        if self.header.get("alg") != algorithm:
            raise SignatureInvalid(
                f"the JWS algorithm must be {algorithm} for this key", reason="algorithm"
            )
        try:
            _check_signature(key, self._signature, self._signing_input)
        except InvalidSignature as exc:
            raise SignatureInvalid("the JWS signature does not verify") from exc
        payload = _object(self._payload, "payload")
        _check_times(payload, now)
        return Verified(payload, self.header, certificate)

    def unverified_payload(self) -> dict[str, Any]:
        """The payload without checking the signature: only for reading back a token
        this node verified before it stored it, or to choose what to verify it against."""
        return _object(self._payload, "payload")


def parse(token: str, *, typ: str, header: Collection[str] = ()) -> Unverified:
    """Split ``token`` and check its header: ``alg``, ``typ`` equal to ``typ``, and
    no parameter outside ``header``. The signature is not checked yet."""
    if not isinstance(token, str) or not token.isascii():
        raise SignatureInvalid("a JWS must be ASCII text", reason="malformed")
    parts = token.split(".")
    if len(parts) != 3:
        raise SignatureInvalid("a compact JWS has three parts", reason="malformed")
    encoded_header, encoded_payload, encoded_signature = parts
    protected = _object(_unb64url(encoded_header, "header"), "header")
    allowed = {"alg", "typ", *header}
    unknown = set(protected) - allowed
    if unknown:
        raise SignatureInvalid(
            f"the JWS header carries parameters that are not allowed: {', '.join(sorted(unknown))}",
            reason="header",
        )
    if protected.get("typ") != typ:
        raise SignatureInvalid(f"the JWS type must be {typ}", reason="type")
    return Unverified(
        protected,
        f"{encoded_header}.{encoded_payload}".encode("ascii"),
        _unb64url(encoded_payload, "payload"),
        _unb64url(encoded_signature, "signature"),
    )


def verify(
    token: str, *, typ: str, trust: Trust, now: datetime, header: Collection[str] = ()
) -> Verified:
    """Verify ``token`` of type ``typ`` with the key ``trust`` gives, at ``now``.

    ``header`` names optional header parameters beyond ``alg``, ``typ`` and those
    ``trust`` reads. Raises :class:`~certs.errors.SignatureInvalid` for anything wrong.
    """
    return parse(token, typ=typ, header={*trust.header, *header}).verify(trust, now=now)


def _check_times(payload: Mapping[str, Any], now: datetime) -> None:
    """RFC 7519 §4.1.4-6, where the payload carries them: integer seconds since the epoch."""
    stamp = now.timestamp()
    for claim in ("exp", "nbf", "iat"):
        value = payload.get(claim, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SignatureInvalid(f"the {claim} claim must be an integer", reason="claims")
    if "exp" in payload and stamp >= payload["exp"]:
        raise SignatureInvalid("the signed document has expired", reason="expired")
    for claim in ("nbf", "iat"):
        if claim in payload and stamp < payload[claim] - CLOCK_LEEWAY_S:
            raise SignatureInvalid(
                f"the signed document is not yet valid ({claim})", reason="expired"
            )

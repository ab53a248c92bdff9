"""The auth-certificate registration request (``renkei-registration/1``) and its two signatures.

A node asks the registry to list a new auth certificate with a request naming the node,
its address and peer port, the subsystems it hosts and the certificate itself, plus a
random nonce and the time it was made. The request is signed twice, as two compact JWS
(RFC 7515) over the *same* payload bytes (the canonical JSON of the request):

- **proof of possession**, ``typ`` ``renkei-registration-pop+jws``, signed with the new
  auth key; its ``x5c`` carries the auth certificate, which must also be the one in the
  payload;
- **member consent**, ``typ`` ``renkei-registration-consent+jws``, signed with the sign
  key of the node's member; its ``x5c`` carries that sign certificate.

Both are made and checked by the JWS recipe of ``certs.jws``. The protected header of
each is exactly ``alg``, ``typ``, ``x5c``. The algorithm is pinned by the signer
certificate's key type (ECDSA P-256 → ES256, Ed25519 → EdDSA, RSA → PS256), never read
from the token alone (RFC 8725 §3.1). The two ``typ`` values keep one signature from
standing in for the other.

``verify_registration`` checks the signatures, certificates and identities (the checks
that still hold when an admin approves later); ``check_fresh`` adds the time window that
only applies on receipt. Both raise a ``RegistrationRefused`` subclass.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from certs import jws
from certs.errors import CertsError, IdentityMismatch
from certs.identifiers import IdentifierError, NodeId, SubsystemId
from certs.keys import PrivateKey, certificate_pem
from certs.validation import check_identity, verify_certificate
from member_registry._strict_json import (
    FormatError,
    format_time,
    parse_time,
    read_certificate,
    read_int,
    read_list,
    read_object,
    read_str,
)
from member_registry.errors import (
    RegistrationCertificateInvalid,
    RegistrationIdentityMismatch,
    RegistrationRefused,
    RegistrationSignatureInvalid,
    RegistrationStale,
)

__all__ = [
    "CONSENT_TYP",
    "MAX_CLOCK_SKEW",
    "MAX_REQUEST_AGE",
    "POP_TYP",
    "REQUEST_FORMAT",
    "RegistrationRequest",
    "SignedRegistration",
    "VerifiedRegistration",
    "check_fresh",
    "new_registration_request",
    "sign_registration",
    "verify_registration",
]

REQUEST_FORMAT = "renkei-registration/1"
POP_TYP = "renkei-registration-pop+jws"
CONSENT_TYP = "renkei-registration-consent+jws"
MAX_REQUEST_AGE = timedelta(minutes=5)
MAX_CLOCK_SKEW = timedelta(seconds=60)
_HEADER_KEYS = frozenset({"alg", "typ", "x5c"})
_MAX_CHAIN = 3
_NONCE_BYTES = 16
_MAX_NONCE = 64
_REQUEST_KEYS = ("format", "node", "address", "peer_port", "subsystems", "auth_certificate",
                 "nonce", "issued_at")


@dataclass(frozen=True)
class RegistrationRequest:
    """What a node asks the registry to list, as both signatures cover it."""

    node: NodeId
    address: str
    peer_port: int
    subsystems: tuple[SubsystemId, ...]
    auth_certificate: x509.Certificate
    nonce: str
    issued_at: datetime

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": REQUEST_FORMAT,
            "node": str(self.node),
            "address": self.address,
            "peer_port": self.peer_port,
            "subsystems": [str(s) for s in self.subsystems],
            "auth_certificate": certificate_pem(self.auth_certificate),
            "nonce": self.nonce,
            "issued_at": format_time(self.issued_at),
        }

    @classmethod
    def from_json_dict(cls, value: object) -> RegistrationRequest:
        """Strictly parse a request; raises ``RegistrationRefused``."""
        try:
            d = read_object(value, "registration request", _REQUEST_KEYS)
            if d["format"] != REQUEST_FORMAT:
                raise FormatError(f"format must be {REQUEST_FORMAT!r}")
            nonce = read_str(d["nonce"], "nonce")
            if len(nonce) > _MAX_NONCE or not nonce.isascii() or not nonce.isalnum():
                raise FormatError("nonce must be at most 64 ASCII letters and digits")
            return cls(
                node=_node(d["node"], "node"),
                address=read_str(d["address"], "address"),
                peer_port=read_int(d["peer_port"], "peer_port", minimum=1, maximum=65535),
                subsystems=read_list(d["subsystems"], "subsystems", _subsystem),
                auth_certificate=read_certificate(d["auth_certificate"], "auth_certificate"),
                nonce=nonce,
                issued_at=parse_time(d["issued_at"], "issued_at"),
            )
        except FormatError as exc:
            raise RegistrationRefused(f"malformed registration request: {exc}") from exc

    def payload(self) -> bytes:
        """The exact bytes both signatures cover."""
        return jws.canonical_json(self.to_json_dict())


@dataclass(frozen=True)
class SignedRegistration:
    """The two compact JWS sent to ``POST /registrations``."""

    proof_of_possession: str
    member_consent: str

    def to_json_dict(self) -> dict[str, str]:
        return {"proof_of_possession": self.proof_of_possession,
                "member_consent": self.member_consent}

    @classmethod
    def from_json_dict(cls, value: object) -> SignedRegistration:
        try:
            d = read_object(value, "registration", ("proof_of_possession", "member_consent"))
            return cls(read_str(d["proof_of_possession"], "proof_of_possession"),
                       read_str(d["member_consent"], "member_consent"))
        except FormatError as exc:
            raise RegistrationRefused(f"malformed registration: {exc}") from exc


@dataclass(frozen=True)
class VerifiedRegistration:
    """A request whose signatures, certificates and identities were checked."""

    request: RegistrationRequest
    sign_certificate: x509.Certificate


def new_registration_request(
    node: NodeId,
    address: str,
    peer_port: int,
    subsystems: Sequence[SubsystemId],
    auth_certificate: x509.Certificate,
    *,
    now: datetime,
) -> RegistrationRequest:
    """A request issued at ``now`` with a fresh random nonce."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return RegistrationRequest(node, address, peer_port, tuple(subsystems), auth_certificate,
                               secrets.token_hex(_NONCE_BYTES), now.replace(microsecond=0))


def sign_registration(
    request: RegistrationRequest,
    *,
    auth_key: PrivateKey,
    sign_key: PrivateKey,
    sign_chain: Sequence[x509.Certificate],
) -> SignedRegistration:
    """Sign ``request`` with the new auth key and with the member's sign key."""
    if not sign_chain:
        raise ValueError("the sign certificate chain is empty")
    if auth_key.public_key() != request.auth_certificate.public_key():
        raise RegistrationSignatureInvalid("the auth key does not match the auth certificate")
    if sign_key.public_key() != sign_chain[0].public_key():
        raise RegistrationSignatureInvalid("the sign key does not match the sign certificate")
    payload = request.to_json_dict()
    return SignedRegistration(
        proof_of_possession=_sign(payload, auth_key, (request.auth_certificate,), POP_TYP),
        member_consent=_sign(payload, sign_key, sign_chain, CONSENT_TYP),
    )


def verify_registration(
    signed: SignedRegistration, *, trust_roots: Sequence[x509.Certificate], now: datetime
) -> VerifiedRegistration:
    """Check both signatures, both certificates and who they name; raise otherwise.

    In order: each token's header form, ``typ`` and ``x5c``; the auth certificate
    (``auth`` profile) and the sign certificate (``sign`` profile) chain to
    ``trust_roots`` and are valid at ``now``; each signature verifies with its
    certificate's key and pinned algorithm; both cover the same payload; the payload is
    a strict request whose auth certificate is the one that signed; the auth certificate
    names the requested node, the sign certificate its member, and every hosted
    subsystem belongs to that member. Freshness is ``check_fresh``'s job.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    pop = _parsed(signed.proof_of_possession, POP_TYP, "proof of possession")
    consent = _parsed(signed.member_consent, CONSENT_TYP, "member consent")
    pop_chain, consent_chain = _chain(pop, "proof of possession"), _chain(consent, "member consent")
    _verify_chain(pop_chain, "auth", trust_roots, now)
    _verify_chain(consent_chain, "sign", trust_roots, now)
    document = _verified_payload(pop, pop_chain[0], now, "proof of possession")
    if _verified_payload(consent, consent_chain[0], now, "member consent") != document:
        raise RegistrationSignatureInvalid("the two signatures cover different requests")
    request = RegistrationRequest.from_json_dict(document)
    if request.auth_certificate != pop_chain[0]:
        raise RegistrationSignatureInvalid(
            "the proof of possession is not signed by the requested auth certificate's key")
    sign_certificate = consent_chain[0]
    try:
        check_identity(request.auth_certificate, "auth", request.node)
        check_identity(sign_certificate, "sign", request.node.member)
    except IdentityMismatch as exc:
        raise RegistrationIdentityMismatch(str(exc)) from exc
    for subsystem in request.subsystems:
        if subsystem.member != request.node.member:
            raise RegistrationIdentityMismatch(
                f"subsystem {subsystem} does not belong to {request.node.member}, "
                "whose consent the request carries")
    return VerifiedRegistration(request, sign_certificate)


def check_fresh(
    request: RegistrationRequest, *, now: datetime, max_age: timedelta = MAX_REQUEST_AGE
) -> None:
    """Raise ``RegistrationStale`` unless ``request`` was issued within ``max_age`` of
    ``now`` (and at most ``MAX_CLOCK_SKEW`` ahead of it)."""
    if request.issued_at < now - max_age:
        raise RegistrationStale(f"the request was issued at {format_time(request.issued_at)}, "
                                f"more than {int(max_age.total_seconds())} s ago")
    if request.issued_at > now + MAX_CLOCK_SKEW:
        raise RegistrationStale("the request is issued in the future")


# -- internals ----------------------------------------------------------------------------


def _node(value: object, where: str) -> NodeId:
    try:
        return NodeId.parse(read_str(value, where))
    except IdentifierError as exc:
        raise FormatError(f"{where}: {exc}") from exc


def _subsystem(value: object, where: str) -> SubsystemId:
    try:
        return SubsystemId.parse(read_str(value, where))
    except IdentifierError as exc:
        raise FormatError(f"{where}: {exc}") from exc


def _sign(payload: dict[str, Any], key: PrivateKey, chain: Sequence[x509.Certificate],
          typ: str) -> str:
    try:
        return jws.sign(payload, key, typ=typ,
                        header={"x5c": [jws.certificate_der_base64(c) for c in chain]})
    except jws.SignatureInvalid as exc:
        raise RegistrationCertificateInvalid(f"unsupported certificate key: {exc}") from exc


def _parsed(token: str, typ: str, what: str) -> jws.Unverified:
    try:
        parsed = jws.parse(token, typ=typ, header={"x5c"})
    except jws.SignatureInvalid as exc:
        raise RegistrationSignatureInvalid(f"the {what} is refused: {exc}") from exc
    if set(parsed.header) != _HEADER_KEYS:
        raise RegistrationSignatureInvalid(
            f"the {what}'s header must hold exactly alg, typ and x5c")
    return parsed


def _chain(parsed: jws.Unverified, what: str) -> tuple[x509.Certificate, ...]:
    try:
        return jws.x5c_certificates(parsed.header)
    except jws.SignatureInvalid as exc:
        raise RegistrationSignatureInvalid(f"the {what}'s {exc}") from exc


def _verify_chain(
    chain: Sequence[x509.Certificate], profile: str, trust_roots: Sequence[x509.Certificate],
    now: datetime,
) -> None:
    try:
        verify_certificate(chain[0], trust_roots=trust_roots, now=now,
                           profile="auth" if profile == "auth" else "sign",
                           intermediates=chain[1:])
    except CertsError as exc:
        raise RegistrationCertificateInvalid(
            f"the {profile} certificate is not acceptable: {exc} [{exc.code}]") from exc


def _verified_payload(parsed: jws.Unverified, certificate: x509.Certificate, now: datetime,
                      what: str) -> dict[str, Any]:
    try:
        return parsed.verify(jws.PinnedKey(certificate), now=now).payload
    except jws.PayloadInvalid as exc:
        raise RegistrationRefused(f"malformed registration request: {exc}") from exc
    except jws.SignatureInvalid as exc:
        raise RegistrationSignatureInvalid(f"the {what}'s signature does not verify: {exc}"
                                           ) from exc

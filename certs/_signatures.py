"""Signing and verifying raw signatures with pinned algorithms (OCSP responses, CMS).

The algorithm is decided by the key type and a fixed table, never by the
message alone: a signature algorithm identifier that does not fit the signer's
key, or a hash weaker than SHA-256, is refused.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from certs.keys import PrivateKey, PublicKey

__all__ = [
    "DIGESTS",
    "SignatureRejected",
    "digest",
    "sign",
    "signature_algorithm_name",
    "verify_signature",
]

_Hash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512

# Dotted OID -> (key family, hash or None for Ed25519).
_ACCEPTED: dict[str, tuple[str, type[_Hash] | None]] = {
    SignatureAlgorithmOID.ECDSA_WITH_SHA256.dotted_string: ("ec", hashes.SHA256),
    SignatureAlgorithmOID.ECDSA_WITH_SHA384.dotted_string: ("ec", hashes.SHA384),
    SignatureAlgorithmOID.ECDSA_WITH_SHA512.dotted_string: ("ec", hashes.SHA512),
    SignatureAlgorithmOID.RSA_WITH_SHA256.dotted_string: ("rsa", hashes.SHA256),
    SignatureAlgorithmOID.RSA_WITH_SHA384.dotted_string: ("rsa", hashes.SHA384),
    SignatureAlgorithmOID.RSA_WITH_SHA512.dotted_string: ("rsa", hashes.SHA512),
    SignatureAlgorithmOID.ED25519.dotted_string: ("ed25519", None),
}
# Digest algorithms by their asn1crypto names (CMS digests, message imprints).
DIGESTS: dict[str, type[_Hash]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# asn1crypto's names for the algorithms we sign CMS with.
_CMS_NAMES = {"ec": "sha256_ecdsa", "rsa": "sha256_rsa", "ed25519": "ed25519"}


class SignatureRejected(Exception):
    """The signature is invalid or its algorithm is not accepted for this key."""


def _family(key: PrivateKey | PublicKey | object) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    raise SignatureRejected(f"unsupported key type {type(key).__name__}")


def digest(algorithm: str, data: bytes) -> bytes:
    """``data`` hashed with the named algorithm (``sha256``, ``sha384``, ``sha512``)."""
    try:
        hasher = hashes.Hash(DIGESTS[algorithm]())
    except KeyError:
        raise SignatureRejected(f"digest algorithm {algorithm} is not accepted") from None
    hasher.update(data)
    return hasher.finalize()


def signature_algorithm_name(key: PrivateKey) -> str:
    """The asn1crypto algorithm name :func:`sign` uses for ``key`` (SHA-256 or Ed25519)."""
    return _CMS_NAMES[_family(key)]


def sign(key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data`` with ECDSA/SHA-256, RSA PKCS#1 v1.5/SHA-256 or Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def verify_signature(public_key: object, signature: bytes, data: bytes, algorithm_oid: str) -> None:
    """Raise :class:`SignatureRejected` unless ``signature`` over ``data`` is valid.

    ``algorithm_oid`` is the dotted signature-algorithm OID the message claims;
    it must be in the accepted table and fit the key's type.
    """
    family = _family(public_key)
    accepted = _ACCEPTED.get(algorithm_oid)
    if accepted is None or accepted[0] != family:
        raise SignatureRejected(f"signature algorithm {algorithm_oid} is not accepted for this key")
    hash_type = accepted[1]
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and hash_type is not None:
            public_key.verify(signature, data, ec.ECDSA(hash_type()))
        elif isinstance(public_key, rsa.RSAPublicKey) and hash_type is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), hash_type())
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        else:
            raise SignatureRejected("signature algorithm does not fit the key")
    except (InvalidSignature, UnsupportedAlgorithm, ValueError) as exc:
        raise SignatureRejected("the signature is invalid") from exc

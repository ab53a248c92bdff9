"""Signing and verification of the global configuration as a compact JWS (RFC 7515).

The token is made by the JWS recipe of ``certs.jws``: ``ES256`` (ECDSA P-256 with
SHA-256, RFC 7518 §3.4) with the protected header exactly
``{"alg": "ES256", "typ": "renkei-globalconf+jws", "kid": <cert sha256>}`` and the
canonical JSON of the configuration as payload. Verification trusts only the anchor:
the key is looked up by ``kid`` among the anchor's certificates, never taken from the
token, and any other header (``jwk``, ``jku``, ``x5u``, ``x5c``, ``crit``, ...) is
refused.

This module and ``_certificates`` are the only ones in the package that touch key
objects; key generation for ``renkei registry init`` lives here for that reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certs import jws, keys
from certs.errors import CertsError
from member_registry._certificates import fingerprint
from member_registry._strict_json import FormatError, parse_time
from member_registry.anchor import Anchor
from member_registry.errors import (
    GlobalConfError,
    GlobalConfExpired,
    GlobalConfMalformed,
    GlobalConfRollback,
    GlobalConfSignatureInvalid,
    RegistryError,
)
from member_registry.globalconf import GlobalConf

__all__ = [
    "ALGORITHM",
    "JWS_TYPE",
    "MAX_CLOCK_SKEW",
    "SigningKey",
    "claimed_time",
    "generate_signing_identity",
    "load_certificate",
    "load_signing_key",
    "sign_global_conf",
    "verify_global_conf",
]

ALGORITHM = "ES256"
JWS_TYPE = "renkei-globalconf+jws"
MAX_CLOCK_SKEW = timedelta(seconds=60)
_HEADER_KEYS = frozenset({"alg", "typ", "kid"})

# The registry's key type, named here so other modules need not import key classes.
SigningKey = ec.EllipticCurvePrivateKey


def sign_global_conf(
    conf: GlobalConf, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
) -> str:
    """Sign ``conf`` as a compact JWS with the registry key matching ``certificate``."""
    _check_p256(key.public_key())
    if certificate.public_key() != key.public_key():
        # Publishing a configuration nobody can verify would take the federation down.
        raise RegistryError("the signing key does not match the verification certificate")
    return jws.sign(conf.to_json_dict(), key, typ=JWS_TYPE,
                    header={"kid": fingerprint(certificate)})


class _AnchorKeys(jws.KeyById):
    """The anchor's certificates by ``kid``; only P-256 keys sign configurations."""

    def key_for(
        self, header: Mapping[str, Any], now: datetime
    ) -> tuple[keys.PublicKey, x509.Certificate | None]:
        key, certificate = super().key_for(header, now)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise GlobalConfSignatureInvalid("the anchor's certificate is not a P-256 EC key")
        _check_p256(key)
        return key, certificate


def verify_global_conf(
    token: str, anchor: Anchor, *, now: datetime, min_version: int | None = None
) -> GlobalConf:
    """Verify a signed configuration against ``anchor`` and return it; raise otherwise.

    Checks, in order: header form (ES256, ``typ``, ``kid`` and nothing else), key chosen
    by ``kid`` among the anchor's certificates, signature, strict payload, instance,
    expiry at ``now`` and ``generated_at`` at most 60 s ahead, ``version > min_version``.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    try:
        document = jws.verify(
            token, typ=JWS_TYPE, trust=_AnchorKeys(anchor.verification_certificates), now=now
        ).payload
    except jws.PayloadInvalid as exc:
        raise GlobalConfMalformed(f"malformed global configuration: {exc}") from exc
    except jws.SignatureInvalid as exc:
        raise GlobalConfSignatureInvalid(f"the global configuration: {exc}") from exc
    conf = GlobalConf.from_json_dict(document)

    if conf.instance != anchor.instance:
        raise GlobalConfError(
            f"global configuration is for instance {conf.instance!r}, "
            f"the anchor for {anchor.instance!r}"
        )
    if conf.is_expired(now):
        raise GlobalConfExpired(f"global configuration version {conf.version} has expired")
    if conf.generated_at > now + MAX_CLOCK_SKEW:
        raise GlobalConfExpired(
            f"global configuration version {conf.version} is generated in the future"
        )
    if min_version is not None and conf.version <= min_version:
        raise GlobalConfRollback(
            f"global configuration version {conf.version} is not newer than {min_version}"
        )
    return conf


def claimed_time(token: str, claim: Literal["generated_at", "expires_at"]) -> datetime:
    """A time a configuration claims, read before it is verified, to choose the moment to
    verify it at: an export is read long after the configuration's ten-minute validity
    (its signature is what counts there), and a node's expired copy on disk still sets
    the version floor. Raises ``GlobalConfMalformed``."""
    try:
        claimed = jws.parse(token, typ=JWS_TYPE, header={"kid"}).unverified_payload()
        return parse_time(claimed.get(claim), claim)
    except (jws.SignatureInvalid, FormatError) as exc:
        raise GlobalConfMalformed(f"malformed global configuration: {exc}") from exc


def _check_p256(key: ec.EllipticCurvePublicKey) -> None:
    if not isinstance(key.curve, ec.SECP256R1):
        raise GlobalConfSignatureInvalid("ES256 needs a P-256 key")


# -- the registry's own key and certificate ----------------------------------------------


def generate_signing_identity(
    instance: str, now: datetime, *, lifetime: timedelta = timedelta(days=3650)
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new P-256 key and a self-signed verification certificate for the registry.

    The certificate carries no trust by itself: nodes trust it because the anchor holds it.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"{instance} global configuration signer"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, instance),
    ])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def load_signing_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePrivateKey:
    """Load the registry's unencrypted PEM P-256 signing key."""
    try:
        key = keys.load_private_key(Path(path))
    except CertsError as exc:
        raise RegistryError(f"cannot load the signing key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve,
                                                                         ec.SECP256R1):
        raise RegistryError(f"the signing key in {path} is not a P-256 key")
    return key


def load_certificate(path: str | os.PathLike[str]) -> x509.Certificate:
    try:
        return keys.load_certificate(Path(path))
    except CertsError as exc:
        raise RegistryError(f"cannot load the verification certificate: {exc}") from exc

"""Profiles of the CA's own service certificates: the OCSP responder and the TSA.

``ocsp``
    A delegated OCSP responder (RFC 6960 §4.2.2.2): ExtendedKeyUsage
    id-kp-OCSPSigning, plus id-pkix-ocsp-nocheck (§4.2.2.2.1) so that clients
    do not ask the responder about its own certificate.
``tsa``
    A time-stamping authority (RFC 3161 §2.3): ExtendedKeyUsage containing only
    id-kp-timeStamping, marked critical as the RFC requires.

Both are subject ``CN=<instance> Renkei OCSP|TSA, O=<instance>`` and carry no
SubjectAlternativeName: they are found through the global configuration.
"""

from __future__ import annotations

from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.keys import PublicKey

__all__ = ["SERVICE_PROFILES", "ServiceProfile", "service_extensions", "service_name"]

ServiceProfile = Literal["ocsp", "tsa"]
SERVICE_PROFILES: tuple[ServiceProfile, ...] = ("ocsp", "tsa")

_TITLES: dict[ServiceProfile, str] = {"ocsp": "Renkei OCSP", "tsa": "Renkei TSA"}
_MAX_COMMON_NAME = 64


def service_name(instance: str, profile: ServiceProfile) -> x509.Name:
    """The subject ``CN=<instance> Renkei OCSP|TSA, O=<instance>``."""
    common_name = f"{instance} {_TITLES[profile]}"[:_MAX_COMMON_NAME]
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, instance),
        ]
    )


def service_extensions(
    profile: ServiceProfile, public_key: PublicKey
) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions (with criticality) of a service certificate, AKI excluded."""
    common: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
    ]
    if profile == "ocsp":
        eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING])
        return [(_usage(), True), (eku, False), (x509.OCSPNoCheck(), False), *common]
    if profile == "tsa":
        # RFC 3161 §2.3: the only purpose, and critical.
        eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING])
        return [(_usage(content_commitment=True), True), (eku, True), *common]
    raise ValueError(f"unknown service profile {profile!r}")


def _usage(*, content_commitment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )

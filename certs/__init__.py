"""Renkei's instance PKI: keys, CA, certificate profiles, path validation, OCSP and time-stamps.

Names are imported on first use (PEP 562), so a command that needs one module
(``renkei --help``) does not pay for all of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from certs.ca import CertificateAuthority, CertStatus, IssuedRecord
    from certs.crl import check_not_revoked
    from certs.errors import (
        CaError,
        CaExists,
        CertificateError,
        CertificateExpired,
        CertificateNotYetValid,
        CertificateRevoked,
        CertsError,
        CsrError,
        IdentityMismatch,
        KeyFileError,
        OcspError,
        OcspFutureDated,
        OcspInvalid,
        OcspRevoked,
        OcspStale,
        OcspUnauthorized,
        OcspUnavailable,
        OcspUnknown,
        TimestampInvalid,
        TsaError,
        UnknownSerial,
        UntrustedCertificate,
        WrongKeyUsage,
    )
    from certs.keys import (
        KeyAlgorithm,
        PrivateKey,
        PublicKey,
        certificate_pem,
        fingerprint,
        generate_key,
        load_certificate,
        load_certificates,
        load_private_key,
        parse_certificate_pem,
        save_certificate,
        save_private_key,
    )
    from certs.ocsp import OcspStatus, verify_ocsp_response
    from certs.ocsp_client import fetch_ocsp_response
    from certs.profiles import Profile, identity_of, make_csr, member_id_of, node_id_of
    from certs.service_profiles import ServiceProfile
    from certs.stapling import OwnStatusStapler, PeerStatusCache, StapledResponse
    from certs.timestamps import verify_timestamp_token
    from certs.tsa_client import request_timestamp
    from certs.validation import check_identity, verify_certificate

__all__ = [
    "CaError",
    "CaExists",
    "CertStatus",
    "CertificateAuthority",
    "CertificateError",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateRevoked",
    "CertsError",
    "CsrError",
    "IdentityMismatch",
    "IssuedRecord",
    "KeyAlgorithm",
    "KeyFileError",
    "OcspError",
    "OcspFutureDated",
    "OcspInvalid",
    "OcspRevoked",
    "OcspStale",
    "OcspStatus",
    "OcspUnauthorized",
    "OcspUnavailable",
    "OcspUnknown",
    "OwnStatusStapler",
    "PeerStatusCache",
    "PrivateKey",
    "Profile",
    "PublicKey",
    "ServiceProfile",
    "StapledResponse",
    "TimestampInvalid",
    "TsaError",
    "UnknownSerial",
    "UntrustedCertificate",
    "WrongKeyUsage",
    "certificate_pem",
    "check_identity",
    "check_not_revoked",
    "fetch_ocsp_response",
    "fingerprint",
    "generate_key",
    "identity_of",
    "load_certificate",
    "load_certificates",
    "load_private_key",
    "make_csr",
    "member_id_of",
    "node_id_of",
    "parse_certificate_pem",
    "request_timestamp",
    "save_certificate",
    "save_private_key",
    "verify_certificate",
    "verify_ocsp_response",
    "verify_timestamp_token",
]

_WHERE = {
    "CaError": "certs.errors",
    "CaExists": "certs.errors",
    "CertStatus": "certs.ca",
    "CertificateAuthority": "certs.ca",
    "CertificateError": "certs.errors",
    "CertificateExpired": "certs.errors",
    "CertificateNotYetValid": "certs.errors",
    "CertificateRevoked": "certs.errors",
    "CertsError": "certs.errors",
    "CsrError": "certs.errors",
    "IdentityMismatch": "certs.errors",
    "IssuedRecord": "certs.ca",
    "KeyAlgorithm": "certs.keys",
    "KeyFileError": "certs.errors",
    "OcspError": "certs.errors",
    "OcspFutureDated": "certs.errors",
    "OcspInvalid": "certs.errors",
    "OcspRevoked": "certs.errors",
    "OcspStale": "certs.errors",
    "OcspStatus": "certs.ocsp",
    "OcspUnauthorized": "certs.errors",
    "OcspUnavailable": "certs.errors",
    "OcspUnknown": "certs.errors",
    "OwnStatusStapler": "certs.stapling",
    "PeerStatusCache": "certs.stapling",
    "PrivateKey": "certs.keys",
    "Profile": "certs.profiles",
    "PublicKey": "certs.keys",
    "ServiceProfile": "certs.service_profiles",
    "StapledResponse": "certs.stapling",
    "TimestampInvalid": "certs.errors",
    "TsaError": "certs.errors",
    "UnknownSerial": "certs.errors",
    "UntrustedCertificate": "certs.errors",
    "WrongKeyUsage": "certs.errors",
    "certificate_pem": "certs.keys",
    "check_identity": "certs.validation",
    "check_not_revoked": "certs.crl",
    "fetch_ocsp_response": "certs.ocsp_client",
    "fingerprint": "certs.keys",
    "generate_key": "certs.keys",
    "identity_of": "certs.profiles",
    "load_certificate": "certs.keys",
    "load_certificates": "certs.keys",
    "load_private_key": "certs.keys",
    "make_csr": "certs.profiles",
    "member_id_of": "certs.profiles",
    "node_id_of": "certs.profiles",
    "parse_certificate_pem": "certs.keys",
    "request_timestamp": "certs.tsa_client",
    "save_certificate": "certs.keys",
    "save_private_key": "certs.keys",
    "verify_certificate": "certs.validation",
    "verify_ocsp_response": "certs.ocsp",
    "verify_timestamp_token": "certs.timestamps",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

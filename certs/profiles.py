"""Certificate profiles: how an identity and a purpose are bound into a certificate.

Two profiles exist (DESIGN §3):

``auth``
    A node's TLS certificate, client and server. Identity: a :class:`NodeId`.
``sign``
    A member's message-signing certificate. Identity: a :class:`MemberId`.

The identity is bound twice, and both must agree: the subject is
``CN=<identifier>, O=<instance>`` and the only SubjectAlternativeName is the URI
``urn:renkei:node:<NodeId>`` or ``urn:renkei:member:<MemberId>``. There are no
DNS or IP names: peers pin auth certificates by fingerprint, not by hostname.
"""

from __future__ import annotations

from typing import Literal, overload

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.errors import CsrError, IdentityMismatch, KeyFileError
from certs.identifiers import IdentifierError, MemberId, NodeId
from certs.keys import PrivateKey, PublicKey, check_supported_key, signature_hash

__all__ = [
    "PROFILES",
    "Profile",
    "bound_identity",
    "identity_name",
    "identity_of",
    "identity_uri",
    "make_csr",
    "member_id_of",
    "node_id_of",
    "profile_extensions",
]

Profile = Literal["auth", "sign"]
PROFILES: tuple[Profile, ...] = ("auth", "sign")

_URI_PREFIX: dict[Profile, str] = {
    "auth": "urn:renkei:node:",
    "sign": "urn:renkei:member:",
}
# RFC 5280 upper bound for a commonName (ub-common-name).
_MAX_COMMON_NAME = 64


def _identity_type(profile: Profile) -> type[NodeId] | type[MemberId]:
    if profile == "auth":
        return NodeId
    if profile == "sign":
        return MemberId
    raise ValueError(f"unknown certificate profile {profile!r}")


def identity_uri(identity: NodeId | MemberId) -> str:
    """The SubjectAlternativeName URI that binds ``identity``."""
    profile: Profile = "auth" if isinstance(identity, NodeId) else "sign"
    return f"{_URI_PREFIX[profile]}{identity}"


def identity_name(identity: NodeId | MemberId) -> x509.Name:
    """The subject name ``CN=<identifier>, O=<instance>``."""
    common_name = str(identity)
    if len(common_name) > _MAX_COMMON_NAME:
        raise CsrError(
            f"identifier {common_name!r} is longer than {_MAX_COMMON_NAME} characters, "
            "the limit for a certificate common name"
        )
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.instance),
        ]
    )


def _check_profile_fits(identity: NodeId | MemberId, profile: Profile) -> None:
    expected = _identity_type(profile)
    if type(identity) is not expected:
        raise CsrError(
            f"profile {profile!r} needs a {expected.kind} identifier, got {identity.kind} "
            f"{identity}"
        )


def profile_extensions(
    profile: Profile, identity: NodeId | MemberId, public_key: PublicKey
) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions (with criticality) a certificate of ``profile`` carries.

    The CA builds these itself and never copies extensions from a CSR. The
    authority key identifier is the CA's business and is not included.
    """
    _check_profile_fits(identity, profile)
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity_uri(identity))])
    common: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (san, False),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
    ]
    if profile == "auth":
        usage = _key_usage(digital_signature=True, key_encipherment=is_rsa)
        eku = x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        )
        return [(usage, True), (eku, False), *common]
    usage = _key_usage(digital_signature=True, content_commitment=True)
    return [(usage, True), *common]


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def make_csr(
    key: PrivateKey, identity: NodeId | MemberId, profile: Profile
) -> x509.CertificateSigningRequest:
    """A CSR for ``identity`` under ``profile``, signed by ``key`` (proof of possession)."""
    _check_profile_fits(identity, profile)
    try:
        check_supported_key(key)
    except KeyFileError as exc:
        raise CsrError(str(exc)) from exc
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity_uri(identity))])
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(identity_name(identity))
        .add_extension(san, critical=False)
    )
    return builder.sign(key, signature_hash(key))


def bound_identity(
    subject: x509.Name, extensions: x509.Extensions, profile: Profile
) -> NodeId | MemberId:
    """Read the identity bound by ``subject`` and the SAN in ``extensions``.

    Shared by certificates and CSRs. Anything but exactly one SAN URI of the
    profile's kind, exactly one CN equal to it and exactly one O equal to its
    instance is an :class:`IdentityMismatch`.
    """
    identity_type = _identity_type(profile)
    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise IdentityMismatch("no SubjectAlternativeName binds an identity") from exc
    names = list(san)
    if len(names) != 1 or not isinstance(names[0], x509.UniformResourceIdentifier):
        raise IdentityMismatch("the SubjectAlternativeName must be exactly one URI")
    uri = names[0].value
    prefix = _URI_PREFIX[profile]
    if not uri.startswith(prefix):
        raise IdentityMismatch(f"SAN URI {uri!r} is not a {profile}-profile identity ({prefix}...)")
    try:
        identity = identity_type.parse(uri[len(prefix) :])
    except IdentifierError as exc:
        raise IdentityMismatch(f"SAN URI {uri!r}: {exc}") from exc

    common_names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    organisations = subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if len(subject) != 2 or len(common_names) != 1 or len(organisations) != 1:
        raise IdentityMismatch("the subject must be exactly CN=<identifier>, O=<instance>")
    if common_names[0].value != str(identity):
        raise IdentityMismatch(
            f"subject CN {common_names[0].value!r} does not match SAN identity {identity}"
        )
    if organisations[0].value != identity.instance:
        raise IdentityMismatch(
            f"subject O {organisations[0].value!r} does not match instance {identity.instance}"
        )
    return identity


@overload
def identity_of(cert: x509.Certificate, profile: Literal["auth"]) -> NodeId: ...
@overload
def identity_of(cert: x509.Certificate, profile: Literal["sign"]) -> MemberId: ...
@overload
def identity_of(cert: x509.Certificate, profile: Profile) -> NodeId | MemberId: ...
def identity_of(cert: x509.Certificate, profile: Profile) -> NodeId | MemberId:
    """The node (``auth``) or member (``sign``) the certificate is bound to."""
    try:
        extensions = cert.extensions
    except (ValueError, x509.DuplicateExtension) as exc:
        raise IdentityMismatch("the certificate's extensions cannot be parsed") from exc
    return bound_identity(cert.subject, extensions, profile)


def node_id_of(cert: x509.Certificate) -> NodeId:
    """The node an auth certificate belongs to."""
    return identity_of(cert, "auth")


def member_id_of(cert: x509.Certificate) -> MemberId:
    """The member a sign certificate belongs to."""
    return identity_of(cert, "sign")

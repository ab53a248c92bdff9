"""Keys, certificates and signed registration requests for the registration tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from certs.ca import CertificateAuthority
from certs.identifiers import MemberId, NodeId, SubsystemId
from certs.keys import KeyAlgorithm, PrivateKey, generate_key
from certs.profiles import make_csr
from member_registry.registration_request import (
    RegistrationRequest,
    SignedRegistration,
    new_registration_request,
    sign_registration,
)
from tests.unit.member_registry.registry_samples import NOW

CLINIC = MemberId.parse("RENKEI/GOV/CLINIC")
CLINIC_NODE = NodeId.parse("RENKEI/GOV/CLINIC/ss1")
CLINIC_EHR = SubsystemId.parse("RENKEI/GOV/CLINIC/EHR")
OTHER_MEMBER = MemberId.parse("RENKEI/GOV/OTHER")


@dataclass(frozen=True)
class Credentials:
    """A node's new auth key and certificate and its member's sign key and certificate."""

    auth_key: PrivateKey
    auth_certificate: x509.Certificate
    sign_key: PrivateKey
    sign_certificate: x509.Certificate


def issue(
    ca: CertificateAuthority, identity: NodeId | MemberId, *, now: datetime = NOW,
    algorithm: KeyAlgorithm = "ec-p256", days: int = 365,
) -> tuple[PrivateKey, x509.Certificate]:
    key = generate_key(algorithm)
    if isinstance(identity, NodeId):
        csr = make_csr(key, identity, "auth")
        return key, ca.issue(csr, profile="auth", now=now, validity_days=days)
    csr = make_csr(key, identity, "sign")
    return key, ca.issue(csr, profile="sign", now=now, validity_days=days)


def credentials(
    ca: CertificateAuthority, node: NodeId = CLINIC_NODE, member: MemberId | None = None,
    *, sign_algorithm: KeyAlgorithm = "ec-p256", now: datetime = NOW,
) -> Credentials:
    auth_key, auth_certificate = issue(ca, node, now=now)
    sign_key, sign_certificate = issue(ca, member or node.member, now=now,
                                       algorithm=sign_algorithm)
    return Credentials(auth_key, auth_certificate, sign_key, sign_certificate)


def request_for(
    creds: Credentials, node: NodeId = CLINIC_NODE, *, now: datetime = NOW,
    subsystems: tuple[SubsystemId, ...] = (CLINIC_EHR,),
) -> RegistrationRequest:
    return new_registration_request(node, "127.0.0.1", 5500, subsystems,
                                    creds.auth_certificate, now=now)


def signed_request(
    creds: Credentials, node: NodeId = CLINIC_NODE, *, now: datetime = NOW,
    subsystems: tuple[SubsystemId, ...] = (CLINIC_EHR,),
) -> SignedRegistration:
    return sign_registration(request_for(creds, node, now=now, subsystems=subsystems),
                             auth_key=creds.auth_key, sign_key=creds.sign_key,
                             sign_chain=(creds.sign_certificate,))

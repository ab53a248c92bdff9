"""Registration requests at the registry: pending, approval, rejection, auto-approval, rotation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from certs.ca import CertificateAuthority
from certs.identifiers import NodeId, SubsystemId
from member_registry._certificates import fingerprint
from member_registry.errors import (
    AlreadyExists,
    ConfigurationError,
    NotFound,
    RegistrationCertificateInvalid,
    RegistrationDecided,
    RegistrationReplayed,
    RegistrationStale,
    RegistrationUnknownMember,
    ValidationError,
)
from member_registry.registration import (
    AutoApprovePolicy,
    RegistrationService,
    parse_status,
)
from member_registry.service import RegistryService
from tests.unit.member_registry.registration_samples import (
    CLINIC,
    CLINIC_EHR,
    CLINIC_NODE,
    credentials,
    signed_request,
)
from tests.unit.member_registry.registry_samples import NOW


@pytest.fixture
async def registry(service: RegistryService, instance_ca: CertificateAuthority) -> RegistryService:
    await service.add_trusted_ca(instance_ca.certificate)
    await service.add_member(CLINIC, "Clinic")
    return service


def _desk(engine: AsyncEngine, policy: AutoApprovePolicy | None = None) -> RegistrationService:
    return RegistrationService(engine, instance="RENKEI", policy=policy)


async def test_submit_then_approve_adds_the_node(
    registry: RegistryService, engine: AsyncEngine, instance_ca: CertificateAuthority
) -> None:
    desk = _desk(engine)
    creds = credentials(instance_ca)
    pending = await desk.submit(signed_request(creds), now=NOW)
    assert pending.status == "pending"
    assert pending.auth_fingerprint == fingerprint(creds.auth_certificate)
    assert (await registry.build_global_conf(NOW)).nodes == ()
    assert [r.id for r in await desk.list("pending")] == [pending.id]

    approved = await desk.approve(pending.id, now=NOW + timedelta(hours=1))
    assert approved.status == "approved"
    assert approved.decided_by == "admin"
    assert await desk.list("pending") == ()
    conf = await registry.build_global_conf(NOW + timedelta(hours=1))
    node = conf.node(CLINIC_NODE)
    assert node is not None
    assert node.auth_cert_sha256 == (fingerprint(creds.auth_certificate),)
    assert node.subsystems == (CLINIC_EHR,)
    assert (node.address, node.peer_port) == ("127.0.0.1", 5500)
    assert conf.has_subsystem(CLINIC_EHR)  # created for the member on approval
    assert (await desk.get(pending.id)).to_json_dict()["status"] == "approved"


async def test_reject(registry: RegistryService, engine: AsyncEngine,
                      instance_ca: CertificateAuthority) -> None:
    desk = _desk(engine)
    pending = await desk.submit(signed_request(credentials(instance_ca)), now=NOW)
    rejected = await desk.reject(pending.id, now=NOW)
    assert rejected.status == "rejected"
    assert (await registry.build_global_conf(NOW)).nodes == ()
    with pytest.raises(RegistrationDecided) as caught:
        await desk.approve(pending.id, now=NOW)
    assert caught.value.code == "registry.registration_decided"
    with pytest.raises(NotFound):
        await desk.approve(pending.id + 100, now=NOW)


async def test_replayed_request(registry: RegistryService, engine: AsyncEngine,
                                instance_ca: CertificateAuthority) -> None:
    desk = _desk(engine)
    signed = signed_request(credentials(instance_ca))
    await desk.submit(signed, now=NOW)
    with pytest.raises(RegistrationReplayed) as caught:
        await desk.submit(signed, now=NOW + timedelta(seconds=5))
    assert caught.value.code == "registry.registration_replayed"


async def test_stale_request(registry: RegistryService, engine: AsyncEngine,
                             instance_ca: CertificateAuthority) -> None:
    with pytest.raises(RegistrationStale):
        await _desk(engine).submit(signed_request(credentials(instance_ca)),
                                   now=NOW + timedelta(minutes=10))


async def test_unknown_member(registry: RegistryService, engine: AsyncEngine,
                              instance_ca: CertificateAuthority) -> None:
    node = NodeId.parse("RENKEI/GOV/NOBODY/ss1")
    signed = signed_request(credentials(instance_ca, node), node,
                            subsystems=(SubsystemId.parse("RENKEI/GOV/NOBODY/X"),))
    with pytest.raises(RegistrationUnknownMember) as caught:
        await _desk(engine).submit(signed, now=NOW)
    assert caught.value.code == "registry.registration_unknown_member"


async def test_untrusted_without_trusted_cas(service: RegistryService, engine: AsyncEngine,
                                             instance_ca: CertificateAuthority) -> None:
    await service.add_member(CLINIC, "Clinic")
    with pytest.raises(RegistrationCertificateInvalid):
        await _desk(engine).submit(signed_request(credentials(instance_ca)), now=NOW)


async def test_approval_verifies_again(registry: RegistryService, engine: AsyncEngine,
                                       instance_ca: CertificateAuthority) -> None:
    desk = _desk(engine)
    pending = await desk.submit(signed_request(credentials(instance_ca)), now=NOW)
    with pytest.raises(RegistrationCertificateInvalid, match="expired"):
        await desk.approve(pending.id, now=NOW + timedelta(days=400))
    assert (await desk.get(pending.id)).status == "pending"
    assert (await registry.build_global_conf(NOW)).nodes == ()


@pytest.mark.parametrize("entries", [["RENKEI/GOV/CLINIC"], ["*"]])
async def test_auto_approve(registry: RegistryService, engine: AsyncEngine,
                            instance_ca: CertificateAuthority, entries: list[str]) -> None:
    desk = _desk(engine, AutoApprovePolicy.parse(entries))
    registration = await desk.submit(signed_request(credentials(instance_ca)), now=NOW)
    assert registration.status == "approved"
    assert registration.decided_by == "auto-approve"
    assert (await registry.build_global_conf(NOW)).node(CLINIC_NODE) is not None


async def test_auto_approve_covers_listed_members_only(
    registry: RegistryService, engine: AsyncEngine, instance_ca: CertificateAuthority
) -> None:
    desk = _desk(engine, AutoApprovePolicy.parse(["RENKEI/GOV/HOSP-A"]))
    registration = await desk.submit(signed_request(credentials(instance_ca)), now=NOW)
    assert registration.status == "pending"


def test_auto_approve_policy_parsing() -> None:
    assert not AutoApprovePolicy().approves(CLINIC)
    assert AutoApprovePolicy.parse(["*"]).approves(CLINIC)
    with pytest.raises(ConfigurationError):
        AutoApprovePolicy.parse(["not a member"])
    assert parse_status(None) is None
    assert parse_status("all") is None
    assert parse_status("pending") == "pending"
    with pytest.raises(ValidationError):
        parse_status("maybe")


async def test_renewal_overlaps_then_removes_the_old_certificate(
    registry: RegistryService, engine: AsyncEngine, instance_ca: CertificateAuthority
) -> None:
    desk = _desk(engine, AutoApprovePolicy.parse(["*"]))
    old, new = credentials(instance_ca), credentials(instance_ca)
    await desk.submit(signed_request(old), now=NOW)
    await desk.submit(signed_request(new), now=NOW)
    node = (await registry.build_global_conf(NOW)).node(CLINIC_NODE)
    assert node is not None
    assert set(node.auth_cert_sha256) == {fingerprint(old.auth_certificate),
                                          fingerprint(new.auth_certificate)}
    assert node.subsystems == (CLINIC_EHR,)  # hosting is not duplicated

    await registry.remove_node_auth_certificate(CLINIC_NODE, fingerprint(old.auth_certificate))
    node = (await registry.build_global_conf(NOW)).node(CLINIC_NODE)
    assert node is not None
    assert node.auth_cert_sha256 == (fingerprint(new.auth_certificate),)


async def test_listed_certificate_is_a_conflict(
    registry: RegistryService, engine: AsyncEngine, instance_ca: CertificateAuthority
) -> None:
    creds = credentials(instance_ca)
    desk = _desk(engine)
    first = await desk.submit(signed_request(creds), now=NOW)
    second = await desk.submit(signed_request(creds), now=NOW)  # same certificate, new nonce
    await desk.approve(first.id, now=NOW)
    with pytest.raises(AlreadyExists):
        await desk.approve(second.id, now=NOW)
    with pytest.raises(AlreadyExists):
        await desk.submit(signed_request(creds), now=NOW)

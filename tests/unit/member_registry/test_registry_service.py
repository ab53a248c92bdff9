from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from certs.ca import CertificateAuthority
from certs.identifiers import GlobalGroupId, MemberId, NodeId, SubsystemId
from member_registry._certificates import fingerprint
from member_registry.anchor import Anchor
from member_registry.errors import AlreadyExists, NotFound, RegistryError, ValidationError
from member_registry.globalconf import Settings
from member_registry.service import RegistryService
from member_registry.signing import generate_signing_identity, verify_global_conf
from tests.unit.member_registry.registry_samples import (
    CITY,
    EHR,
    HOSP_A,
    NODE1,
    NOW,
    PLANNING,
    TRANSIT,
    issue_auth_certificate,
    make_certificate,
)


async def _populate(service: RegistryService, ca: x509.Certificate,
                    auth: x509.Certificate) -> None:
    await service.add_member(HOSP_A, "Hospital A")
    await service.add_member(CITY, "City")
    await service.add_subsystem(EHR)
    await service.add_subsystem(PLANNING)
    await service.add_node(NODE1, "127.0.0.1", 5500)
    await service.add_node_auth_certificate(NODE1, auth)
    await service.add_hosted_subsystem(NODE1, EHR)
    await service.add_global_group(TRANSIT, "Transit partners")
    await service.add_group_member(TRANSIT, PLANNING)
    await service.add_trusted_ca(ca, ["http://127.0.0.1:8888"])
    await service.add_tsa("TSA", "http://127.0.0.1:8889", ca)


async def test_entities_show_up_in_the_configuration(
    service: RegistryService, ca_certificate: x509.Certificate,
    auth_certificate: x509.Certificate,
) -> None:
    await _populate(service, ca_certificate, auth_certificate)
    conf = await service.build_global_conf(NOW)
    assert conf.version == 1
    assert conf.instance == "RENKEI"
    assert conf.expires_at == NOW + timedelta(seconds=600)
    assert [m.id for m in conf.members] == [CITY, HOSP_A]
    assert conf.has_subsystem(EHR)
    assert conf.node_by_fingerprint(fingerprint(auth_certificate)) == conf.node(NODE1)
    assert conf.is_hosted_on(EHR, NODE1)
    assert conf.groups_of(PLANNING) == frozenset({TRANSIT})
    assert conf.trust_roots() == (ca_certificate,)
    assert conf.trusted_cas[0].ocsp_urls == ("http://127.0.0.1:8888",)
    assert conf.tsas[0].name == "TSA"
    assert [m.id for m in await service.list_members()] == [CITY, HOSP_A]
    assert await service.list_subsystems() == (PLANNING, EHR)
    assert (await service.list_nodes())[0].auth_cert_sha256 == (fingerprint(auth_certificate),)
    assert (await service.list_global_groups())[0].members == (PLANNING,)
    assert len(await service.list_trusted_cas()) == 1
    assert len(await service.list_tsas()) == 1


async def test_publish_signs_strictly_increasing_versions(
    service: RegistryService, anchor: Anchor, ca_certificate: x509.Certificate,
    auth_certificate: x509.Certificate,
) -> None:
    await _populate(service, ca_certificate, auth_certificate)
    first = verify_global_conf(await service.publish(NOW), anchor, now=NOW)
    second = verify_global_conf(await service.publish(NOW), anchor, now=NOW,
                                min_version=first.version)
    assert (first.version, second.version) == (1, 2)
    assert [p.version for p in await service.list_published()] == [1, 2]
    assert (await service.build_global_conf(NOW)).version == 3


async def test_current_republishes_only_when_needed(
    service: RegistryService, anchor: Anchor
) -> None:
    token = await service.current(NOW)
    assert verify_global_conf(token, anchor, now=NOW).version == 1
    # Unchanged and fresh: the same token.
    assert await service.current(NOW + timedelta(seconds=299)) == token
    # Less than half of the validity left: a new version.
    later = await service.current(NOW + timedelta(seconds=301))
    assert verify_global_conf(later, anchor, now=NOW + timedelta(seconds=301)).version == 2
    # Data changed: a new version at once.
    await service.add_member(HOSP_A, "Hospital A")
    changed = verify_global_conf(await service.current(NOW + timedelta(seconds=302)), anchor,
                                 now=NOW + timedelta(seconds=302))
    assert changed.version == 3
    assert changed.member(HOSP_A) is not None


async def test_settings_override_the_defaults(service: RegistryService) -> None:
    assert await service.get_settings() == Settings()
    custom = Settings(refresh_interval_s=30, validity_s=120, ocsp_freshness_s=600,
                      timestamping_interval_s=10)
    await service.update_settings(custom)
    assert await service.get_settings() == custom
    conf = await service.build_global_conf(NOW)
    assert conf.settings == custom
    assert conf.expires_at == NOW + timedelta(seconds=120)


async def test_duplicates_are_rejected(
    service: RegistryService, ca_certificate: x509.Certificate,
    auth_certificate: x509.Certificate,
) -> None:
    await _populate(service, ca_certificate, auth_certificate)
    attempts = [
        service.add_member(HOSP_A, "Again"),
        service.add_subsystem(EHR),
        service.add_node(NODE1, "127.0.0.1", 5501),
        service.add_node_auth_certificate(NODE1, auth_certificate),
        service.add_hosted_subsystem(NODE1, EHR),
        service.add_global_group(TRANSIT, "again"),
        service.add_group_member(TRANSIT, PLANNING),
        service.add_trusted_ca(ca_certificate, []),
        service.add_tsa("TSA", "http://127.0.0.1:1", ca_certificate),
    ]
    for attempt in attempts:
        with pytest.raises(AlreadyExists) as info:
            await attempt
        assert info.value.code == "registry.conflict"


async def test_auth_certificates_must_be_bound_to_the_node(
    service: RegistryService, ca_certificate: x509.Certificate,
    auth_certificate: x509.Certificate,
) -> None:
    await _populate(service, ca_certificate, auth_certificate)
    other = NodeId.parse("RENKEI/GOV/CITY/node1")
    await service.add_node(other, "127.0.0.2", 5500)
    with pytest.raises(ValidationError, match="not an auth certificate of"):
        await service.add_node_auth_certificate(other, auth_certificate)
    with pytest.raises(ValidationError, match="not an auth certificate of"):
        await service.add_node_auth_certificate(other, make_certificate("plain"))


async def test_auth_certificates_must_chain_to_a_trusted_ca(
    service: RegistryService, instance_ca: CertificateAuthority, tmp_path: Path
) -> None:
    await service.add_member(CITY, "City")
    node = NodeId.parse("RENKEI/GOV/CITY/node1")
    await service.add_node(node, "127.0.0.2", 5500)
    certificate = issue_auth_certificate(instance_ca, node)
    # No trusted CA yet: nothing can be trusted.
    with pytest.raises(ValidationError, match="not acceptable"):
        await service.add_node_auth_certificate(node, certificate, now=NOW)
    rogue = CertificateAuthority.create(tmp_path / "rogue", instance="RENKEI", now=NOW)
    await service.add_trusted_ca(rogue.certificate)
    with pytest.raises(ValidationError, match="not acceptable"):
        await service.add_node_auth_certificate(node, certificate, now=NOW)
    await service.add_trusted_ca(instance_ca.certificate)
    with pytest.raises(ValidationError, match="not acceptable"):
        await service.add_node_auth_certificate(node, certificate,
                                                now=NOW + timedelta(days=400))
    assert await service.add_node_auth_certificate(node, certificate, now=NOW) == fingerprint(
        certificate)


async def test_unknown_references_are_rejected(service: RegistryService,
                                               instance_ca: CertificateAuthority) -> None:
    await service.add_member(HOSP_A, "Hospital A")
    await service.add_node(NODE1, "127.0.0.1", 5500)
    unknown_node = NodeId.parse("RENKEI/GOV/HOSP-A/n9")
    attempts = [
        service.add_node_auth_certificate(unknown_node,
                                          issue_auth_certificate(instance_ca, unknown_node)),
        service.add_subsystem(SubsystemId.parse("RENKEI/GOV/NOBODY/X")),
        service.add_node(NodeId.parse("RENKEI/GOV/NOBODY/n"), "127.0.0.1", 5500),
        service.add_hosted_subsystem(NODE1, EHR),
        service.add_hosted_subsystem(NodeId.parse("RENKEI/GOV/HOSP-A/n9"), EHR),
        service.add_group_member(TRANSIT, EHR),
        service.remove_node_auth_certificate(NODE1, "ab" * 32),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound) as info:
            await attempt
        assert info.value.code == "registry.not_found"


async def test_remove_auth_certificate(
    service: RegistryService, ca_certificate: x509.Certificate,
    auth_certificate: x509.Certificate,
) -> None:
    await _populate(service, ca_certificate, auth_certificate)
    sha256 = fingerprint(auth_certificate)
    with pytest.raises(NotFound):
        await service.remove_node_auth_certificate(NodeId.parse("RENKEI/GOV/CITY/n"), sha256)
    await service.remove_node_auth_certificate(NODE1, sha256.upper())
    assert (await service.build_global_conf(NOW)).node_by_fingerprint(sha256) is None


async def test_invalid_input_is_rejected(
    service: RegistryService, auth_certificate: x509.Certificate
) -> None:
    await service.add_member(HOSP_A, "Hospital A")
    attempts = [
        service.add_member(MemberId.parse("OTHER/GOV/X"), "Elsewhere"),
        service.add_member(CITY, "   "),
        service.add_member(CITY, "bad\nname"),
        service.add_node(NODE1, "127.0.0.1", 0),
        service.add_node(NODE1, "127.0.0.1", 65536),
        service.add_node(NODE1, "127.0.0.1", True),
        service.add_node(NODE1, "host name", 5500),
        service.add_node(NODE1, "", 5500),
        service.add_global_group(GlobalGroupId.parse("OTHER/g"), "elsewhere"),
        service.add_trusted_ca(auth_certificate, []),
        service.add_trusted_ca(make_certificate("ca", ca=True), ["ftp://x"]),
        service.add_tsa("TSA", "not a url", auth_certificate),
        service.remove_node_auth_certificate(NODE1, "zz"),
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError) as info:
            await attempt
        assert info.value.code == "registry.bad_request"


async def test_mismatched_signing_identity_is_refused(
    service: RegistryService, registry_identity: tuple[object, x509.Certificate]
) -> None:
    other_key, _ = generate_signing_identity("RENKEI", NOW)
    with pytest.raises(RegistryError, match="does not match"):
        RegistryService(service._engine, other_key, registry_identity[1], "RENKEI")


async def test_naive_now_is_refused(service: RegistryService) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await service.publish(NOW.replace(tzinfo=None))


async def test_concurrent_downloads_publish_one_version(service: RegistryService) -> None:
    tokens = await asyncio.gather(*(service.current(NOW) for _ in range(5)))
    assert len(set(tokens)) == 1
    assert [p.version for p in await service.list_published()] == [1]

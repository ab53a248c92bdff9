from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509

from certs.identifiers import MemberId, NodeId, SubsystemId
from member_registry._certificates import fingerprint
from member_registry.errors import GlobalConfMalformed
from member_registry.globalconf import GlobalConf, Member, Node
from tests.unit.member_registry.registry_samples import (
    CITY,
    EHR,
    HOSP_A,
    NODE1,
    NOW,
    PLANNING,
    TRANSIT,
)


def test_json_round_trip(sample_conf: GlobalConf) -> None:
    document = json.loads(json.dumps(sample_conf.to_json_dict()))
    assert GlobalConf.from_json_dict(document) == sample_conf


def test_json_form_matches_the_contract(sample_conf: GlobalConf) -> None:
    d = sample_conf.to_json_dict()
    assert d["format"] == "renkei-globalconf/1"
    assert d["generated_at"] == "2026-11-24T10:00:00Z"
    assert d["expires_at"] == "2026-11-24T10:10:00Z"
    assert d["members"][0] == {"id": "RENKEI/GOV/HOSP-A", "name": "Hospital A",
                               "subsystems": ["RENKEI/GOV/HOSP-A/EHR"]}
    assert d["nodes"][0]["peer_port"] == 5500
    assert d["trusted_cas"][0]["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert d["settings"] == {"refresh_interval_s": 60, "validity_s": 600,
                             "ocsp_freshness_s": 3600, "timestamping_interval_s": 60}


def test_subsystem_names_round_trip_and_are_written_only_when_set(
    sample_conf: GlobalConf,
) -> None:
    named = replace(sample_conf, members=(
        Member(HOSP_A, "Hospital A", (EHR,), {EHR: "Electronic health records"}),
        *sample_conf.members[1:],
    ))
    d = named.to_json_dict()
    assert d["members"][0]["subsystem_names"] == {str(EHR): "Electronic health records"}
    assert "subsystem_names" not in d["members"][1]
    assert GlobalConf.from_json_dict(json.loads(json.dumps(d))) == named


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ({"RENKEI/GOV/CITY/PLANNING": "x"}, "names subsystems the member lacks"),
        ({"RENKEI/GOV/HOSP-A/EHR": ""}, "non-empty string"),
        (["EHR"], "must be an object"),
        ({"not an id": "x"}, "subsystem_names key"),
    ],
)
def test_bad_subsystem_names_are_refused(
    sample_conf: GlobalConf, names: Any, message: str
) -> None:
    d = sample_conf.to_json_dict()
    d["members"][0]["subsystem_names"] = names
    with pytest.raises(GlobalConfMalformed, match=message):
        GlobalConf.from_json_dict(d)


def test_lookups(sample_conf: GlobalConf, auth_certificate: x509.Certificate,
                 ca_certificate: x509.Certificate) -> None:
    node = sample_conf.node(NODE1)
    assert node is not None
    assert node.peer_port == 5500
    assert sample_conf.node(NodeId.parse("RENKEI/GOV/HOSP-A/other")) is None
    assert sample_conf.node_by_fingerprint(fingerprint(auth_certificate)) == node
    assert sample_conf.node_by_fingerprint(fingerprint(auth_certificate).upper()) == node
    assert sample_conf.node_by_fingerprint("00" * 32) is None
    assert sample_conf.nodes_hosting(EHR) == (node,)
    assert sample_conf.nodes_hosting(PLANNING) == ()
    assert sample_conf.is_hosted_on(EHR, NODE1)
    assert not sample_conf.is_hosted_on(PLANNING, NODE1)
    assert sample_conf.groups_of(PLANNING) == frozenset({TRANSIT})
    assert sample_conf.groups_of(EHR) == frozenset()
    member = sample_conf.member(HOSP_A)
    assert member is not None
    assert member.name == "Hospital A"
    assert sample_conf.has_subsystem(EHR)
    assert not sample_conf.has_subsystem(SubsystemId.parse("RENKEI/GOV/HOSP-A/NOPE"))
    assert sample_conf.trust_roots() == (ca_certificate,)


def test_member_level_clients(sample_conf: GlobalConf) -> None:
    # A member is a client of the nodes it owns (X-Road: the owner member of a
    # security server); it has no global groups, and must be a member.
    assert NODE1.member == HOSP_A
    assert sample_conf.has_client(HOSP_A)
    assert sample_conf.has_client(EHR)
    assert not sample_conf.has_client(MemberId.parse("RENKEI/GOV/NOBODY"))
    assert sample_conf.client_hosted_on(HOSP_A, NODE1)
    assert sample_conf.client_hosted_on(EHR, NODE1)
    assert not sample_conf.client_hosted_on(CITY, NODE1)
    assert not sample_conf.client_hosted_on(HOSP_A, NodeId.parse("RENKEI/GOV/HOSP-A/other"))
    assert sample_conf.groups_of(HOSP_A) == frozenset()


def test_expiry_is_inclusive(sample_conf: GlobalConf) -> None:
    assert not sample_conf.is_expired(NOW + timedelta(minutes=9, seconds=59))
    assert sample_conf.is_expired(NOW + timedelta(minutes=10))


def test_expiry_needs_an_aware_time(sample_conf: GlobalConf) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sample_conf.is_expired(NOW.replace(tzinfo=None))


def _mutated(sample_conf: GlobalConf, change: Any) -> dict[str, Any]:
    d = copy.deepcopy(sample_conf.to_json_dict())
    change(d)
    return d


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(extra=1), "unknown keys extra"),
        (lambda d: d.pop("nodes"), "missing nodes"),
        (lambda d: d["nodes"][0].update(port=1), "unknown keys port"),
        (lambda d: d["settings"].pop("validity_s"), "missing validity_s"),
        (lambda d: d.update(format="renkei-globalconf/2"), "format"),
        (lambda d: d.update(version="7"), "version must be an integer"),
        (lambda d: d.update(version=True), "version must be an integer"),
        (lambda d: d.update(version=0), "version is out of range"),
        (lambda d: d.update(generated_at="2026-11-24T10:00:00+00:00"), "generated_at"),
        (lambda d: d.update(expires_at="2026-11-24 10:10:00Z"), "expires_at"),
        (lambda d: d.update(expires_at=d["generated_at"]), "after generated_at"),
        (lambda d: d["members"][0].update(id="RENKEI/GOV"), "members\\[0\\].id"),
        (lambda d: d["members"][0].update(id="RENKEI/GOV/HOSP A"), "members\\[0\\].id"),
        (lambda d: d["nodes"][0].update(subsystems=["RENKEI/GOV/HOSP-A/../x"]), "subsystems"),
        (lambda d: d["nodes"][0].update(peer_port=70000), "peer_port"),
        (lambda d: d["nodes"][0].update(auth_cert_sha256=["AB" * 32]), "64 lowercase hex"),
        (lambda d: d["trusted_cas"][0].update(certificate="not a pem"), "PEM"),
        (lambda d: d["trusted_cas"][0].update(ocsp_urls=["file:///etc/passwd"]), "URL"),
        (lambda d: d["settings"].update(validity_s=0), "validity_s"),
        (lambda d: d.update(members=d["members"] + d["members"][:1]), "listed twice"),
        (lambda d: d["members"][0].update(subsystems=["RENKEI/GOV/CITY/EHR"]), "not a subsyst"),
        (lambda d: d["nodes"][0].update(subsystems=["RENKEI/GOV/HOSP-A/GONE"]), "unlisted"),
        (lambda d: d["nodes"][0].update(id="RENKEI/GOV/UNKNOWN/n"), "unlisted member"),
        (lambda d: d["global_groups"][0].update(members=["RENKEI/GOV/X/Y"]), "unlisted member"),
        (lambda d: d["global_groups"][0].update(id="OTHER/g"), "not in instance"),
        (lambda d: d["members"][1].update(id="OTHER/GOV/CITY",
                                          subsystems=["OTHER/GOV/CITY/PLANNING"]),
         "not in instance"),
    ],
)
def test_strict_parsing_rejects(sample_conf: GlobalConf, change: Any, message: str) -> None:
    with pytest.raises(GlobalConfMalformed, match=message) as info:
        GlobalConf.from_json_dict(_mutated(sample_conf, change))
    assert info.value.code == "server.clientproxy.global_conf_malformed"


def test_not_an_object_is_rejected() -> None:
    with pytest.raises(GlobalConfMalformed):
        GlobalConf.from_json_dict([])


def test_fingerprint_may_not_name_two_nodes(sample_conf: GlobalConf) -> None:
    shared = sample_conf.nodes[0].auth_cert_sha256
    second = Node(NodeId.parse("RENKEI/GOV/CITY/n"), "127.0.0.2", 5500, shared, ())
    with pytest.raises(GlobalConfMalformed, match="listed twice"):
        replace(sample_conf, nodes=(*sample_conf.nodes, second))


def test_direct_construction_is_checked_too(sample_conf: GlobalConf) -> None:
    stray = Member(CITY, "City", (EHR,))
    with pytest.raises(GlobalConfMalformed, match="not a subsystem"):
        replace(sample_conf, members=(stray,))
    with pytest.raises(GlobalConfMalformed, match="timezone-aware"):
        replace(sample_conf, generated_at=NOW.replace(tzinfo=None))
    with pytest.raises(GlobalConfMalformed, match="format"):
        replace(sample_conf, format="x")
    with pytest.raises(GlobalConfMalformed, match="listed twice"):
        replace(sample_conf, nodes=(sample_conf.nodes[0], sample_conf.nodes[0]))


def test_node_id_shape() -> None:
    assert str(NODE1) == "RENKEI/GOV/HOSP-A/node1"

"""Metaservice answers: PR-MREST shapes, access rights respected, reserved codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certs.identifiers import GlobalGroupId, MemberId, ServiceId, SubsystemId
from gateway.errors import UnknownService
from gateway.metaservices import (
    allowed_methods,
    is_metaservice,
    list_clients,
    list_methods,
    load_openapi,
    metaservice_body,
)
from gateway.settings import ServiceBackend
from member_registry.globalconf import GlobalConf, GlobalGroup, Member, Settings
from policies.access import AccessPolicy, AccessRight

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PROVIDER = SubsystemId.parse("I/GOV/B/EHR")
CLIENT = SubsystemId.parse("I/GOV/A/EHR")
STRANGER = SubsystemId.parse("I/COM/X/S")
GROUP = GlobalGroupId.parse("I/partners")


def _conf() -> GlobalConf:
    return GlobalConf(
        instance="I",
        version=1,
        generated_at=NOW,
        expires_at=NOW + timedelta(minutes=10),
        settings=Settings(),
        trusted_cas=(),
        tsas=(),
        members=(
            Member(MemberId.parse("I/GOV/B"), "Hospital B", (PROVIDER,)),
            Member(MemberId.parse("I/GOV/A"), "Hospital A", (CLIENT,)),
            Member(MemberId.parse("I/COM/X"), "Stranger", (STRANGER,)),
        ),
        nodes=(),
        global_groups=(GlobalGroup(GROUP, "partners", (CLIENT,)),),
    )


def _services(tmp_path: Path) -> tuple[ServiceBackend, ...]:
    described = tmp_path / "patients.json"
    described.write_text(json.dumps({"openapi": "3.1.0", "paths": {}}), "utf-8")
    return (
        ServiceBackend(PROVIDER.service("patients"), "http://b/p", openapi=described),
        ServiceBackend(PROVIDER.service("echo"), "http://b/e"),
        ServiceBackend(PROVIDER.service("listMethods"), "http://b/shadow"),
        ServiceBackend(SubsystemId.parse("I/GOV/B/OTHER").service("x"), "http://b/x"),
    )


def _policy() -> AccessPolicy:
    return AccessPolicy(
        [
            AccessRight(PROVIDER.service("patients"), CLIENT, "GET", "/Patient/*"),
            AccessRight(PROVIDER.service("patients"), CLIENT, "GET", "/Patient/*"),
            AccessRight(PROVIDER.service("echo"), GROUP),
            AccessRight(PROVIDER.service("gone"), CLIENT),
        ],
        {},
    )


def test_list_clients_shape() -> None:
    listed = list_clients(_conf())["member"]
    assert listed[0] == {
        "id": {
            "member_class": "COM",
            "member_code": "X",
            "xroad_instance": "I",
            "object_type": "MEMBER",
        },
        "name": "Stranger",
    }
    assert listed[1]["id"]["object_type"] == "SUBSYSTEM"
    assert listed[1]["id"]["subsystem_code"] == "S"
    assert len(listed) == 6


def test_list_methods_lists_only_this_subsystems_real_services(tmp_path: Path) -> None:
    listed = list_methods(PROVIDER, _services(tmp_path))["service"]
    assert [s["service_code"] for s in listed] == ["echo", "patients"]
    assert listed[0] == {
        "member_class": "GOV",
        "member_code": "B",
        "subsystem_code": "EHR",
        "service_code": "echo",
        "object_type": "SERVICE",
        "xroad_instance": "I",
        "service_type": "REST",
        "endpoint_list": [{"method": "*", "path": "/*"}],
    }


def test_allowed_methods_lists_the_clients_rights_once(tmp_path: Path) -> None:
    groups = frozenset({GROUP})
    listed = allowed_methods(PROVIDER, _services(tmp_path), _policy(), CLIENT, groups)["service"]
    assert [(s["service_code"], s["endpoint_list"]) for s in listed] == [
        ("echo", [{"method": "*", "path": "*"}]),
        ("patients", [{"method": "GET", "path": "/Patient/*"}]),
    ]


def test_allowed_methods_is_empty_without_rights(tmp_path: Path) -> None:
    answer = allowed_methods(PROVIDER, _services(tmp_path), _policy(), STRANGER, frozenset())
    assert answer == {"service": []}


def test_metaservice_codes_are_reserved() -> None:
    assert is_metaservice(PROVIDER.service("listMethods"))
    assert is_metaservice(PROVIDER.service("getOpenAPI"))
    assert not is_metaservice(PROVIDER.service("patients"))


def _call(tmp_path: Path, code: str, query: str = "") -> dict[str, object]:
    status, headers, body = metaservice_body(
        service=ServiceId.parse(f"{PROVIDER}/{code}"),
        query=query,
        client=CLIENT,
        conf=_conf(),
        services=_services(tmp_path),
        policy=_policy(),
    )
    assert status == 200
    assert headers == (("content-type", "application/json"),)
    return dict(json.loads(body))


def test_get_openapi_returns_the_file(tmp_path: Path) -> None:
    assert _call(tmp_path, "getOpenAPI", "serviceCode=patients")["openapi"] == "3.1.0"
    assert "service" in _call(tmp_path, "allowedMethods")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "serviceCode=echo",  # no OpenAPI file configured
        "serviceCode=missing",
        "serviceCode=listMethods",  # a metaservice is not a service
        "serviceCode=a&serviceCode=patients",
        "serviceCode=bad%2Fcode",
    ],
)
def test_get_openapi_refusals(tmp_path: Path, query: str) -> None:
    with pytest.raises(UnknownService):
        _call(tmp_path, "getOpenAPI", query)


def test_load_openapi_refuses_unreadable_and_non_objects(tmp_path: Path) -> None:
    with pytest.raises(UnknownService):
        load_openapi(tmp_path / "absent.json")
    (tmp_path / "list.json").write_text("[1]", "utf-8")
    with pytest.raises(UnknownService):
        load_openapi(tmp_path / "list.json")
    (tmp_path / "broken.json").write_text("{", "utf-8")
    with pytest.raises(UnknownService):
        load_openapi(tmp_path / "broken.json")


def test_unknown_metaservice_code_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownService):
        _call(tmp_path, "listClients")

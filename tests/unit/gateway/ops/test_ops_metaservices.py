"""Metaservice answers: PR-MREST shapes, access rights respected, reserved codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certs.identifiers import GlobalGroupId, MemberId, ServiceId, SubsystemId
from gateway.errors import ClientError, NoOpenApiDescription, ProviderError, UnknownService
from gateway.metaservices import (
    allowed_methods,
    anonymise_servers,
    is_metaservice,
    list_methods,
    load_openapi,
    metaservice_body,
)
from gateway.services import Service
from member_registry.globalconf import GlobalConf, GlobalGroup, Member, Settings
from policies.access import AccessPolicy, AccessRight

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PROVIDER = SubsystemId.parse("I/GOV/B/EHR")
CLIENT = SubsystemId.parse("I/GOV/A/EHR")
STRANGER = SubsystemId.parse("I/COM/X/S")
LAB = SubsystemId.parse("I/COM/L/LAB")
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


PATIENTS_OPENAPI = {
    "openapi": "3.1.0",
    "servers": [
        {"url": "http://10.0.0.7:8080/fhir/r4"},
        {"url": "https://{host}/fhir", "variables": {"host": {"default": "b"}}},
        {"url": "https://b.example"},
    ],
    "paths": {
        "/Patient/{id}": {"get": {}, "delete": {}, "parameters": []},
        "/Patient/{id}/$everything": {"get": {}},
    },
}


def _services(tmp_path: Path) -> tuple[Service, ...]:
    return (
        Service(PROVIDER.service("patients"), "http://b/p", openapi=PATIENTS_OPENAPI),
        Service(PROVIDER.service("echo"), "http://b/e"),
        Service(PROVIDER.service("listMethods"), "http://b/shadow"),
        Service(SubsystemId.parse("I/GOV/B/OTHER").service("x"), "http://b/x"),
        # A disabled service is not offered, as X-Road leaves it out.
        Service(PROVIDER.service("paused"), "http://b/z", enabled=False),
    )


def _policy() -> AccessPolicy:
    return AccessPolicy(
        [
            AccessRight(PROVIDER.service("patients"), CLIENT, "GET", "/Patient/*"),
            AccessRight(PROVIDER.service("patients"), CLIENT, "GET", "/Patient/*"),
            AccessRight(PROVIDER.service("patients"), LAB, "POST", "/Observation"),
            AccessRight(PROVIDER.service("echo"), GROUP),
            AccessRight(PROVIDER.service("gone"), CLIENT),
        ],
        {},
    )


def test_list_methods_lists_only_this_subsystems_real_services(tmp_path: Path) -> None:
    listed = list_methods(PROVIDER, _services(tmp_path), _policy())["service"]
    assert [s["service_code"] for s in listed] == ["echo", "patients"]
    # No endpoint but the base one: X-Road lists none (PR-MREST §4, B.1 "kore").
    assert listed[0] == {
        "member_class": "GOV",
        "member_code": "B",
        "object_type": "SERVICE",
        "service_code": "echo",
        "service_type": "REST",
        "subsystem_code": "EHR",
        "xroad_instance": "I",
        "endpoint_list": [],
    }


def test_list_methods_reports_openapi_services_and_their_operations(tmp_path: Path) -> None:
    patients = list_methods(PROVIDER, _services(tmp_path), _policy())["service"][1]
    assert patients["service_type"] == "OPENAPI"
    # The description's operations ({id} -> *), then the endpoints rights name, once each.
    assert patients["endpoint_list"] == [
        {"method": "GET", "path": "/Patient/*"},
        {"method": "DELETE", "path": "/Patient/*"},
        {"method": "GET", "path": "/Patient/*/$everything"},
        {"method": "POST", "path": "/Observation"},
    ]


def test_allowed_methods_lists_the_endpoints_a_right_covers(tmp_path: Path) -> None:
    groups = frozenset({GROUP})
    listed = allowed_methods(PROVIDER, _services(tmp_path), _policy(), CLIENT, groups)["service"]
    assert [(s["service_code"], s["endpoint_list"]) for s in listed] == [
        # A right on the whole service: the service is listed, the base endpoint is not.
        ("echo", []),
        # GET /Patient/* covers GET /Patient/* only: not DELETE, not a longer path.
        ("patients", [{"method": "GET", "path": "/Patient/*"}]),
    ]
    assert listed[1]["service_type"] == "OPENAPI"


def test_allowed_methods_with_a_whole_service_right_lists_every_endpoint(
    tmp_path: Path,
) -> None:
    policy = AccessPolicy([AccessRight(PROVIDER.service("patients"), STRANGER, "*", "**")], {})
    listed = allowed_methods(PROVIDER, _services(tmp_path), policy, STRANGER, frozenset())
    assert [e["path"] for e in listed["service"][0]["endpoint_list"]] == [
        "/Patient/*", "/Patient/*", "/Patient/*/$everything"
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


def test_get_openapi_returns_the_file_with_servers_rewritten(tmp_path: Path) -> None:
    document = _call(tmp_path, "getOpenAPI", "serviceCode=patients")
    assert document["openapi"] == "3.1.0"
    assert document["paths"] == PATIENTS_OPENAPI["paths"]
    # As X-Road's getOpenAPI: a URL keeps its path only; one with variables is kept.
    assert [server["url"] for server in document["servers"]] == [
        "/fhir/r4",
        "https://{host}/fhir",
        "",
    ]
    assert document["servers"][1]["variables"] == {"host": {"default": "b"}}
    assert "service" in _call(tmp_path, "allowedMethods")


def test_anonymise_servers_refuses_a_non_openapi_3_document() -> None:
    with pytest.raises(ProviderError, match="incompatible OpenAPI version"):
        anonymise_servers({"openapi": "2.0", "servers": []})
    with pytest.raises(ProviderError):
        anonymise_servers({"openapi": 3.0})
    # No version, no servers: passed through as X-Road does.
    assert anonymise_servers({"info": {}}) == {"info": {}}


def test_get_openapi_of_a_service_without_description_is_a_documented_400(
    tmp_path: Path,
) -> None:
    with pytest.raises(NoOpenApiDescription) as refused:
        _call(tmp_path, "getOpenAPI", "serviceCode=echo")
    assert refused.value.code == "client.no_openapi_description"
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "query",
    ["", "serviceCode=", "serviceCode=a&serviceCode=patients", "serviceCode=bad%2Fcode"],
)
def test_get_openapi_bad_requests(tmp_path: Path, query: str) -> None:
    with pytest.raises(ClientError) as refused:
        _call(tmp_path, "getOpenAPI", query)
    assert refused.value.code == "client.bad_request"


@pytest.mark.parametrize(
    "query",
    [
        "serviceCode=missing",
        "serviceCode=listMethods",  # a metaservice is not a service
    ],
)
def test_get_openapi_of_an_unknown_service(tmp_path: Path, query: str) -> None:
    with pytest.raises(UnknownService):
        _call(tmp_path, "getOpenAPI", query)


def test_load_openapi_refuses_unreadable_and_non_objects(tmp_path: Path) -> None:
    with pytest.raises(ProviderError):
        load_openapi(tmp_path / "absent.json")
    (tmp_path / "list.json").write_text("[1]", "utf-8")
    with pytest.raises(ProviderError):
        load_openapi(tmp_path / "list.json")
    (tmp_path / "broken.json").write_text("{", "utf-8")
    with pytest.raises(ProviderError):
        load_openapi(tmp_path / "broken.json")


def test_unknown_metaservice_code_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownService):
        _call(tmp_path, "listClients")


def test_list_methods_matches_annex_b1() -> None:
    """PR-MREST Annex B.1's REST service ``kore``: endpoints defined by its access rights."""
    vectors = Path(__file__).parents[3] / "vectors" / "xroad"
    expected = json.loads((vectors / "pr-mrest_b1_listmethods.json").read_text("utf-8"))
    provider = SubsystemId.parse("INSTANCE/CLASS2/MEMBER2/SUBSYSTEM2")
    client = SubsystemId.parse("INSTANCE/CLASS1/MEMBER1/SUBSYSTEM1")
    kore = provider.service("kore")
    policy = AccessPolicy(
        [AccessRight(kore, client, method, "/school") for method in ("GET", "PUT", "POST")], {}
    )
    services = (Service(kore, "http://kore"),)
    assert list_methods(provider, services, policy) == expected

"""The r1 request parser: what is accepted, and every ambiguity refused."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certs.identifiers import MemberId, NodeId, ServiceId, SubsystemId
from gateway.errors import ClientError, InvalidClientIdentifier
from gateway.protocol import check_path_parameters, end_to_end_headers, parse_exchange_request

SERVICE = "/r1/RENKEI/GOV/HOSP-B/EHR/patients"
CLIENT = ("X-Road-Client", "RENKEI/GOV/HOSP-A/EHR")


def parse(target: str, *headers: tuple[str, str], method: str = "GET"):  # type: ignore[no-untyped-def]
    return parse_exchange_request(method, target, [CLIENT, *headers])


def test_parses_service_path_query_and_identity() -> None:
    request = parse(
        SERVICE + "/Patient/pat1?_format=json&x=%20y",
        ("X-Road-Id", "msg-1"),
        ("X-Road-UserId", "dr.tanaka"),
        ("Renkei-Purpose", "treatment"),
        ("Renkei-Subject", "pat1"),
        ("X-Road-Security-Server", "RENKEI/GOV/HOSP-B/ss1"),
        ("Accept", "application/json"),
    )
    assert request.service == ServiceId.parse("RENKEI/GOV/HOSP-B/EHR/patients")
    assert request.client == SubsystemId.parse("RENKEI/GOV/HOSP-A/EHR")
    assert request.service_path == "/Patient/pat1"
    assert request.query == "_format=json&x=%20y"
    assert request.message_id == "msg-1"
    assert request.user_id == "dr.tanaka"
    assert request.purpose == "treatment"
    assert request.subject == "pat1"
    assert request.security_server == NodeId.parse("RENKEI/GOV/HOSP-B/ss1")
    assert request.headers == (("accept", "application/json"),)
    assert request.target == SERVICE + "/Patient/pat1?_format=json&x=%20y"


def test_generates_a_message_id_when_missing() -> None:
    first, second = parse(SERVICE), parse(SERVICE)
    assert first.message_id != second.message_id
    assert len(first.message_id) == 36


def test_a_generated_message_id_has_x_roads_instance_uuid_form() -> None:
    # X-Road's client proxy: GlobalConf.getInstanceIdentifier() + "-" + UUID.randomUUID()
    request = parse_exchange_request("GET", SERVICE, [CLIENT], instance="RENKEI")
    instance, _, rest = request.message_id.partition("-")
    assert instance == "RENKEI"
    assert str(uuid.UUID(rest)) == rest
    given = parse_exchange_request(
        "GET", SERVICE, [CLIENT, ("X-Road-Id", "mine")], instance="RENKEI"
    )
    assert given.message_id == "mine"


def test_keeps_the_callers_encoding_but_checks_decoded_segments() -> None:
    request = parse(SERVICE + "/a%20b/c")
    assert request.service_path == "/a%20b/c"
    assert request.decoded_path == "/a b/c"


@pytest.mark.parametrize(
    "target",
    [
        SERVICE + "/a/../b",
        SERVICE + "/a/./b",
        SERVICE + "/%2e%2e/b",
        SERVICE + "/%2E/b",
        SERVICE + "/a%2fb",
        SERVICE + "/a%2Fb",
        SERVICE + "/a%5cb",
        SERVICE + "/a%00b",
        SERVICE + "/a%0d%0ab",
        SERVICE + "/a%zzb",
        SERVICE + "/a%2",
        SERVICE + "/a//b",
        SERVICE + "/%ff",
        SERVICE + "#frag",
        "/r1/RENKEI/GOV/HOSP-B/EHR",
        "/r2/RENKEI/GOV/HOSP-B/EHR/patients",
        "/r1/RENKEI/GOV/HOSP B/EHR/patients",
        "/r1/RENKEI/GOV/HOSP%20B/EHR/patients",
        "/r1/RENKEI/GOV/HOSP-B/EHR/pa*tients",
    ],
)
def test_refuses_ambiguous_targets(target: str) -> None:
    with pytest.raises(ClientError) as info:
        parse(target)
    assert info.value.code == "client.bad_request"


def test_missing_client_header() -> None:
    with pytest.raises(ClientError, match="X-Road-Client"):
        parse_exchange_request("GET", SERVICE, [])


def test_duplicate_client_header() -> None:
    with pytest.raises(ClientError, match="at most once"):
        parse(SERVICE, ("x-road-client", "RENKEI/GOV/HOSP-A/EHR"))


@pytest.mark.parametrize("name", ["X-Road-Id", "Renkei-Purpose", "Renkei-Subject", "X-Road-UserId"])
def test_duplicate_identity_headers(name: str) -> None:
    with pytest.raises(ClientError, match="at most once"):
        parse(SERVICE, (name, "a"), (name, "b"))


@pytest.mark.parametrize(
    "value",
    [
        "RENKEI/GOV",
        "RENKEI/GOV/HOSP A/EHR",
        "",
        "a/b/c/d/e",
        "RENKEI/GOV/HOSP%2FA/EHR",  # an encoded separator
        "RENKEI/GOV/HOSP-A/EH%00R",  # a control character
        "RENKEI/GOV/HOSP-A/EH%zzR",  # malformed percent-encoding
        "RENKEI/GOV/HOSP-A/%E3%81%82",  # decodes to a character identifiers do not allow
        "RENKEI/GOV/HOSP-A/%2e%2e",
        "RENKEI/GOV//EHR",
    ],
)
def test_invalid_client_identifier(value: str) -> None:
    with pytest.raises(InvalidClientIdentifier) as info:
        parse_exchange_request("GET", SERVICE, [("X-Road-Client", value)])
    assert info.value.code == "client.invalid_client_identifier"


def test_a_member_level_client_is_accepted() -> None:
    # PR-REST §4.1: "Including the subsystem code is OPTIONAL."
    request = parse_exchange_request("GET", SERVICE, [("X-Road-Client", "RENKEI/GOV/HOSP%2DA")])
    assert request.client == MemberId("RENKEI", "GOV", "HOSP-A")
    assert request.client.member == request.client


def test_percent_encoded_client_parts_are_decoded_one_by_one() -> None:
    # PR-REST §4.3: the parts of X-Road-Client are percent-encoded UTF-8.
    request = parse_exchange_request(
        "GET", SERVICE, [("X-Road-Client", "RENKEI/GOV/HOSP%2DA/%45HR%3F")]
    )
    assert request.client == SubsystemId("RENKEI", "GOV", "HOSP-A", "EHR?")


@pytest.mark.parametrize(
    "name", ["X-Road-Request-Hash", "X-Road-Service", "X-Road-Request-Id", "X-Road-Error"]
)
def test_drops_response_only_headers_as_x_road_does(name: str) -> None:
    request = parse(SERVICE, (name, "from the client"), ("X-Kept", "1"))
    assert request.headers == (("x-kept", "1"),)


@pytest.mark.parametrize("name", ["Renkei-Signature", "Renkei-Withheld", "Renkei-Consent"])
def test_refuses_renkei_node_headers(name: str) -> None:
    with pytest.raises(ClientError, match="set by the nodes"):
        parse(SERVICE, (name, "x"))


def test_deduplication_is_asked_for_explicitly() -> None:
    assert not parse(SERVICE, ("X-Road-Id", "m")).deduplicate
    asked = parse(SERVICE, ("X-Road-Id", "m"), ("Renkei-Deduplicate", "true"))
    assert asked.deduplicate
    assert asked.headers == ()  # an instruction to the consumer node, not forwarded
    with pytest.raises(ClientError, match="needs an X-Road-Id"):
        parse(SERVICE, ("Renkei-Deduplicate", "true"))
    with pytest.raises(ClientError, match="only be 'true'"):
        parse(SERVICE, ("X-Road-Id", "m"), ("Renkei-Deduplicate", "yes"))
    with pytest.raises(ClientError, match="at most once"):
        parse(SERVICE, ("X-Road-Id", "m"), ("Renkei-Deduplicate", "true"),
              ("Renkei-Deduplicate", "true"))


@pytest.mark.parametrize(
    "name", ["X-HTTP-Method-Override", "x-method-override", "X-HTTP-Method"]
)
def test_refuses_method_override_headers(name: str) -> None:
    # A right granted for GET must not reach a backend that reads this as DELETE.
    with pytest.raises(ClientError, match="send the method itself"):
        parse(SERVICE + "/open/x", (name, "DELETE"))
    with pytest.raises(ClientError, match="send the method itself"):
        end_to_end_headers(
            [(name, "DELETE")], allowed_node_headers=frozenset({"renkei-signature"})
        )


@pytest.mark.parametrize(
    "path", ["/open/..;/admin", "/open/%2e%2e;/admin", "/a;v=1/b", "/a/b;", "/;x"]
)
def test_path_parameters_are_refused_unless_the_service_uses_them(path: str) -> None:
    with pytest.raises(ClientError, match="';'"):
        check_path_parameters(path, allowed=False)
    check_path_parameters(path, allowed=True)


@pytest.mark.parametrize("path", ["/a%3Bb", "/a%3bb/c", "/x/..%3B/admin"])
def test_an_encoded_semicolon_is_refused_even_where_parameters_are_used(path: str) -> None:
    for allowed in (False, True):
        with pytest.raises(ClientError, match="encoded ';'"):
            check_path_parameters(path, allowed=allowed)


def test_a_path_without_parameters_passes() -> None:
    check_path_parameters("/open/a%20b/c", allowed=False)
    check_path_parameters("", allowed=False)


def test_drops_hop_by_hop_and_connection_named_headers() -> None:
    headers = end_to_end_headers(
        [
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("X-Secret-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Host", "example"),
            ("User-Agent", "curl"),
            ("Transfer-Encoding", "chunked"),
            ("X-Custom", "kept"),
            ("Content-Type", "application/json"),
            ("X-Custom", "twice"),
        ]
    )
    assert headers == (
        ("x-custom", "kept"),
        ("content-type", "application/json"),
        ("x-custom", "twice"),
    )


def test_invalid_method() -> None:
    with pytest.raises(ClientError):
        parse(SERVICE, method="get")


@given(st.text(max_size=60))
def test_arbitrary_targets_never_crash(suffix: str) -> None:
    with contextlib.suppress(ClientError):
        parse(SERVICE + suffix)

"""X-Road's message protocol for REST (PR-REST 1.0.4), checked from the outside.

A plain HTTP client (``http.client`` from the standard library, nothing of
Renkei's) sends the specification's own examples (``tests/vectors/xroad/
pr-rest_examples.json``) to a real federation whose provider serves the
specification's pet store (Appendix 1) through a plain ``http.server``. Each
test is one example or one rule, checked header by header; the request hash
is recomputed here from what the client sent, following docs/protocol.md.
docs/protocol.md's conformance table maps each test to its section.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree

import pytest

from tests.conftest import POSTGRES_SERVER, require_postgres
from tests.functional.sandbox_helpers import node, sandbox_process

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "xroad" / "pr-rest_examples.json").read_text()
)
EXAMPLES: dict[str, dict[str, Any]] = VECTORS["examples"]
CLIENT = VECTORS["client"]  # DEV/COM/222/TESTCLIENT
PETSTORE = VECTORS["service"]  # DEV/COM/222/TESTSERVICE/petstore
PETSTORE_ID = PETSTORE
BROKEN = "DEV/COM/222/TESTSERVICE/broken"
OUTSIDER = "DEV/COM/222/OUTSIDER"  # hosted on the consumer's node, no access rights
CONSUMER_NODE = "DEV/COM/222/ss1"
PROVIDER_NODE = "DEV/COM/222/ss2"
BOUNDARY = "renkei-conformance-boundary"

# RFC 9110 hop-by-hop fields and what PR-REST §4.3 filters; X-Road's response-only
# headers; the identity headers, in the order docs/protocol.md gives for the hash.
FILTERED = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host",
    "user-agent", "server", "content-length", "renkei-client-token",
    "x-road-service", "x-road-request-id", "x-road-request-hash", "x-road-error",
}  # fmt: skip
IDENTITY = (
    "x-road-client", "x-road-id", "x-road-userid", "x-road-issue", "x-road-security-server",
    "x-road-represented-party", "renkei-purpose", "renkei-subject",
)  # fmt: skip


# -- the provider's service: the specification's pet store ---------------------------


@dataclass
class Received:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, (name, values)
        return values[0] if values else None


class PetStore(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PetStoreHandler)
        self.received: list[Received] = []
        self.answers = {
            (example["method"], urlsplit(example["target"]).path): example["service_response"]
            for example in EXAMPLES.values()
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _PetStoreHandler(BaseHTTPRequestHandler):
    server: PetStore

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        self.server.received.append(
            Received(self.command, self.path, list(self.headers.items()), body)
        )
        path = urlsplit(self.path).path
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "https://petstore.example.org/v2/pets")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = self.server.answers.get((self.command, path))
        if answer is None:
            answer = {"status": 200, "headers": [["Content-Type", "application/json"]],
                      "body": {"echo": path}}
        payload = b"" if answer["body"] is None else json.dumps(answer["body"]).encode()
        self.send_response(answer["status"])
        for name, value in answer["headers"]:
            self.send_header(name, value)
        self.send_header("X-Powered-By", "PHP/5.2.17")  # a user-defined header (§4.3)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        pass


DESCRIPTION = """
instance = "DEV"

# PR-REST's examples: client and service are subsystems of one member, DEV/COM/222,
# here on two nodes of that member.
[[member]]
id = "DEV/COM/222"
name = "Test client and service"
subsystems = ["DEV/COM/222/TESTCLIENT", "DEV/COM/222/OUTSIDER", "DEV/COM/222/TESTSERVICE"]

[[node]]
id = "DEV/COM/222/ss1"
subsystems = ["DEV/COM/222/TESTCLIENT", "DEV/COM/222/OUTSIDER"]

[[node]]
id = "DEV/COM/222/ss2"
subsystems = ["DEV/COM/222/TESTSERVICE"]

[[service]]
id = "DEV/COM/222/TESTSERVICE/petstore"
backend = "{petstore}"
allowed = ["DEV/COM/222/TESTCLIENT"]
description = "PR-REST Appendix 1's pet store"

[[service]]
id = "DEV/COM/222/TESTSERVICE/BARSERVICE"
backend = "{petstore}"
allowed = ["DEV/COM/222/TESTCLIENT", "DEV/COM/222"]

[[service]]
id = "DEV/COM/222/TESTSERVICE/broken"
backend = "http://127.0.0.1:9"
allowed = ["DEV/COM/222/TESTCLIENT"]

[settings]
refresh_interval_s = 10
"""


@dataclass
class Federation:
    client_url: str
    store: PetStore


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def federation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    database = None
    if request.param == "postgres":
        require_postgres()
        database = POSTGRES_SERVER
    store = PetStore()
    thread = threading.Thread(target=store.serve_forever, daemon=True)
    thread.start()
    base = tmp_path_factory.mktemp(f"xroad-rest-{request.param}")
    description = base / "federation.toml"
    description.write_text(DESCRIPTION.replace("{petstore}", store.url), "utf-8")
    try:
        with sandbox_process(base / "sandbox", database=database,
                             description=description) as document:
            yield Federation(str(node(document, CONSUMER_NODE)["client_url"]), store)
    finally:
        store.shutdown()
        store.server_close()
        thread.join(timeout=10)


# -- the plain client ------------------------------------------------------------------


@dataclass
class Sent:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, (name, values)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    federation: Federation,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
) -> tuple[Sent, Answer]:
    """One request, every header the client sends listed here (``Host`` aside)."""
    parts = urlsplit(federation.client_url)
    assert parts.hostname is not None
    assert parts.port is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        sent = [("Host", f"{parts.hostname}:{parts.port}"), *headers]
        if body or method in ("POST", "PUT"):
            sent.append(("Content-Length", str(len(body))))
        for name, value in sent[1:]:
            connection.putheader(name, value)
        connection.endheaders(body or None)
        response = connection.getresponse()
        answer = Answer(response.status, list(response.getheaders()), response.read())
    finally:
        connection.close()
    return Sent(method, target, sent, body), answer


def expected_request_hash(sent: Sent, message_id: str, request_id: str) -> str:
    """PR-REST §4.3's hash, rebuilt from what the client sent (docs/protocol.md)."""
    connection_named = {
        token.strip().lower()
        for name, value in sent.headers if name.lower() == "connection"
        for token in value.split(",")
    }
    path, _, query = sent.target.partition("?")
    segments = path.split("/")
    service = "/".join(unquote(s) for s in segments[2:7]).replace("?", "%3F")
    target = "/".join(["", "r1", service, *segments[7:]]) + (f"?{query}" if query else "")
    lines = [sent.method, target]
    identity: dict[str, str] = {"x-road-id": message_id}
    for name, value in sent.headers:
        key = name.lower()
        if key in IDENTITY:
            identity[key] = (
                "/".join(unquote(p) for p in value.split("/")) if key == "x-road-client" else value
            )
        elif key not in FILTERED and key not in connection_named and key != "renkei-deduplicate":
            lines.append(f"{key}:{value}")
    lines += [f"{key}:{identity[key]}" for key in IDENTITY if key in identity]
    lines.append(f"x-road-request-id:{request_id}")
    head = hashlib.sha512(("\r\n".join(lines) + "\r\n").encode()).digest()
    if sent.body:
        head = hashlib.sha512(head + hashlib.sha512(sent.body).digest()).digest()
    return base64.b64encode(head).decode()


def example_body(example: dict[str, Any]) -> tuple[bytes, list[tuple[str, str]]]:
    if example["body"] is None:
        return b"", []
    if example["body"] == "multipart":  # curl -F "file=@...;type=image/jpeg"
        image = bytes(range(256)) * 4
        body = (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"cat.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode() + image + f"\r\n--{BOUNDARY}--\r\n".encode()
        return body, [("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")]
    return json.dumps(example["body"]).encode(), []


def check_xroad_response_headers(
    answer: Answer,
    sent: Sent,
    service: str,
    *,
    message_id: str | None = None,
    client: str = CLIENT,
) -> None:
    """PR-REST §4.3 "X-Road specific headers returned in the response", one by one."""
    assert answer.header("X-Road-Error") is None
    assert answer.header("X-Road-Client") == client
    assert answer.header("X-Road-Service") == service
    got_id = answer.header("X-Road-Id")
    assert got_id is not None
    if message_id is not None:
        assert got_id == message_id
    else:  # generated in X-Road's form, {instance}-{uuid}
        instance, _, rest = got_id.partition("-")
        assert instance == "DEV"
        assert str(uuid.UUID(rest)) == rest
    request_id = answer.header("X-Road-Request-Id")
    assert request_id is not None
    assert str(uuid.UUID(request_id)) == request_id
    assert answer.header("X-Road-Request-Hash") == expected_request_hash(sent, got_id, request_id)


# -- one test per example ----------------------------------------------------------------


@pytest.mark.parametrize("example_id", sorted(EXAMPLES))
def test_spec_example(federation: Federation, example_id: str) -> None:
    """§4.1, §4.6 example 1 and §6.2 to §6.6: the request, the service's answer, the headers."""
    example = EXAMPLES[example_id]
    service = example.get("service", PETSTORE)
    body, body_headers = example_body(example)
    headers = [*(tuple(h) for h in example["request_headers"]), *body_headers,
               ("X-Road-Client", CLIENT)]
    before = len(federation.store.received)
    sent, answer = send(federation, example["method"], f"/r1/{service}{example['target']}",
                        headers, body)

    # What the provider's service received: the request unmodified (§4.1, §4.3, §4.5).
    received = federation.store.received[before:]
    assert len(received) == 1
    seen = received[0]
    assert (seen.method, seen.target, seen.body) == (sent.method, example["target"], body)
    for name, value in headers:
        assert seen.header(name) == value, name
    assert seen.header("X-Road-Service") == service
    assert seen.header("X-Road-Request-Id") == answer.header("X-Road-Request-Id")
    assert seen.header("X-Road-Id") == answer.header("X-Road-Id")

    # What came back: the service's status and body, and the listed headers.
    expected = example["service_response"]
    assert answer.status == expected["status"]
    payload = expected["body"]
    assert answer.body == (b"" if payload is None else json.dumps(payload).encode())
    listed = {name.lower() for name in example["response_headers"]}
    present = {name.lower() for name, _ in answer.headers}
    assert listed <= present, listed - present
    for name, value in expected["headers"]:
        assert answer.header(name) == value, name  # passed unmodified (§4.3 Content-Type)
    assert answer.header("X-Powered-By") == "PHP/5.2.17"  # user-defined header (§4.3)
    assert answer.header("Content-Length") == str(len(answer.body))
    date = answer.header("Date")
    assert date is not None
    assert parsedate_to_datetime(date).tzinfo is not None
    check_xroad_response_headers(answer, sent, service)


# -- PR-REST §4.2: URI sanitation --------------------------------------------------------


def test_4_2_an_encoded_service_id_is_refused(federation: Federation) -> None:
    # The specification's "invalid" example: separators encoded into one part.
    _, answer = send(federation, "GET",
                     "/r1/DEV%2FCOM%2F222%2FTESTSERVICE%2Fpetstore/v2/pets/1124",
                     [("X-Road-Client", CLIENT)])
    assert (answer.status, answer.header("X-Road-Error")) == (400, "client.bad_request")


def test_4_2_a_slash_inside_a_part_is_refused_as_x_road_7_identifiers_are(
    federation: Federation,
) -> None:
    # The specification's "valid" BAR%2FSERVICE is "not recommended"; Renkei's identifier
    # alphabet (DESIGN §2) has no '/', in the spirit of the identifier character
    # restrictions X-Road 7 added (PR-REST 1.0.1, §4.8). A deliberate difference.
    _, answer = send(federation, "GET", "/r1/DEV/COM/222/TESTSERVICE/BAR%2FSERVICE/x",
                     [("X-Road-Client", CLIENT)])
    assert (answer.status, answer.header("X-Road-Error")) == (400, "client.bad_request")


# -- PR-REST §4.3: headers ---------------------------------------------------------------


def test_4_3_header_names_are_case_insensitive(federation: Federation) -> None:
    sent, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124",
                        [("x-road-client", CLIENT), ("x-road-id", "lower-case-id")])
    assert answer.status == 200
    check_xroad_response_headers(answer, sent, PETSTORE_ID, message_id="lower-case-id")


def test_4_3_client_parts_are_percent_decoded(federation: Federation) -> None:
    sent, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124",
                        [("X-Road-Client", "DEV/COM/%32%322/TEST%43LIENT")])
    assert answer.status == 200, answer.body
    check_xroad_response_headers(answer, sent, PETSTORE_ID)
    assert federation.store.received[-1].header("X-Road-Client") == CLIENT


def test_4_3_a_client_part_that_decodes_badly_is_an_invalid_client(
    federation: Federation,
) -> None:
    _, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124",
                     [("X-Road-Client", "DEV/COM/222%2FTESTCLIENT")])
    assert (answer.status, answer.header("X-Road-Error")) == (
        400, "client.invalid_client_identifier"
    )


def test_4_1_a_member_level_client_is_served(federation: Federation) -> None:
    # "Including the subsystem code is OPTIONAL": the member DEV/COM/222 calls as
    # itself through the node it owns, under a right granted to the member.
    bar = "DEV/COM/222/TESTSERVICE/BARSERVICE"
    sent, answer = send(federation, "GET", f"/r1/{bar}/v1/bar/zyggy?quu=1",
                        [("X-Road-Client", "DEV/COM/222")])
    assert answer.status == 200, answer.body
    check_xroad_response_headers(answer, sent, bar, client="DEV/COM/222")
    assert federation.store.received[-1].header("X-Road-Client") == "DEV/COM/222"
    # A right of its subsystem is not the member's, and an unknown member is no client.
    _, denied = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124",
                     [("X-Road-Client", "DEV/COM/222")])
    assert (denied.status, denied.header("X-Road-Error")) == (
        500, "server.serverproxy.access_denied"
    )
    _, unknown = send(federation, "GET", f"/r1/{bar}/v1/bar/zyggy",
                      [("X-Road-Client", "DEV/COM/999")])
    assert (unknown.status, unknown.header("X-Road-Error")) == (400, "client.unknown_client")


def test_4_3_optional_headers_reach_the_service(federation: Federation) -> None:
    headers = [
        ("X-Road-Client", CLIENT),
        ("X-Road-Id", "fa2e18a5-c2cb-4d09-b994-f57727f7c3fb"),
        ("X-Road-UserId", "EE12345678901"),
        ("X-Road-Issue", "MT324223MSD"),
        ("X-Road-Represented-Party", "COM/12345"),
        ("X-Road-Security-Server", PROVIDER_NODE),
        ("X-Pingback", "https://example.com/xmlrpc.php"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
    ]
    sent, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124", headers)
    assert answer.status == 200, answer.body
    check_xroad_response_headers(answer, sent, PETSTORE_ID,
                                 message_id="fa2e18a5-c2cb-4d09-b994-f57727f7c3fb")
    seen = federation.store.received[-1]
    for name, value in headers:
        assert seen.header(name) == value, name
    assert seen.header("X-Road-Service") == PETSTORE_ID
    assert seen.header("X-Road-Request-Id") == answer.header("X-Road-Request-Id")


def test_4_3_response_only_headers_in_a_request_are_dropped(federation: Federation) -> None:
    forged = [
        ("X-Road-Request-Hash", "14sEri8SmLNy/DJyTob0ZddAskmdRy5ZUyhbr33iLkaA+gLpWcivUH16fzbu"
                                "Is7hhs2AnA4lJDloyIihXMlVQA=="),
        ("X-Road-Service", "DEV/COM/222/TESTSERVICE/other"),
        ("X-Road-Request-Id", "f92591a3-6bf0-49b1-987b-0dd78c034cc3"),
        ("X-Road-Error", "Server.ServerProxy.DatabaseError"),
    ]
    sent, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124",
                        [("X-Road-Client", CLIENT), *forged])
    assert answer.status == 200, answer.body
    check_xroad_response_headers(answer, sent, PETSTORE_ID)
    assert answer.header("X-Road-Request-Id") != "f92591a3-6bf0-49b1-987b-0dd78c034cc3"
    seen = federation.store.received[-1]
    assert seen.header("X-Road-Service") == PETSTORE_ID
    assert seen.header("X-Road-Request-Id") == answer.header("X-Road-Request-Id")
    assert seen.header("X-Road-Request-Hash") is None
    assert seen.header("X-Road-Error") is None


def test_4_3_filtered_headers_do_not_reach_the_service(federation: Federation) -> None:
    sent, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124", [
        # (A Connection naming other fields is refused, docs/protocol.md.)
        ("X-Road-Client", CLIENT), ("User-Agent", "secret-agent/1.0"),
        ("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"),
        ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
    ])
    assert answer.status == 200
    check_xroad_response_headers(answer, sent, PETSTORE_ID)
    seen = federation.store.received[-1]
    assert seen.header("User-Agent") != "secret-agent/1.0"
    assert seen.header("Host") != sent.headers[0][1]
    assert seen.header("Proxy-Authorization") is None
    assert seen.header("Keep-Alive") is None


def test_4_3_a_retry_with_the_same_message_id_is_served(federation: Federation) -> None:
    # X-Road does not deduplicate: a client that retries a timed-out call is served again.
    headers = [("X-Road-Client", CLIENT), ("X-Road-Id", "retry-" + uuid.uuid4().hex)]
    first = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124", headers)[1]
    second = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124", headers)[1]
    assert (first.status, second.status) == (200, 200), second.body
    assert first.header("X-Road-Request-Id") != second.header("X-Road-Request-Id")


def test_4_3_deduplication_only_when_the_client_asks(federation: Federation) -> None:
    headers = [("X-Road-Client", CLIENT), ("X-Road-Id", "once-" + uuid.uuid4().hex),
               ("Renkei-Deduplicate", "true")]
    first = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124", headers)[1]
    before = len(federation.store.received)
    second = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124", headers)[1]
    assert first.status == 200
    assert (second.status, second.header("X-Road-Error")) == (
        400, "client.duplicate_message_id"
    )
    assert len(federation.store.received) == before  # the service never saw the second


def test_4_3_x_road_security_server_names_the_provider_node(federation: Federation) -> None:
    sent, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124",
                        [("X-Road-Client", CLIENT), ("X-Road-Security-Server", PROVIDER_NODE)])
    assert answer.status == 200
    check_xroad_response_headers(answer, sent, PETSTORE_ID)
    _, elsewhere = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets/1124",
                        [("X-Road-Client", CLIENT), ("X-Road-Security-Server", CONSUMER_NODE)])
    assert elsewhere.status == 500
    assert elsewhere.header("X-Road-Error") == "server.clientproxy.unknown_subsystem"


# -- PR-REST §4.4, §4.5 ----------------------------------------------------------------


def test_4_4_redirects_are_passed_back_unfollowed(federation: Federation) -> None:
    sent, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/redirect",
                        [("X-Road-Client", CLIENT)])
    assert answer.status == 302
    assert answer.header("Location") == "https://petstore.example.org/v2/pets"
    check_xroad_response_headers(answer, sent, PETSTORE_ID)


def test_4_5_query_parameters_pass_unmodified(federation: Federation) -> None:
    query = "term=a%20b&term=c&x=%2F%3F&empty="
    send(federation, "GET", f"/r1/{PETSTORE_ID}/pets?{query}", [("X-Road-Client", CLIENT)])
    assert federation.store.received[-1].target == f"/pets?{query}"


# -- PR-REST §4.6: errors ----------------------------------------------------------------


def _check_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert (answer.status, answer.header("X-Road-Error")) == (status, code), answer.body
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    document = answer.json()
    assert set(document) == {"type", "message", "detail"}
    assert document["type"] == code
    assert document["message"]
    assert str(uuid.UUID(document["detail"])) == document["detail"]
    return dict(document)


def test_4_6_example_2_the_service_fails(federation: Federation) -> None:
    _, answer = send(federation, "GET", f"/r1/{BROKEN}/v2/pets", [("X-Road-Client", CLIENT)])
    _check_error(answer, 500, "server.serverproxy.service_failed")


def test_4_6_example_3_a_request_outside_the_protocol(federation: Federation) -> None:
    _, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets", [])  # no X-Road-Client
    _check_error(answer, 400, "client.bad_request")


def test_4_6_example_4_the_provider_node_refuses(federation: Federation) -> None:
    _, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets",
                     [("X-Road-Client", OUTSIDER)])
    document = _check_error(answer, 500, "server.serverproxy.access_denied")
    assert OUTSIDER in document["message"]


def test_4_6_example_5_only_node_errors_carry_x_road_error(federation: Federation) -> None:
    # (A) the service's own 500-class or 4xx answer has no X-Road-Error (example 1 is
    # test_spec_example[4.6-example-1]); (B) every answer a node makes has it, its own
    # 404 for a path outside r1 included.
    for target in ("/", "/r2/DEV/COM/222/TESTSERVICE/petstore/v2/pets", "/R1/x"):
        _, answer = send(federation, "GET", target, [("X-Road-Client", CLIENT)])
        assert (answer.status, answer.header("X-Road-Error")) == (404, "client.not_found")


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/json"),
        ("application/json", "application/json"),
        ("text/xml", "text/xml"),
        ("application/xml", "application/xml"),
        ("text/*", "text/xml"),
        ("application/json, application/xml", "application/xml"),
        ("text/html, text/xml;q=0.5", "text/xml"),
    ],
)
def test_4_6_error_bodies_follow_accept_as_x_roads_client_proxy(
    federation: Federation, accept: str | None, media: str
) -> None:
    extra = [("Accept", accept)] if accept else []
    # A refusal of the consumer node, and one relayed from the provider node.
    for client, code in ((None, "client.bad_request"),
                         (OUTSIDER, "server.serverproxy.access_denied")):
        headers = [*extra, *([("X-Road-Client", client)] if client else [])]
        _, answer = send(federation, "GET", f"/r1/{PETSTORE_ID}/v2/pets", headers)
        assert answer.header("X-Road-Error") == code
        assert answer.header("Content-Type") == f"{media}; charset=utf-8"
        if media == "application/json":
            message = answer.json()["message"]
        else:
            root = ElementTree.fromstring(answer.body)
            assert root.tag == "error"
            assert [child.tag for child in root] == ["type", "message", "detail"]
            assert root.findtext("type") == code
            message = root.findtext("message") or ""
        assert message
        assert "refused the request" not in message  # the real message, not a stand-in
        if client == OUTSIDER:
            assert OUTSIDER in message


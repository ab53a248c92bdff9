"""Hostile HTTP on every port, sent as raw bytes: each refusal has its code and audit row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import load_node_settings
from gateway.tls import client_context
from tests.functional.hostile_helpers import (
    audit_rows_after,
    host_port,
    last_seq,
    send_raw,
)
from tests.functional.sandbox_helpers import node, sandbox_process

HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"
CLIENT = "RENKEI/GOV/HOSP-A/EHR"
ECHO = "/r1/RENKEI/GOV/HOSP-B/EHR/echo"

# Tight limits so that deadlines and caps show within a second or two.
LIMITS = {
    "RENKEI_NODE_MAX_BODY_BYTES": "1000000",
    "RENKEI_NODE_LIMITS__HEADER_TIMEOUT_S": "1",
    "RENKEI_NODE_LIMITS__BODY_IDLE_TIMEOUT_S": "1",
    "RENKEI_NODE_LIMITS__BODY_GRACE_S": "1",
    "RENKEI_NODE_LIMITS__MAX_URI_BYTES": "2048",
    "RENKEI_NODE_LIMITS__MAX_FIELD_BYTES": "2048",
    "RENKEI_NODE_LIMITS__MAX_HEADERS": "40",
    "RENKEI_NODE_LIMITS__MAX_IN_FLIGHT_PER_CLIENT": "2",
    "RENKEI_NODE_LIMITS__MAX_CONNECTIONS_PER_IP": "40",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("hostile") / "sandbox"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in LIMITS.items():
            patch.setenv(name, value)
        with sandbox_process(directory) as document:
            yield document


def _urls(federation: dict[str, Any], node_id: str = HOSP_A) -> tuple[str, str, str]:
    entry = node(federation, node_id)
    return entry["client_url"], entry["management_url"], entry["tokens"]["auditor"]


def _proven(federation: dict[str, Any], client: str = CLIENT) -> tuple[str, str]:
    """The client token header that proves ``client`` on its shared node."""
    return ("Renkei-Client-Token", node(federation, HOSP_A)["clients"][client]["token"])


def _request(
    target: str = f"{ECHO}/items",
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    headers: tuple[tuple[str, str], ...] = (),
    client: str | None = CLIENT,
    body: bytes = b"",
    host: bool = True,
) -> bytes:
    lines = [f"{method} {target} {version}"]
    if host:
        lines.append("Host: 127.0.0.1")
    if client is not None:
        lines.append(f"X-Road-Client: {client}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_CL = ("Content-Length", "4")
FRAMING_CASES: dict[str, tuple[bytes, int, str]] = {
    "content_length_and_chunked": (
        _request(method="POST", headers=(_CL, ("Transfer-Encoding", "chunked")), body=b"0\r\n\r\n"),
        400, "client.malformed_http",
    ),
    "duplicate_content_length": (
        _request(method="POST", headers=(_CL, ("Content-Length", "5")), body=b"abcde"),
        400, "client.malformed_http",
    ),
    "content_length_list": (
        _request(method="POST", headers=(("Content-Length", "4, 4"),), body=b"abcd"),
        400, "client.malformed_http",
    ),
    "obs_fold": (_request(headers=(("X-A", "b\r\n c"),)), 400, "client.malformed_http"),
    "bare_lf": (
        f"GET {ECHO} HTTP/1.1\nHost: a\nX-Road-Client: {CLIENT}\n\n".encode(),
        400, "client.malformed_http",
    ),
    "space_before_colon": (_request(headers=(("X-Road-Client ", CLIENT),)), 400,
                           "client.malformed_http"),
    "nul_in_header": (_request(headers=(("X-A", "a\x00b"),)), 400, "client.malformed_http"),
    "gzip_transfer_coding": (
        _request(method="POST", headers=(("Transfer-Encoding", "gzip, chunked"),),
                 body=b"0\r\n\r\n"),
        400, "client.malformed_http",
    ),
    "bad_chunk_size": (
        _request(method="POST", headers=(("Transfer-Encoding", "chunked"),),
                 body=b"4x\r\nabcd\r\n0\r\n\r\n"),
        400, "client.malformed_http",
    ),
    "http_2_over_h1": (_request(version="HTTP/2.0"), 505, "client.http_version_not_supported"),
    "http_0_9": (f"GET {ECHO}/items\r\n\r\n".encode(), 505, "client.http_version_not_supported"),
    "h2c_upgrade": (
        _request(headers=(("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                          ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"))),
        400, "client.malformed_http",
    ),
    "connection_names_identity_header": (
        _request(headers=(("Connection", "X-Road-Client"),)), 400, "client.malformed_http",
    ),
    "absolute_form_target": (_request(target=f"http://evil.example{ECHO}"), 400,
                             "client.malformed_http"),
    "connect_method": (_request(method="CONNECT", target="evil.example:443"), 405,
                       "client.method_not_allowed"),
    "trace_method": (_request(method="TRACE"), 405, "client.method_not_allowed"),
    "uri_too_long": (_request(target=ECHO + "/" + "a" * 3000), 414, "client.uri_too_long"),
    "uri_beyond_parser": (_request(target=ECHO + "/" + "a" * 9000), 414, "client.uri_too_long"),
    "header_too_large": (_request(headers=(("X-Big", "a" * 3000),)), 431,
                         "client.header_too_large"),
    "too_many_headers": (_request(headers=tuple((f"X-H{i}", "1") for i in range(60))), 431,
                         "client.header_too_large"),
    "body_too_large_by_length": (
        _request(method="POST", headers=(("Content-Length", "2000000"),)), 413,
        "client.body_too_large",
    ),
    "encoded_separator": (_request(target=f"{ECHO}/a%2Fb"), 400, "client.bad_request"),
    "encoded_dot_segment": (_request(target=f"{ECHO}/%2e%2e/x"), 400, "client.bad_request"),
    "dot_segment": (_request(target=f"{ECHO}/../x"), 400, "client.bad_request"),
    "encoded_backslash": (_request(target=f"{ECHO}/a%5Cb"), 400, "client.bad_request"),
    "encoded_control": (_request(target=f"{ECHO}/a%00b"), 400, "client.bad_request"),
    "duplicate_client": (_request(headers=(("X-Road-Client", "RENKEI/GOV/HOSP-A/OTHER"),)),
                         400, "client.bad_request"),
    "duplicate_message_id_header": (
        _request(headers=(("X-Road-Id", "a"), ("X-Road-Id", "b"))), 400, "client.bad_request",
    ),
    # X-Road's response-only headers are dropped, not refused (see
    # test_xroad_rest_conformance.py); Renkei's own node headers are refused.
    "caller_sets_withheld": (_request(headers=(("Renkei-Withheld", "x"),)), 400,
                             "client.bad_request"),
    "caller_sets_signature": (_request(headers=(("Renkei-Signature", "x.y.z"),)), 400,
                              "client.bad_request"),
    "bad_client_identifier": (_request(client="RENKEI/GOV/HOSP A/EHR"), 400,
                              "client.invalid_client_identifier"),
    "bad_service_identifier": (_request(target="/r1/RENKEI/GOV/HOSP-B/EHR%20X/echo"), 400,
                               "client.bad_request"),
    "missing_client": (_request(client=None), 400, "client.bad_request"),
    "expect_other_than_continue": (_request(headers=(("Expect", "200-ok"),)), 417,
                                   "client.expectation_failed"),
    "expect_continue_with_body_over_limit": (
        # Refused before "100 Continue" invites the body.
        _request(method="POST", headers=(("Content-Length", "2000000"),
                                         ("Expect", "100-continue"))),
        413, "client.body_too_large",
    ),
    "root_path": (_request(target="/"), 404, "client.not_found"),
    "other_protocol_version": (_request(target="/r2/RENKEI/GOV/HOSP-B/EHR/echo"), 404,
                               "client.not_found"),
    "upper_case_prefix": (_request(target="/R1/RENKEI/GOV/HOSP-B/EHR/echo"), 404,
                          "client.not_found"),
    "expect_twice": (
        _request(method="POST", headers=(_CL, ("Expect", "100-continue"), ("Expect", "x"))),
        417, "client.expectation_failed",
    ),
}


@pytest.mark.parametrize("case", sorted(FRAMING_CASES))
async def test_client_port_refuses_with_a_code_and_an_audit_row(
    hostile: dict[str, Any], case: str
) -> None:
    raw, status, code = FRAMING_CASES[case]
    client_url, management_url, token = _urls(hostile)
    before = await last_seq(management_url, token)
    response = await send_raw(client_url, raw)
    assert (response.status, response.headers.get("x-road-error")) == (status, code), (
        response.body[:300]
    )
    rows = await audit_rows_after(management_url, token, before)
    assert code in {row["error_code"] for row in rows}


async def test_http_1_0_is_served_on_the_client_port(hostile: dict[str, Any]) -> None:
    client_url, _, _ = _urls(hostile)
    response = await send_raw(
        client_url, _request(version="HTTP/1.0", headers=(_proven(hostile),))
    )
    assert response.status == 200
    assert "x-road-error" not in response.headers


async def test_a_well_formed_raw_request_passes(hostile: dict[str, Any]) -> None:
    client_url, _, _ = _urls(hostile)
    response = await send_raw(
        client_url, _request(method="POST", headers=(_CL, _proven(hostile)), body=b"abcd")
    )
    assert response.status == 200, response.body[:300]


def _peer_tls(hostile: dict[str, Any]) -> Any:
    settings = load_node_settings(Path(node(hostile, HOSP_A)["config"]))
    cadata = Path(hostile["trust"]["ca_cert"]).read_text()
    return client_context(settings.auth_certificate, settings.auth_key, cadata)


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (_request(version="HTTP/1.0"), 505, "client.http_version_not_supported"),
        (_request(headers=(_CL, ("Transfer-Encoding", "chunked"))), 400, "client.malformed_http"),
        (_request(headers=(("Upgrade", "websocket"), ("Connection", "Upgrade"))), 400,
         "client.malformed_http"),
        (_request(target=ECHO + "/" + "a" * 3000), 414, "client.uri_too_long"),
        (_request(headers=(("Expect", "200-ok"),)), 417, "client.expectation_failed"),
        (_request(target="/"), 404, "client.not_found"),
        (_request(target="/r2/RENKEI/GOV/HOSP-B/EHR/echo"), 404, "client.not_found"),
    ],
    ids=["http_1_0", "smuggling", "upgrade", "uri_too_long", "expect", "root", "r2"],
)
async def test_peer_port_refuses_with_a_code_and_an_audit_row(
    hostile: dict[str, Any], raw: bytes, status: int, code: str
) -> None:
    peer = node(hostile, HOSP_B)
    management_url, token = peer["management_url"], peer["tokens"]["auditor"]
    before = await last_seq(management_url, token)
    response = await send_raw(peer["peer_url"], raw, context=_peer_tls(hostile))
    assert (response.status, response.headers.get("x-road-error")) == (status, code)
    rows = await audit_rows_after(management_url, token, before)
    assert any(r["error_code"] == code and r["role"] == "provider" for r in rows)


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GET /healthz HTTP/2.0\r\nHost: a\r\n\r\n", 505, "client.http_version_not_supported"),
        (b"POST /api/consents HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
         b"Content-Length: 5\r\n\r\nabcde", 400, "client.malformed_http"),
        (b"POST /api/consents HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\n"
         b"Content-Length: 4\r\n\r\nabcd", 400, "client.malformed_http"),
        (b"GET /healthz HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417,
         "client.expectation_failed"),
    ],
    ids=["http_2", "duplicate_length", "compressed", "expect"],
)
async def test_management_port_refuses_with_a_code_and_an_audit_row(
    hostile: dict[str, Any], raw: bytes, status: int, code: str
) -> None:
    _, management_url, token = _urls(hostile)
    before = await last_seq(management_url, token)
    response = await send_raw(management_url, raw)
    assert (response.status, response.headers.get("x-road-error")) == (status, code)
    rows = await audit_rows_after(management_url, token, before)
    assert any(r["error_code"] == code and r["role"] == "management" for r in rows)


async def test_a_client_trickling_its_head_is_cut_off(hostile: dict[str, Any]) -> None:
    client_url, management_url, token = _urls(hostile)
    before = await last_seq(management_url, token)
    reader, writer = await asyncio.open_connection(*host_port(client_url))
    started = asyncio.get_running_loop().time()
    data = b""
    try:
        for byte in _request():
            writer.write(bytes([byte]))
            await writer.drain()
            chunk = b""
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.2)
            except TimeoutError:
                continue
            data += chunk
            if not chunk or b"\r\n\r\n" in data:
                break
    except ConnectionError:
        pass
    finally:
        writer.close()
    elapsed = asyncio.get_running_loop().time() - started
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"client.request_timeout" in data
    assert elapsed < 3
    rows = await audit_rows_after(management_url, token, before)
    assert "client.request_timeout" in {row["error_code"] for row in rows}


async def test_a_client_stalling_its_body_is_cut_off(hostile: dict[str, Any]) -> None:
    client_url, management_url, token = _urls(hostile)
    before = await last_seq(management_url, token)
    message_id = str(uuid.uuid4())
    raw = _request(
        method="POST",
        headers=(("Content-Length", "1000"), ("X-Road-Id", message_id), _proven(hostile)),
        body=b"x" * 10,
    )
    started = asyncio.get_running_loop().time()
    response = await send_raw(client_url, raw, timeout=6)
    assert (response.status, response.headers.get("x-road-error")) == (
        408, "client.request_timeout",
    )
    assert asyncio.get_running_loop().time() - started < 4
    rows = await audit_rows_after(management_url, token, before)
    assert any(r["message_id"] == message_id and r["error_code"] == "client.request_timeout"
               for r in rows)


async def test_exchanges_beyond_the_in_flight_cap_get_429(hostile: dict[str, Any]) -> None:
    """Two exchanges of one client are held open by their bodies; a third is refused."""
    client_url, _management_url, _token = _urls(hostile)
    # The cap counts callers that proved who they are (gateway/client_port.py).
    proven = _proven(hostile)
    held = []
    try:
        for _ in range(2):
            _reader, writer = await asyncio.open_connection(*host_port(client_url))
            writer.write(_request(method="POST", headers=(("Content-Length", "100"), proven),
                                  body=b"x"))
            await writer.drain()
            held.append(writer)
        await asyncio.sleep(0.2)
        response = await send_raw(client_url, _request(headers=(proven,)))
        assert (response.status, response.headers.get("x-road-error")) == (
            429, "client.too_many_requests",
        )
        # Naming the client without proving it takes none of its slots, and gets none.
        claimed = await send_raw(client_url, _request())
        assert (claimed.status, claimed.headers.get("x-road-error")) == (
            401, "client.authentication_failed",
        )
        assert response.headers.get("retry-after") == "1"
        other = await send_raw(client_url, _request(client="RENKEI/COM/INSURER/CLAIMS"))
        assert other.status != 429
    finally:
        for writer in held:
            writer.close()


async def test_connections_beyond_the_per_address_cap_are_refused(
    hostile: dict[str, Any],
) -> None:
    client_url, _, _ = _urls(hostile)
    opened = []
    try:
        refused = None
        for _ in range(60):
            reader, writer = await asyncio.open_connection(*host_port(client_url))
            opened.append(writer)
            try:
                data = await asyncio.wait_for(reader.read(4096), 0.05)
            except TimeoutError:
                continue
            if data.startswith(b"HTTP/1.1 429"):
                refused = data
                break
        assert refused is not None
        assert b"client.too_many_requests" in refused
        assert b"Retry-After: 1" in refused
    finally:
        for writer in opened:
            writer.close()
    await asyncio.sleep(0.2)
    # The cap is per connection: once they close, the address is served again.
    response = await send_raw(client_url, _request(headers=(_proven(hostile),)))
    assert response.status == 200


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_1"])
async def test_peer_port_refuses_tls_below_1_3(hostile: dict[str, Any], version: str) -> None:
    import ssl

    context = _peer_tls(hostile)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = getattr(ssl.TLSVersion, version)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await send_raw(node(hostile, HOSP_B)["peer_url"], _request(), context=context)


async def test_peer_port_speaks_tls_1_3(hostile: dict[str, Any]) -> None:
    host, port = host_port(node(hostile, HOSP_B)["peer_url"])
    _, writer = await asyncio.open_connection(host, port, ssl=_peer_tls(hostile))
    try:
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
    finally:
        writer.close()


INSURER = "RENKEI/COM/INSURER/CLAIMS"


async def _grant_get_open_to_the_insurer(hostile: dict[str, Any]) -> None:
    """A GET-only right for ``/open/**`` of the echo service (idempotent: one per module)."""
    import aiohttp

    provider = node(hostile, HOSP_B)
    headers = {"Authorization": f"Bearer {provider['tokens']['admin']}"}
    grant = {"service": ECHO[len("/r1/"):], "grantee": INSURER, "method": "GET",
             "path": "/open/**"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{provider['management_url']}/api/access") as response:
            rights = (await response.json())["access"]
        if any(r.get("grantee") == INSURER and r.get("path") == "/open/**" for r in rights):
            return
        async with session.post(f"{provider['management_url']}/api/access", json=grant) as r:
            assert r.status in (200, 201), await r.text()


async def test_a_get_right_on_open_reaches_open_only(hostile: dict[str, Any]) -> None:
    await _grant_get_open_to_the_insurer(hostile)
    client_url, _, _ = _urls(hostile)
    proof = (_proven(hostile, INSURER),)
    allowed = await send_raw(
        client_url, _request(f"{ECHO}/open/items", client=INSURER, headers=proof)
    )
    assert allowed.status == 200, allowed.body[:300]
    denied = await send_raw(client_url, _request(f"{ECHO}/admin", client=INSURER, headers=proof))
    assert denied.headers.get("x-road-error") == "server.serverproxy.access_denied"


@pytest.mark.parametrize(
    "target",
    [f"{ECHO}/open/..;/admin", f"{ECHO}/open/%2e%2e;/admin", f"{ECHO}/open/x;jsessionid=1",
     f"{ECHO}/open/..%3B/admin"],
    ids=["dot_dot_semicolon", "encoded_dot_dot_semicolon", "matrix_parameter",
         "encoded_semicolon"],
)
async def test_path_parameters_do_not_reach_a_backend(
    hostile: dict[str, Any], target: str
) -> None:
    """``/open/..;/admin`` is ``/admin`` to a backend that cuts ``;`` parameters off."""
    await _grant_get_open_to_the_insurer(hostile)
    client_url, _, _ = _urls(hostile)
    provider = node(hostile, HOSP_B)
    management_url, token = provider["management_url"], provider["tokens"]["auditor"]
    before = await last_seq(management_url, token)
    message_id = str(uuid.uuid4())
    response = await send_raw(
        client_url, _request(
            target,
            client=INSURER,
            headers=(("X-Road-Id", message_id), _proven(hostile, INSURER)),
        )
    )
    assert (response.status, response.headers.get("x-road-error")) == (
        400, "client.bad_request",
    ), response.body[:300]
    rows = await audit_rows_after(management_url, token, before)
    assert any(r["message_id"] == message_id and r["error_code"] == "client.bad_request"
               for r in rows)


@pytest.mark.parametrize(
    "header", ["X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method"]
)
async def test_method_override_headers_are_refused(
    hostile: dict[str, Any], header: str
) -> None:
    """A GET-only right must not become a DELETE at a backend that honours overrides."""
    await _grant_get_open_to_the_insurer(hostile)
    client_url, management_url, token = _urls(hostile)
    before = await last_seq(management_url, token)
    response = await send_raw(
        client_url,
        _request(
            f"{ECHO}/open/items",
            client=INSURER,
            headers=((header, "DELETE"), _proven(hostile, INSURER)),
        ),
    )
    assert (response.status, response.headers.get("x-road-error")) == (
        400, "client.bad_request",
    ), response.body[:300]
    rows = await audit_rows_after(management_url, token, before)
    assert "client.bad_request" in {row["error_code"] for row in rows}

"""Refused credentials: counted, logged at a bounded rate, and failed TLS
handshakes seen at all (asyncio keeps them to its debug log)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from certs.ca import CertificateAuthority
from certs.identifiers import NodeId
from certs.keys import generate_key, save_certificate, save_private_key
from certs.profiles import make_csr
from gateway.rejections import PEER_TLS, RejectionLog, tls_reason
from gateway.tls import on_handshake_failure, server_context, trust_bundle

NOW = datetime.now(UTC)


def test_every_refusal_is_counted_but_the_log_lines_are_bounded() -> None:
    clock = [0.0]
    rejections = RejectionLog(period_s=60, burst=3, clock=lambda: clock[0])
    with capture_logs() as lines:
        for _ in range(10):
            rejections.record("management_token", "signature", remote="127.0.0.1")
        rejections.record("management_token", "audience")
        clock[0] = 61.0
        rejections.record("management_token", "algorithm")
    assert rejections.counts() == {
        ("management_token", "signature"): 10,
        ("management_token", "audience"): 1,
        ("management_token", "algorithm"): 1,
    }
    events = [(line["event"], line.get("reason"), line.get("count")) for line in lines]
    assert events == [
        ("credential_rejected", "signature", None),
        ("credential_rejected", "signature", None),
        ("credential_rejected", "signature", None),
        # 8 left out of the first minute, said when the next one starts
        ("credentials_rejected_not_logged", None, 8),
        ("credential_rejected", "algorithm", None),
    ]


def test_each_kind_has_its_own_budget() -> None:
    rejections = RejectionLog(period_s=60, burst=1, clock=lambda: 0.0)
    with capture_logs() as lines:
        rejections.record("management_token", "signature")
        rejections.record("peer_tls", "http_request")
    assert [line["kind"] for line in lines] == ["management_token", "peer_tls"]


def test_tls_reasons_are_labels() -> None:
    error = ssl.SSLError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    error.reason = "CERTIFICATE_VERIFY_FAILED"  # type: ignore[misc]
    assert tls_reason(error) == "certificate_verify_failed"
    assert tls_reason(ssl.SSLEOFError()) == "closed_during_handshake"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority.create(directory / "ca", instance="EE", now=NOW - timedelta(days=1))
    paths: dict[str, Path] = {}
    for name in ("server", "client"):
        key = generate_key("ec-p256")
        node = NodeId("EE", "GOV", f"7000000{len(paths)}", name)
        cert = ca.issue(make_csr(key, node, "auth"), profile="auth", now=NOW - timedelta(days=1))
        paths[f"{name}_key"] = directory / f"{name}.key"
        paths[f"{name}_cert"] = directory / f"{name}.pem"
        save_private_key(key, paths[f"{name}_key"])
        save_certificate(cert, paths[f"{name}_cert"])
    paths["ca"] = directory / "ca.pem"
    paths["ca"].write_text(trust_bundle([ca.certificate]))
    return paths


async def _serve(context: ssl.SSLContext) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1]


async def test_failed_handshakes_on_the_peer_port_are_reported(pki: dict[str, Path]) -> None:
    context = server_context(pki["server_cert"], pki["server_key"], pki["ca"].read_text())
    rejections = RejectionLog()
    on_handshake_failure(context, lambda exc: rejections.record(PEER_TLS, tls_reason(exc)))
    server, port = await _serve(context)
    try:
        # Plain HTTP on the TLS port.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await reader.read()
        writer.close()
        # TLS without a client certificate.
        bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        bare.check_hostname = False
        bare.verify_mode = ssl.CERT_NONE
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            # TLS 1.3: the client may learn of the refusal only on its first read.
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=bare)
            await reader.read()
        # A good client still gets through, and is not counted.
        good = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        good.check_hostname = False
        good.load_verify_locations(cafile=str(pki["ca"]))
        good.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=good)
        await reader.read()
        writer.close()
        for _ in range(50):
            if sum(rejections.counts().values()) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        server.close()
        await server.wait_closed()
    counts = rejections.counts()
    assert counts.get((PEER_TLS, "http_request")) == 1, counts
    assert sum(counts.values()) == 2, counts
    assert counts.get((PEER_TLS, "peer_did_not_return_a_certificate")) == 1, counts

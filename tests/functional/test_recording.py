"""Nothing runs that is not recorded: what the nodes of a running sandbox log
when their own database, their peer or their management API misbehaves."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import signal
import sqlite3
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from yarl import URL

from gateway.db import create_engine
from gateway.signing import request_hash
from tests.functional.sandbox_helpers import client_headers, node
from tests.functional.test_peer_security import peer_url, settings_of, signed_request, tls
from tests.soak.federation import Federation, running_federation

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
ECHO = "RENKEI/GOV/HOSP-B/EHR/echo"
HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"


@contextlib.asynccontextmanager
async def locked_database(url: str) -> AsyncIterator[None]:
    """Hold the write lock of a node's database (SQLite) or its chain head (PostgreSQL)."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
        finally:
            connection.rollback()
            connection.close()
        return
    engine = create_engine(url)
    try:
        async with engine.connect() as locker:
            transaction = await locker.begin()
            await locker.execute(text("SELECT seq FROM audit_chain_head FOR UPDATE"))
            try:
                yield
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


async def rows_with_path(
    session: aiohttp.ClientSession, federation: dict[str, Any], node_id: str, marker: str
) -> list[dict[str, Any]]:
    entry = node(federation, node_id)
    async with session.get(
        f"{entry['management_url']}/api/audit/rows",
        params={"service": ECHO, "limit": "10000"},
        headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
    ) as response:
        assert response.status == 200
        rows = (await response.json())["rows"]
    return [row for row in rows if marker in (row["path"] or "")]


async def test_a_consumer_with_a_locked_database_relays_nothing(
    federation: dict[str, Any],
) -> None:
    consumer = node(federation, HOSP_A)
    marker = f"locked-{uuid.uuid4().hex}"
    async with aiohttp.ClientSession() as session:
        async with locked_database(consumer["database"]):
            # No X-Road-Id: nothing but the audit log touches the database first.
            async with session.get(
                f"{consumer['client_url']}/r1/{ECHO}/{marker}",
                headers=client_headers(federation, CONSUMER),
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response:
                await response.read()
                assert response.status == 500  # r1: X-Road's 500 for server.* (docs/protocol.md)
                assert response.headers["X-Road-Error"] == "server.database_unavailable"
        # A relayed request would have been logged by the provider before it answered.
        assert await rows_with_path(session, federation, HOSP_B, marker) == []
        # The consumer's refusal row lands once its database is back.
        for _ in range(100):
            refused = await rows_with_path(session, federation, HOSP_A, marker)
            if refused:
                break
            await asyncio.sleep(0.2)
        assert [row["error_code"] for row in refused] == ["server.database_unavailable"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _metric_lines(session: aiohttp.ClientSession, entry: dict[str, Any]) -> list[str]:
    async with session.get(str(entry["metrics_url"])) as response:
        text_ = await response.text()
    return [line for line in text_.splitlines() if line.startswith("renkei_rejected_credentials")]


def _count(lines: list[str], kind: str, reason: str) -> float:
    prefix = f'renkei_rejected_credentials_total{{kind="{kind}",reason="{reason}"}} '
    return sum(float(line[len(prefix):]) for line in lines if line.startswith(prefix))


async def test_rejected_tokens_and_handshakes_leave_a_trace(federation: dict[str, Any]) -> None:
    provider, other = node(federation, HOSP_B), node(federation, HOSP_A)
    header, payload, _ = provider["tokens"]["auditor"].split(".")
    alg_none = _b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    forged = [  # (token, the reason the node records)
        (other["tokens"]["auditor"], "signature"),  # a real token of another node, its key
        (f"{alg_none}.{payload}.", "algorithm"),
        (f"{header}.{payload}.{_b64(b'x' * 64)}", "signature"),
    ]
    async with aiohttp.ClientSession() as session:
        before = await _metric_lines(session, provider)
        for token, _ in forged:
            async with session.get(
                f"{provider['management_url']}/api/audit/rows",
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status == 401
        peer = URL(str(provider["peer_url"]))
        # Plain HTTP, then TLS without a client certificate, on the peer port.
        reader, writer = await asyncio.open_connection(peer.host, peer.port)
        writer.write(b"GET /r1/ HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await reader.read()
        writer.close()
        bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        bare.check_hostname, bare.verify_mode = False, ssl.CERT_NONE
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            reader, writer = await asyncio.open_connection(peer.host, peer.port, ssl=bare)
            await reader.read()
        for _ in range(50):
            after = await _metric_lines(session, provider)
            if _count(after, "peer_tls", "peer_did_not_return_a_certificate") > _count(
                before, "peer_tls", "peer_did_not_return_a_certificate"
            ):
                break
            await asyncio.sleep(0.1)
    for reason, times in collections.Counter(reason for _, reason in forged).items():
        assert _count(after, "management_token", reason) == (
            _count(before, "management_token", reason) + times
        ), (reason, after)
    for reason in ("http_request", "peer_did_not_return_a_certificate"):
        assert _count(after, "peer_tls", reason) == _count(before, "peer_tls", reason) + 1, after
    await asyncio.sleep(0.5)  # log lines are flushed by the node process
    logged = "".join(
        path.read_text("utf-8", "replace")
        for path in (Path(federation["dir"]) / "logs").glob("*.log")
    )
    assert "credential_rejected" in logged
    for reason in ("signature", "algorithm", "http_request", "peer_did_not_return_a_certificate"):
        assert f"reason={reason}" in logged or f'"reason": "{reason}"' in logged, reason


async def _cosigned_size(session: aiohttp.ClientSession, entry: dict[str, Any]) -> int:
    async with session.get(
        f"{entry['management_url']}/api/audit/checkpoints",
        headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
    ) as response:
        body = await response.json()
    checkpoints = body["checkpoints"] if isinstance(body, dict) else body
    return max((c["tree_size"] for c in checkpoints if c.get("cosignature")), default=0)


def test_a_node_whose_log_was_rolled_back_while_down_does_not_serve(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    directory = tmp_path_factory.mktemp("rollback") / "sandbox"
    environ = {"RENKEI_NODE_AUDIT__CHECKPOINT_INTERVAL_S": "1"}
    with running_federation(directory, environ=environ) as federation:
        asyncio.run(_roll_back_and_restart(federation))


async def _roll_back_and_restart(federation: Federation) -> None:
    provider = federation.node(HOSP_B)
    consumer = federation.node(HOSP_A)
    async with aiohttp.ClientSession() as session:
        for _ in range(4):
            async with session.get(
                f"{consumer['client_url']}/r1/{ECHO}/before",
                headers=client_headers(federation.document, CONSUMER),
            ) as response:
                assert response.status == 200
        for _ in range(150):  # the 1 s checkpoint task gets the rows cosigned
            if await _cosigned_size(session, provider) >= 4:
                break
            await asyncio.sleep(0.2)
        assert await _cosigned_size(session, provider) >= 4
    config = Path(provider["config"])
    federation.kill(config, signal.SIGTERM)
    await federation.wait_gone(config)
    # Restore "an older backup": the last rows, their checkpoints and the head go back.
    database = make_url(provider["database"]).database or ""
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute("DELETE FROM audit_log WHERE seq > 1")
        db.execute("DELETE FROM audit_checkpoint WHERE tree_size > 1")
        db.execute(
            "UPDATE audit_chain_head SET seq = 1, entry_hash ="
            " (SELECT entry_hash FROM audit_log WHERE seq = 1)"
        )
    federation.start("node", config)
    async with aiohttp.ClientSession() as session:
        readiness: dict[str, Any] = {}
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{provider['management_url']}/readyz") as response:
                    readiness = await response.json()
                    assert response.status == 503
                    break
            await asyncio.sleep(0.2)
        check = readiness["checks"]["audit_chain"]
        assert check["ok"] is False
        assert "truncated or rolled back" in check["error"]
        own_client = {"X-Road-Client": "RENKEI/GOV/HOSP-B/EHR"}
        async with session.get(
            f"{provider['client_url']}/r1/{ECHO}/after", headers=own_client
        ) as response:
            assert response.status == 503
            assert response.headers["X-Road-Error"] == "server.audit_chain_mismatch"
        # Its peer port refuses too, unsigned: the consumer does not relay that as the
        # provider's word, and says so with its own code.
        async with session.get(
            f"{consumer['client_url']}/r1/{ECHO}/after",
            headers=client_headers(federation.document, CONSUMER),
        ) as response:
            assert response.headers["X-Road-Error"] == "server.clientproxy.refusal_unsigned"


async def test_the_operator_trail_records_before_and_after_and_verifies(
    federation: dict[str, Any],
) -> None:
    provider = node(federation, HOSP_B)
    admin = {"Authorization": f"Bearer {provider['tokens']['admin']}"}
    api = provider["management_url"]
    right = {"service": ECHO, "grantee": "RENKEI/COM/INSURER/CLAIMS", "method": "GET",
             "path": "/trail"}  # fmt: skip
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{api}/api/access", json=right, headers=admin) as response:
            assert response.status == 201
            granted = await response.json()
        async with session.delete(f"{api}/api/access/{granted['id']}", headers=admin) as response:
            assert response.status == 200
        async with session.get(f"{api}/api/operator-log", headers=admin) as response:
            entries = (await response.json())["entries"]
        async with session.get(f"{api}/api/operator-log/verify", headers=admin) as response:
            verified = await response.json()
    grant, revoke = (json.loads(entry["change"]) for entry in entries[-2:])
    assert grant["before"] is None
    assert grant["after"]["grantee"] == "RENKEI/COM/INSURER/CLAIMS"
    assert revoke == {"before": grant["after"], "after": None}
    assert [entry["seq"] for entry in entries] == list(range(1, len(entries) + 1))
    assert verified == {"ok": True, "entries": len(entries)}


async def test_a_provider_refusal_is_signed_and_kept_on_both_sides(
    federation: dict[str, Any],
) -> None:
    consumer = node(federation, HOSP_A)
    message_id = str(uuid.uuid4())
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{consumer['client_url']}/r1/{ECHO}/refused",
            headers={
                **client_headers(federation, "RENKEI/COM/INSURER/CLAIMS"),
                "X-Road-Id": message_id,
            },
        ) as response:
            assert response.headers["X-Road-Error"] == "server.serverproxy.access_denied"
        rows = {}
        for node_id in (HOSP_A, HOSP_B):
            entry = node(federation, node_id)
            async with session.get(
                f"{entry['management_url']}/api/audit/rows", params={"message_id": message_id},
                headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
            ) as answer:
                (rows[node_id],) = (await answer.json())["rows"]
    consumer_row, provider_row = rows[HOSP_A], rows[HOSP_B]
    assert provider_row["response_signature"]
    # The consumer keeps the provider's signed refusal: neither side can deny it.
    assert consumer_row["response_signature"] == provider_row["response_signature"]
    assert consumer_row["error_code"] == provider_row["error_code"]
    assert consumer_row["response_body_sha256"]


async def test_refusals_before_the_signature_verified_are_signed_too(
    federation: dict[str, Any],
) -> None:
    """Signed for another node, or its body changed: the provider still signs its
    refusal, bound to the token it was given, so the consumer can relay it."""
    settings = settings_of(federation, HOSP_A)
    context = tls(federation, settings.auth_certificate, settings.auth_key)
    for destination, body in ((HOSP_A, b'{"a": 1}'), (HOSP_B, b'{"a": 2}')):
        headers, target = await signed_request(federation, destination=destination)
        token = dict(headers)["Renkei-Signature"]
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
            session.post(peer_url(federation) + target, headers=headers, data=body) as response,
        ):
            await response.read()
            assert response.headers["X-Road-Error"].startswith("server.serverproxy."), destination
            assert response.headers["X-Road-Request-Hash"] == request_hash(token)
            signed = response.headers["Renkei-Signature"]
        payload = json.loads(base64.urlsafe_b64decode(signed.split(".")[1] + "=="))
        assert payload["error"] == response.headers["X-Road-Error"]
        assert payload["request_hash"] == request_hash(token)

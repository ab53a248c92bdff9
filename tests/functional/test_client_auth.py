"""Who calls the client port is proven: a shared node's subsystems cannot pose as each other.

The default sandbox's Hospital A node also hosts the insurer's subsystem; the
sandbox sets both to connection type TOKEN and registers a TLS client
certificate for each (gateway/sandbox/run.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from certs.identifiers import SubsystemId
from certs.internal_tls import self_signed_tls_certificate
from certs.keys import generate_key, save_certificate, save_private_key
from gateway.client_auth import ClientPortUnprotected, ConnectionType
from gateway.client_auth_store import ClientAuthStore
from gateway.db import create_engine
from gateway.schema import upgrade_node_schema
from gateway.serve import running_node
from gateway.settings import load_node_settings
from tests.functional.sandbox_helpers import node

HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSPITAL = "RENKEI/GOV/HOSP-A/EHR"
INSURER = "RENKEI/COM/INSURER/CLAIMS"
ECHO = "/r1/RENKEI/GOV/HOSP-B/EHR/echo/x"
CLIENTS = "/api/clients"


def _entry(federation: dict[str, Any]) -> dict[str, Any]:
    return node(federation, HOSP_A)


def _tls(federation: dict[str, Any], subsystem: str | None) -> ssl.SSLContext:
    """An information system's TLS context: pins the node, presents ``subsystem``'s cert."""
    entry = _entry(federation)
    context = ssl.create_default_context(cafile=entry["client_tls_certificate"])
    if subsystem is not None:
        client = entry["clients"][subsystem]
        context.load_cert_chain(client["tls_certificate"], client["tls_key"])
    return context


async def _call(
    federation: dict[str, Any],
    client: str,
    *,
    token: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> tuple[int, str | None, str]:
    entry = _entry(federation)
    base = entry["client_tls_url"] if tls is not None else entry["client_url"]
    message_id = str(uuid.uuid4())
    headers = {"X-Road-Client": client, "X-Road-Id": message_id}
    if token is not None:
        headers["Renkei-Client-Token"] = token
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}{ECHO}", headers=headers, ssl=tls or False) as response:
            await response.read()
            return response.status, response.headers.get("X-Road-Error"), message_id


async def _management(
    federation: dict[str, Any], method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    entry = _entry(federation)
    headers = {"Authorization": f"Bearer {entry['tokens']['admin']}"}
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, f"{entry['management_url']}{path}", json=body, headers=headers
        ) as response:
            return response.status, await response.json()


async def _refused_and_logged(
    federation: dict[str, Any], outcome: tuple[int, str | None, str]
) -> None:
    status, code, message_id = outcome
    assert (status, code) == (401, "client.authentication_failed")
    entry = _entry(federation)
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{entry['management_url']}/api/audit/rows",
            params={"message_id": message_id},
            headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
        ) as response:
            rows = (await response.json())["rows"]
    assert [(row["error_code"], row["status"]) for row in rows] == [
        ("client.authentication_failed", 401)
    ]


def _client_path(subsystem: str) -> str:
    return f"{CLIENTS}/{subsystem}"


async def test_each_subsystem_passes_with_its_own_token(federation: dict[str, Any]) -> None:
    clients = _entry(federation)["clients"]
    assert (await _call(federation, HOSPITAL, token=clients[HOSPITAL]["token"]))[:2] == (
        200, None,
    )
    # The insurer is authenticated; Hospital B then refuses it for lack of a right.
    status, code, _ = await _call(federation, INSURER, token=clients[INSURER]["token"])
    assert (status, code) == (500, "server.serverproxy.access_denied")


async def test_missing_credentials_are_refused_and_logged(federation: dict[str, Any]) -> None:
    await _refused_and_logged(federation, await _call(federation, HOSPITAL))


async def test_the_token_of_another_subsystem_is_refused(federation: dict[str, Any]) -> None:
    insurer = _entry(federation)["clients"][INSURER]["token"]
    await _refused_and_logged(federation, await _call(federation, HOSPITAL, token=insurer))


async def test_an_unsigned_token_is_refused(federation: dict[str, Any]) -> None:
    real = _entry(federation)["clients"][HOSPITAL]["token"]
    claims = real.split(".")[1]
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    forged = f"{header.rstrip(b'=').decode()}.{claims}."
    await _refused_and_logged(federation, await _call(federation, HOSPITAL, token=forged))


async def test_an_expired_or_revoked_token_is_refused(federation: dict[str, Any]) -> None:
    path = f"{_client_path(HOSPITAL)}/tokens"
    status, short = await _management(federation, "POST", path, {"ttl_s": 1})
    assert status == 201, short
    await asyncio.sleep(1.5)
    await _refused_and_logged(federation, await _call(federation, HOSPITAL, token=short["token"]))

    status, issued = await _management(federation, "POST", path, {"ttl_s": 600})
    assert (await _call(federation, HOSPITAL, token=issued["token"]))[0] == 200
    status, _ = await _management(federation, "DELETE", f"{path}/{issued['token_id']}")
    assert status == 200
    # The revocation applies to the next request.
    await _refused_and_logged(federation, await _call(federation, HOSPITAL, token=issued["token"]))


async def test_a_registered_certificate_proves_its_subsystem_over_tls(
    federation: dict[str, Any],
) -> None:
    status, code, _ = await _call(federation, HOSPITAL, tls=_tls(federation, HOSPITAL))
    assert (status, code) == (200, None)


async def test_the_certificate_of_another_subsystem_is_refused(
    federation: dict[str, Any],
) -> None:
    outcome = await _call(federation, HOSPITAL, tls=_tls(federation, INSURER))
    await _refused_and_logged(federation, outcome)


async def test_an_unregistered_certificate_fails_the_handshake(
    federation: dict[str, Any], tmp_path: Path
) -> None:


    key = generate_key()
    save_private_key(key, tmp_path / "stranger.key")
    save_certificate(
        self_signed_tls_certificate(key, HOSPITAL, role="client", now=datetime.now(UTC)),
        tmp_path / "stranger.pem",
    )
    context = _tls(federation, None)
    context.load_cert_chain(tmp_path / "stranger.pem", tmp_path / "stranger.key")
    with pytest.raises(aiohttp.ClientError):
        await _call(federation, HOSPITAL, tls=context)


async def test_plain_http_is_refused_where_tls_is_required(federation: dict[str, Any]) -> None:
    insurer = _entry(federation)["clients"][INSURER]["token"]
    path = f"{_client_path(INSURER)}/connection-type"
    assert (await _management(federation, "PUT", path, {"connection_type": "HTTPS"}))[0] == 200
    try:
        await _refused_and_logged(federation, await _call(federation, INSURER, token=insurer))
        # Over TLS the same token, or the insurer's certificate, is accepted.
        for outcome in (
            await _call(federation, INSURER, token=insurer, tls=_tls(federation, None)),
            await _call(federation, INSURER, tls=_tls(federation, INSURER)),
        ):
            assert outcome[:2] == (500, "server.serverproxy.access_denied")
    finally:
        await _management(federation, "PUT", path, {"connection_type": "TOKEN"})


async def test_a_shared_node_keeps_its_client_port_authenticated(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    path = f"{_client_path(INSURER)}/connection-type"
    status, refusal = await _management(federation, "PUT", path, {"connection_type": "HTTP"})
    assert (status, refusal["type"]) == (409, "client_auth.unprotected")
    status, listing = await _management(federation, "GET", CLIENTS)
    kinds = {entry["client"]: entry["connection_type"] for entry in listing["clients"]}
    assert kinds[INSURER] == "TOKEN"

    # The same node started on a database that lets a subsystem prove nothing
    # refuses to start unless its settings say so explicitly.


    url = f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
    engine = create_engine(url)
    await upgrade_node_schema(engine)
    await ClientAuthStore(engine).set_connection_type(
        SubsystemId.parse(INSURER), ConnectionType.HTTP, now=datetime.now(UTC)
    )
    await engine.dispose()
    environ = {
        "RENKEI_NODE_DATA_DIR": str(tmp_path),
        "RENKEI_NODE_DATABASE_URL": url,
        "RENKEI_NODE_CLIENT__PORT": "0",
        "RENKEI_NODE_CLIENT_TLS__PORT": "0",
        "RENKEI_NODE_PEER__PORT": "0",
        "RENKEI_NODE_MANAGEMENT__PORT": "0",
    }
    config = Path(_entry(federation)["config"])
    with pytest.raises(ClientPortUnprotected, match="allow_unauthenticated"):
        async with running_node(load_node_settings(config, environ=environ)):
            pass
    allowed = {**environ, "RENKEI_NODE_CLIENT__ALLOW_UNAUTHENTICATED": "true"}
    async with running_node(load_node_settings(config, environ=allowed)) as run:
        assert run.client_tls_port

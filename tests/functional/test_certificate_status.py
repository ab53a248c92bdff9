"""Certificate status on every exchange: stapled OCSP responses, revocation, freshness."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from certs.ca import CertificateAuthority
from certs.keys import load_certificates
from tests.functional.sandbox_helpers import client_headers, node, sandbox_process
from tests.functional.test_peer_security import send, settings_of, signed_request, staple

HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
FRESHNESS_S = 8


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A sandbox whose OCSP freshness limit is short enough to watch it expire."""
    directory = tmp_path_factory.mktemp("status")
    default = resources.files("gateway.sandbox").joinpath("default.toml").read_text("utf-8")
    description = directory / "description.toml"
    # default.toml ends with its [settings] table: the line joins it.
    description.write_text(default + f"\nocsp_freshness_s = {FRESHNESS_S}\n")
    with sandbox_process(directory / "sandbox", description=description) as document:
        yield document


def replace_header(
    headers: list[tuple[str, str]], name: str, value: str | None
) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in headers if k != name]
    return kept if value is None else [*kept, (name, value)]


async def test_missing_auth_staple_is_refused(federation: dict[str, Any]) -> None:
    headers, target = await signed_request(federation)
    headers = replace_header(headers, "Renkei-Auth-Status", None)
    assert await send(federation, headers, target) == (500, "server.serverproxy.ocsp_missing")


async def test_staple_for_another_certificate_is_refused(federation: dict[str, Any]) -> None:
    settings = settings_of(federation, HOSP_A)
    wrong = await staple(federation, settings.sign_keys[0].certificate)
    headers, target = await signed_request(federation)
    headers = replace_header(headers, "Renkei-Auth-Status", base64.b64encode(wrong).decode())
    assert await send(federation, headers, target) == (500, "server.serverproxy.ocsp_invalid")


async def test_malformed_staple_is_refused(federation: dict[str, Any]) -> None:
    headers, target = await signed_request(federation)
    headers = replace_header(headers, "Renkei-Auth-Status", "not base64!")
    status, code = await send(federation, headers, target)
    assert status == 500
    assert code == "server.serverproxy.ssl_authentication_failed"


async def test_revoked_node_is_refused_within_the_freshness_limit(
    federation: dict[str, Any],
) -> None:
    settings = settings_of(federation, HOSP_A)
    old_staple = await staple(federation, settings.auth_certificate)
    good_at = time.monotonic()
    ca = CertificateAuthority.load(Path(federation["trust"]["ca_dir"]))
    serial = load_certificates(settings.auth_certificate)[0].serial_number
    ca.revoke(serial, reason="keyCompromise", now=datetime.now(UTC))

    # A fresh response now says revoked: refused at once.
    headers, target = await signed_request(federation)
    assert await send(federation, headers, target) == (500, "server.serverproxy.ocsp_revoked")

    # A node replaying its last good response is accepted only while it is fresh...
    headers, target = await signed_request(federation)
    headers = replace_header(headers, "Renkei-Auth-Status", base64.b64encode(old_staple).decode())
    status, _ = await send(federation, headers, target)
    assert status == 200
    # ...and refused once it is older than the configuration's freshness limit.
    await asyncio.sleep(max(0.0, FRESHNESS_S + 1.5 - (time.monotonic() - good_at)))
    headers, target = await signed_request(federation)
    headers = replace_header(headers, "Renkei-Auth-Status", base64.b64encode(old_staple).decode())
    assert await send(federation, headers, target) == (500, "server.serverproxy.ocsp_stale")

    # The revoked node itself stops sending and reports not ready.
    entry = node(federation, HOSP_A)
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{entry['client_url']}/r1/RENKEI/GOV/HOSP-B/EHR/echo/x",
            headers=client_headers(federation, "RENKEI/GOV/HOSP-A/EHR"),
        ) as response:
            assert response.status == 500  # r1: X-Road's 500 for server.* (docs/protocol.md)
            assert (
                response.headers["X-Road-Error"]
                == "server.clientproxy.certificate_status_unavailable"
            )
        async with session.get(f"{entry['management_url']}/readyz") as response:
            assert response.status == 503
            checks = (await response.json())["checks"]
            assert checks["ocsp:auth"]["ok"] is False

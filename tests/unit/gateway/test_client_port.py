"""The client port's gate: refusals with a code and a row; caps keyed on proven callers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import ec

from certs.identifiers import MemberId
from gateway.client_auth import ClientAuthSnapshot, ConnectionType
from gateway.client_port import client_auth_middleware
from gateway.guard import Refusal
from gateway.limits import HttpLimits
from gateway.tokens import ClientTokens

NOW = datetime.now(UTC)
NODE = "RENKEI/GOV/HOSP-A/ss1"
HOSPITAL = "RENKEI/GOV/HOSP-A/EHR"
INSURER = "RENKEI/COM/INSURER/CLAIMS"
TARGET = "/r1/RENKEI/GOV/HOSP-B/EHR/echo/x"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
TOKENS = web.AppKey("tokens", dict[str, str])


def _app(refusals: list[Refusal], release: asyncio.Event) -> tuple[web.Application, ClientTokens]:
    tokens = ClientTokens(ec.generate_private_key(ec.SECP256R1()), NODE)
    issued = {
        name: tokens.issue(client=name, now=NOW, ttl=timedelta(hours=1))
        for name in (HOSPITAL, INSURER)
    }
    snapshot = ClientAuthSnapshot(
        version=1,
        connection_types={HOSPITAL: ConnectionType.TOKEN, INSURER: ConnectionType.TOKEN},
        tokens={claims.token_id: name for name, (_, claims) in issued.items()},
    )
    ctx = SimpleNamespace(
        node_id=NODE,
        clock=lambda: NOW,
        signers={MemberId.parse(m): None for m in ("RENKEI/GOV/HOSP-A", "RENKEI/COM/INSURER")},
        settings=SimpleNamespace(limits=HttpLimits(max_in_flight_per_client=1, retry_after_s=3)),
        client_auth=SimpleNamespace(current=snapshot),
        client_tokens=tokens,
        client_default=ConnectionType.HTTPS,
    )

    async def sink(refusal: Refusal) -> None:
        refusals.append(refusal)

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="served")

    app = web.Application(middlewares=[client_auth_middleware(ctx, sink)])  # type: ignore[arg-type]
    app.router.add_route("*", "/r1/{tail:.*}", slow)
    app[TOKENS] = {name: token for name, (token, _) in issued.items()}
    return app, tokens


async def test_refusals_carry_the_code_and_reach_the_audit_sink(
    aiohttp_client: ClientFactory,
) -> None:
    refusals: list[Refusal] = []
    release = asyncio.Event()
    release.set()
    app, _ = _app(refusals, release)
    client = await aiohttp_client(app)
    insurer = app[TOKENS][INSURER]
    response = await client.get(
        TARGET, headers={"X-Road-Client": HOSPITAL, "Renkei-Client-Token": insurer,
                         "X-Road-Id": "m-1"},
    )
    assert response.status == 401
    assert response.headers["X-Road-Error"] == "client.authentication_failed"
    assert "Renkei-Client-Token" in response.headers["WWW-Authenticate"]
    assert [(r.code, r.client, r.message_id) for r in refusals] == [
        ("client.authentication_failed", HOSPITAL, "m-1")
    ]
    # Two tokens are one too many.
    twice = await client.get(
        TARGET,
        headers=[("X-Road-Client", INSURER), ("Renkei-Client-Token", insurer),
                 ("Renkei-Client-Token", insurer)],
    )
    assert twice.status == 401


async def test_the_in_flight_cap_counts_only_proven_callers(
    aiohttp_client: ClientFactory,
) -> None:
    refusals: list[Refusal] = []
    release = asyncio.Event()
    app, _ = _app(refusals, release)
    client = await aiohttp_client(app)
    hospital = {"X-Road-Client": HOSPITAL, "Renkei-Client-Token": app[TOKENS][HOSPITAL]}
    held = asyncio.create_task(client.get(TARGET, headers=hospital))
    await asyncio.sleep(0.2)
    # Someone naming the hospital without its token takes no slot: 401, not 429.
    claimed = await client.get(TARGET, headers={"X-Road-Client": HOSPITAL})
    assert (claimed.status, claimed.headers["X-Road-Error"]) == (
        401, "client.authentication_failed",
    )
    # The hospital itself is at its cap; the insurer is not.
    again = await client.get(TARGET, headers=hospital)
    assert (again.status, again.headers["Retry-After"]) == (429, "3")
    insurer = asyncio.create_task(
        client.get(
            TARGET,
            headers={"X-Road-Client": INSURER, "Renkei-Client-Token": app[TOKENS][INSURER]},
        )
    )
    await asyncio.sleep(0.2)
    release.set()
    assert (await held).status == 200
    assert (await insurer).status == 200
    assert [r.code for r in refusals] == [
        "client.authentication_failed", "client.too_many_requests",
    ]


async def test_the_ngsi_ld_api_is_behind_the_same_gate(aiohttp_client: ClientFactory) -> None:
    # Fails on a gate that only knew /r1/: the NGSI-LD path would be served unproven.
    refusals: list[Refusal] = []
    release = asyncio.Event()
    release.set()
    app, _ = _app(refusals, release)

    async def served(_: web.Request) -> web.Response:
        return web.Response(text="served")

    ngsi = web.Application(middlewares=app.middlewares)
    ngsi.router.add_route("*", "/ngsi-ld/v1/{tail:.*}", served)
    client = await aiohttp_client(ngsi)
    path = "/ngsi-ld/v1/entities?type=WaterObserved"
    unproven = await client.get(path, headers={"X-Road-Client": HOSPITAL})
    assert unproven.status == 401
    assert unproven.headers["X-Road-Error"] == "client.authentication_failed"
    wrong = await client.get(
        path, headers={"X-Road-Client": HOSPITAL, "Renkei-Client-Token": app[TOKENS][INSURER]}
    )
    assert wrong.status == 401
    proven = await client.get(
        path, headers={"X-Road-Client": HOSPITAL, "Renkei-Client-Token": app[TOKENS][HOSPITAL]}
    )
    assert proven.status == 200
    assert [r.port for r in refusals] == ["client", "client"]

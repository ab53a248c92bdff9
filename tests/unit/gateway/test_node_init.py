"""``renkei node init`` lays out a startable node; ``node register`` sends a valid request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from certs.ca import CertificateAuthority
from certs.identifiers import MemberId, NodeId, SubsystemId
from certs.keys import generate_key, load_csr, save_certificate, save_private_key
from gateway.node_init import JoinError, init_node, send_registration
from gateway.settings import load_node_settings
from member_registry.anchor import anchor_digest
from member_registry.bootstrap import initialise_registry
from member_registry.registration_request import SignedRegistration, verify_registration

NODE = NodeId.parse("RENKEI/GOV/CLINIC/ss1")
EHR = SubsystemId.parse("RENKEI/GOV/CLINIC/EHR")
HOSTED = MemberId.parse("RENKEI/GOV/LAB")
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path / "ca", instance="RENKEI",
                                       now=datetime.now(UTC))


def _issue_all(ca: CertificateAuthority, keys: Path) -> None:
    now = datetime.now(UTC)
    save_certificate(ca.issue(load_csr(keys / "auth.csr"), profile="auth", now=now),
                     keys / "auth.pem")
    for csr in keys.glob("sign-*.csr"):
        save_certificate(ca.issue(load_csr(csr), profile="sign", now=now),
                         csr.with_suffix(".pem"))


def test_init_writes_a_config_the_node_loads(tmp_path: Path) -> None:
    anchor = initialise_registry(tmp_path / "registry", "RENKEI", now=datetime.now(UTC)).anchor
    layout = init_node(tmp_path / "node", NODE, members=[HOSTED], subsystems=[EHR],
                       anchor=anchor, ports=(8100, 5600, 5700), database="sqlite+aiosqlite:///x")
    assert layout.anchor_sha256 == anchor_digest(anchor)
    assert {p.name for p in layout.sign_csrs} == {"sign-clinic.csr", "sign-lab.csr"}
    settings = load_node_settings(layout.config, environ={})
    assert settings.node_id == NODE
    assert (settings.client.port, settings.peer.port, settings.management.port) == (
        8100, 5600, 5700)
    assert settings.peer.host == "127.0.0.1"
    assert settings.database_url == "sqlite+aiosqlite:///x"
    assert [s.member for s in settings.sign_keys] == [NODE.member, HOSTED]
    assert settings.auth_key.exists()
    assert settings.token_key.exists()
    assert (settings.auth_key.stat().st_mode & 0o777) == 0o600
    assert "[registration]" in layout.config.read_text()


def test_init_refuses_overwrites_and_foreign_subsystems(tmp_path: Path) -> None:
    init_node(tmp_path / "node", NODE)
    with pytest.raises(JoinError, match="exists already"):
        init_node(tmp_path / "node", NODE)
    with pytest.raises(JoinError, match="does not belong"):
        init_node(tmp_path / "other", NODE, subsystems=[SubsystemId.parse("RENKEI/GOV/LAB/X")])
    bad_anchor = tmp_path / "anchor.json"
    bad_anchor.write_text("{}")
    with pytest.raises(JoinError, match="anchor"):
        init_node(tmp_path / "third", NODE, anchor=bad_anchor)


def test_init_reuses_an_existing_sign_key(tmp_path: Path) -> None:
    # The member's sign key, brought over from its other node.
    keys = tmp_path / "node" / "keys"
    keys.mkdir(parents=True)
    save_private_key(generate_key(), keys / "sign-clinic.key")
    key = (keys / "sign-clinic.key").read_bytes()
    layout = init_node(tmp_path / "node", NODE)
    assert (keys / "sign-clinic.key").read_bytes() == key
    assert layout.sign_csrs == (keys / "sign-clinic.csr",)
    layout.config.unlink()
    with pytest.raises(JoinError, match="refusing to overwrite"):
        init_node(tmp_path / "node", NODE)  # never replaces the auth key


async def test_register_sends_a_request_the_registry_accepts(
    tmp_path: Path, ca: CertificateAuthority, aiohttp_server: ServerFactory
) -> None:
    layout = init_node(tmp_path / "node", NODE, subsystems=[EHR], address="10.0.0.7")
    _issue_all(ca, tmp_path / "node" / "keys")
    received: list[dict[str, Any]] = []

    async def registrations(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"id": 1, "status": "pending", "node": str(NODE)}, status=202)

    app = web.Application()
    app.router.add_post("/registrations", registrations)
    server = await aiohttp_server(app)
    now = datetime.now(UTC)
    answer = await send_registration(str(server.make_url("/")), layout.config, now=now)
    assert answer["status"] == "pending"
    verified = verify_registration(SignedRegistration.from_json_dict(received[0]),
                                   trust_roots=[ca.certificate], now=now)
    assert verified.request.node == NODE
    assert verified.request.address == "10.0.0.7"
    assert verified.request.subsystems == (EHR,)


async def test_register_reports_refusals(
    tmp_path: Path, ca: CertificateAuthority, aiohttp_server: ServerFactory
) -> None:
    layout = init_node(tmp_path / "node", NODE)
    _issue_all(ca, tmp_path / "node" / "keys")

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"type": "registry.registration_stale", "message": "old"},
                                 status=400)

    app = web.Application()
    app.router.add_post("/registrations", refuse)
    server = await aiohttp_server(app)
    with pytest.raises(JoinError, match=r"registry\.registration_stale"):
        await send_registration(str(server.make_url("/")), layout.config, now=datetime.now(UTC))


async def test_register_needs_the_certificates(tmp_path: Path) -> None:
    layout = init_node(tmp_path / "node", NODE)
    with pytest.raises(JoinError):
        await send_registration("http://127.0.0.1:9", layout.config, now=datetime.now(UTC))

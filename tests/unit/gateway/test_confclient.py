"""The configuration client: verified copies only, no rollback, fail closed on expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.confclient import ConfigurationClient
from gateway.errors import GlobalConfOutdated
from member_registry.anchor import Anchor, write_anchor
from member_registry.globalconf import GlobalConf, Settings
from member_registry.signing import generate_signing_identity, sign_global_conf

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def conf(version: int, generated: datetime = NOW, validity: int = 600) -> GlobalConf:
    return GlobalConf(
        instance="RENKEI",
        version=version,
        generated_at=generated,
        expires_at=generated + timedelta(seconds=validity),
        settings=Settings(),
        trusted_cas=(),
        tsas=(),
        members=(),
        nodes=(),
        global_groups=(),
    )


class Registry:
    """A stand-in registry serving whatever token the test sets."""

    def __init__(self) -> None:
        self.token = ""
        self.status = 200
        app = web.Application()
        app.router.add_get("/globalconf", self.handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def handle(self, _: web.Request) -> web.Response:
        return web.Response(text=self.token, status=self.status)


Identity = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


@pytest.fixture
def identity() -> Identity:
    return generate_signing_identity("RENKEI", NOW - timedelta(days=1))


@pytest.fixture
async def registry() -> AsyncIterator[Registry]:
    registry = Registry()
    await registry.server.start_server()
    yield registry
    await registry.server.close()


def client(
    tmp_path: Path, registry: Registry, identity: Identity, clock: Callable[[], datetime]
) -> ConfigurationClient:
    _, cert = identity
    anchor = Anchor(
        instance="RENKEI",
        generated_at=NOW,
        download_urls=(str(registry.server.make_url("/globalconf")),),
        verification_certificates=(cert,),
    )
    write_anchor(anchor, tmp_path / "anchor.json")
    return ConfigurationClient(tmp_path / "anchor.json", tmp_path / "globalconf.jws", clock=clock)


async def test_refresh_installs_and_persists(
    tmp_path: Path, registry: Registry, identity: Identity
) -> None:
    key, cert = identity
    registry.token = sign_global_conf(conf(3), key, cert)
    confs = client(tmp_path, registry, identity, lambda: NOW + timedelta(seconds=5))
    await confs.refresh()
    assert confs.current().version == 3
    assert (tmp_path / "globalconf.jws").read_text() == registry.token


async def test_rollback_is_refused(tmp_path: Path, registry: Registry, identity: Identity) -> None:
    key, cert = identity
    confs = client(tmp_path, registry, identity, lambda: NOW + timedelta(seconds=5))
    registry.token = sign_global_conf(conf(5), key, cert)
    await confs.refresh()
    registry.token = sign_global_conf(conf(4), key, cert)
    with pytest.raises(GlobalConfOutdated, match="rollback"):
        await confs.refresh()
    assert confs.current().version == 5


async def test_bad_signature_is_refused(
    tmp_path: Path, registry: Registry, identity: Identity
) -> None:
    other_key, other_cert = generate_signing_identity("RENKEI", NOW - timedelta(days=1))
    registry.token = sign_global_conf(conf(1), other_key, other_cert)
    confs = client(tmp_path, registry, identity, lambda: NOW)
    with pytest.raises(GlobalConfOutdated, match="signature"):
        await confs.refresh()
    with pytest.raises(GlobalConfOutdated):
        confs.current()


async def test_fails_closed_once_expired(
    tmp_path: Path, registry: Registry, identity: Identity
) -> None:
    key, cert = identity
    now = [NOW]
    registry.token = sign_global_conf(conf(1), key, cert)
    confs = client(tmp_path, registry, identity, lambda: now[0])
    await confs.refresh()
    assert confs.current().version == 1
    now[0] = NOW + timedelta(seconds=601)
    registry.status = 503
    with pytest.raises(GlobalConfOutdated):
        await confs.refresh()
    with pytest.raises(GlobalConfOutdated, match="expired"):
        confs.current()


async def test_no_configuration_yet_fails_closed(
    tmp_path: Path, registry: Registry, identity: Identity
) -> None:
    registry.status = 500
    confs = client(tmp_path, registry, identity, lambda: NOW)
    with pytest.raises(GlobalConfOutdated):
        confs.current()


async def test_last_good_copy_survives_a_restart(
    tmp_path: Path, registry: Registry, identity: Identity
) -> None:
    key, cert = identity
    registry.token = sign_global_conf(conf(7), key, cert)
    first = client(tmp_path, registry, identity, lambda: NOW)
    await first.refresh()
    registry.status = 503
    second = client(tmp_path, registry, identity, lambda: NOW + timedelta(seconds=30))
    second.load_cached()
    assert second.current().version == 7


async def test_expired_copy_on_disk_still_blocks_rollback(
    tmp_path: Path, registry: Registry, identity: Identity
) -> None:
    key, cert = identity
    registry.token = sign_global_conf(conf(9), key, cert)
    first = client(tmp_path, registry, identity, lambda: NOW)
    await first.refresh()
    later = NOW + timedelta(hours=2)
    second = client(tmp_path, registry, identity, lambda: later)
    second.load_cached()
    assert second.version == 9
    with pytest.raises(GlobalConfOutdated):
        second.current()
    registry.token = sign_global_conf(conf(8, generated=later), key, cert)
    registry.status = 200
    with pytest.raises(GlobalConfOutdated, match="rollback"):
        await second.refresh()


async def test_tampered_copy_on_disk_is_ignored(
    tmp_path: Path, registry: Registry, identity: Identity
) -> None:
    key, cert = identity
    registry.token = sign_global_conf(conf(2), key, cert)
    first = client(tmp_path, registry, identity, lambda: NOW)
    await first.refresh()
    cached = tmp_path / "globalconf.jws"
    header, payload, signature = cached.read_text().split(".")
    cached.write_text(f"{header}.{payload[:-4]}AAAA.{signature}")
    second = client(tmp_path, registry, identity, lambda: NOW)
    second.load_cached()
    assert second.version is None

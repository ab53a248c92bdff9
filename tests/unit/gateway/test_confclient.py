"""The configuration client: verified copies only, no rollback, fail closed on expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.confclient import ConfigurationClient, next_refresh_delay
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


def _held(validity: int, interval: int, left: float) -> tuple[GlobalConf, datetime]:
    held = replace(conf(1, validity=validity), settings=Settings(refresh_interval_s=interval))
    return held, held.expires_at - timedelta(seconds=left)


@pytest.mark.parametrize(
    ("validity", "interval", "left", "failures", "delay"),
    [
        (600, 60, 600, 0, 60),  # plenty left: the configuration's own interval
        # The soak's lapses: a copy handed out with 30 s left and a 60 s interval
        # expired 30 s before the next refresh; now it is refreshed at half-time.
        (60, 60, 30, 0, 15),
        (60, 10, 3, 0, 1.5),
        (60, 10, 0.5, 0, 1),  # never a busy loop
        (60, 10, 0, 0, 1),  # expired: retry at once, not after an interval
        (60, 10, -100, 3, 4),  # expired and failing: 1, 1, 2, 4, 8 ... s
        (600, 60, 600, 1, 1),  # the registry is down: retry soon even while valid
        (600, 60, 600, 3, 4),
        (600, 60, 600, 20, 10),  # backoff is capped
    ],
)
def test_next_refresh_delay(
    validity: int, interval: int, left: float, failures: int, delay: float
) -> None:
    held, now = _held(validity, interval, left)
    assert next_refresh_delay(held, now, failures) == delay


@pytest.mark.parametrize(("failures", "delay"), [(0, 1), (1, 1), (2, 2), (4, 8), (9, 10)])
def test_without_a_copy_retries_back_off(failures: int, delay: float) -> None:
    assert next_refresh_delay(None, NOW, failures) == delay


async def test_a_node_started_with_an_expired_copy_is_served_soon_after_the_registry_returns(
    tmp_path: Path, registry: Registry, identity: Identity
) -> None:
    key, cert = identity
    started = datetime.now(UTC).replace(microsecond=0)
    expired = sign_global_conf(conf(1, started - timedelta(seconds=120), validity=60), key, cert)
    (tmp_path / "globalconf.jws").write_text(expired)
    registry.status = 503  # the registry is down as the node starts
    confs = client(tmp_path, registry, identity, lambda: datetime.now(UTC))
    await confs.start()
    try:
        with pytest.raises(GlobalConfOutdated):
            confs.current()
        registry.token = sign_global_conf(conf(2, started, validity=600), key, cert)
        registry.status = 200
        for _ in range(40):  # a whole refresh interval (60 s) would be far beyond this
            await asyncio.sleep(0.1)
            if confs.version == 2:
                break
        assert confs.current().version == 2
    finally:
        await confs.stop()


async def test_the_refresh_loop_outlives_an_unexpected_error(
    tmp_path: Path, registry: Registry, identity: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = identity
    started = datetime.now(UTC).replace(microsecond=0)
    registry.token = sign_global_conf(conf(1, started, validity=2), key, cert)
    confs = client(tmp_path, registry, identity, lambda: datetime.now(UTC))
    await confs.start()
    real_refresh = confs.refresh
    calls: list[int] = []

    async def flaky_refresh() -> GlobalConf:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return await real_refresh()

    monkeypatch.setattr(confs, "refresh", flaky_refresh)
    registry.token = sign_global_conf(conf(2, started, validity=600), key, cert)
    try:
        for _ in range(40):
            await asyncio.sleep(0.1)
            if confs.version == 2:
                break
        assert len(calls) >= 2
        assert confs.current().version == 2
    finally:
        await confs.stop()


async def test_an_endless_configuration_download_is_cut_off(
    tmp_path: Path, identity: Identity
) -> None:
    """A fake server on the registry's address streams without end: the node stops at the cap."""
    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "application/jose"})
        await response.prepare(request)
        try:
            while sent < 300 * 1024 * 1024:
                await response.write(b"e" * (256 * 1024))
                sent += 256 * 1024
        except ConnectionError:
            pass
        return response

    app = web.Application()
    app.router.add_get("/globalconf", endless)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        _, cert = identity
        write_anchor(
            Anchor(instance="RENKEI", generated_at=NOW,
                   download_urls=(str(server.make_url("/globalconf")),),
                   verification_certificates=(cert,)),
            tmp_path / "anchor.json",
        )
        confs = ConfigurationClient(
            tmp_path / "anchor.json", tmp_path / "globalconf.jws", clock=lambda: NOW,
            max_bytes=1024 * 1024,
        )
        with pytest.raises(GlobalConfOutdated, match=r"server\.download_too_large"):
            await confs.refresh()
    finally:
        await server.close()
    assert sent < 32 * 1024 * 1024

"""The OCSP responder's HTTP app (POST, GET, malformed input), the fetch client, and stapling."""

from __future__ import annotations

import base64
from datetime import timedelta
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from certs_helpers import NOW, Issuer
from cryptography import x509
from cryptography.x509 import ocsp
from pytest_aiohttp import AiohttpServer

from certs import errors
from certs.ca import CertificateAuthority
from certs.keys import generate_key
from certs.ocsp import build_ocsp_request, verify_ocsp_response
from certs.ocsp_client import fetch_ocsp_response
from certs.ocsp_responder import OcspResponder
from certs.ocsp_server import create_ocsp_app
from certs.stapling import OwnStatusStapler, PeerStatusCache

MAX_AGE = timedelta(hours=1)


async def start(aiohttp_server: AiohttpServer, ca: CertificateAuthority) -> str:
    key = generate_key("ec-p256")
    cert = ca.issue_service_certificate(key.public_key(), profile="ocsp", now=NOW)
    responder = OcspResponder(ca.certificate, cert, key, ca.status_of)
    server = await aiohttp_server(create_ocsp_app(responder, clock=lambda: NOW))
    return str(server.make_url("/"))


def status_of(der: bytes) -> ocsp.OCSPResponseStatus:
    return ocsp.load_der_ocsp_response(der).response_status


async def test_post_and_get_answer_the_same(
    aiohttp_server: AiohttpServer, ca: CertificateAuthority, issue: Issuer
) -> None:
    url = await start(aiohttp_server, ca)
    cert = issue("auth")
    request = build_ocsp_request(cert, ca.certificate)
    async with aiohttp.ClientSession() as session:
        posted = await fetch_ocsp_response(session, url, cert, ca.certificate)
        encoded = quote(base64.b64encode(request).decode("ascii"), safe="")
        async with session.get(url + encoded) as response:
            assert response.status == 200
            assert response.content_type == "application/ocsp-response"
            got = await response.read()
    for der in (posted, got):
        verify_ocsp_response(
            der, cert=cert, issuer=ca.certificate, trust_roots=[ca.certificate], now=NOW,
            max_age=MAX_AGE,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("POST", "/", b"garbage", "application/ocsp-request"),
        ("POST", "/", b"", "text/plain"),
        ("GET", "/not*base64", None, None),
        ("GET", "/" + base64.b64encode(b"garbage").decode(), None, None),
    ],
)
async def test_malformed_requests_get_malformed_request(
    aiohttp_server: AiohttpServer,
    ca: CertificateAuthority,
    method: str,
    path: str,
    body: bytes | None,
    content_type: str | None,
) -> None:
    url = (await start(aiohttp_server, ca)).rstrip("/")
    headers = {"Content-Type": content_type} if content_type else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url + path, data=body, headers=headers) as response,
    ):
        assert response.status == 200
        der = await response.read()
    assert status_of(der) is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


async def test_healthz(aiohttp_server: AiohttpServer, ca: CertificateAuthority) -> None:
    url = await start(aiohttp_server, ca)
    async with aiohttp.ClientSession() as session, session.get(url + "healthz") as response:
        assert await response.json() == {"status": "ok"}


async def test_fetch_reports_an_unreachable_responder(
    ca: CertificateAuthority, issue: Issuer
) -> None:
    cert = issue("auth")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(errors.OcspUnavailable):
            await fetch_ocsp_response(
                session, "http://127.0.0.1:9/", cert, ca.certificate, timeout_s=2
            )


async def test_fetch_refuses_a_non_ocsp_answer(
    aiohttp_server: AiohttpServer, ca: CertificateAuthority, issue: Issuer
) -> None:
    async def not_ocsp(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=bytes(70_000), content_type="application/ocsp-response")

    app = web.Application()
    app.router.add_post("/json", not_ocsp)
    app.router.add_post("/huge", huge)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(errors.OcspUnavailable, match="application/json"):
            await fetch_ocsp_response(
                session, str(server.make_url("/json")), issue("auth"), ca.certificate
            )
        with pytest.raises(errors.OcspUnavailable, match="more than"):
            await fetch_ocsp_response(
                session, str(server.make_url("/huge")), issue("auth"), ca.certificate
            )


def stapler(ca: CertificateAuthority, cert: x509.Certificate, url: str) -> OwnStatusStapler:
    return OwnStatusStapler(
        cert=cert, issuer=ca.certificate, url=url, trust_roots=[ca.certificate], max_age=MAX_AGE
    )


async def test_own_status_stapler_refreshes_staples_and_stops_when_revoked(
    aiohttp_server: AiohttpServer, ca: CertificateAuthority, issue: Issuer
) -> None:
    url = await start(aiohttp_server, ca)
    cert = issue("auth")
    own = stapler(ca, cert, url)
    assert own.refresh_due(now=NOW)
    with pytest.raises(errors.OcspStale):
        own.staple(now=NOW)
    async with aiohttp.ClientSession() as session:
        await own.refresh(session, now=NOW)
        assert not own.refresh_due(now=NOW + timedelta(minutes=29))
        assert own.refresh_due(now=NOW + timedelta(minutes=30))
        der = own.staple(now=NOW + MAX_AGE)
        assert status_of(der) is ocsp.OCSPResponseStatus.SUCCESSFUL
        with pytest.raises(errors.OcspStale):
            own.staple(now=NOW + MAX_AGE + timedelta(seconds=1))
        ca.revoke(cert.serial_number, reason="keyCompromise", now=NOW)
        with pytest.raises(errors.OcspRevoked):
            await own.refresh(session, now=NOW)
    assert own.current is None
    with pytest.raises(errors.OcspRevoked):
        own.staple(now=NOW)


async def test_own_status_stapler_keeps_a_good_response_while_the_responder_is_down(
    aiohttp_server: AiohttpServer, ca: CertificateAuthority, issue: Issuer
) -> None:
    url = await start(aiohttp_server, ca)
    cert = issue("auth")
    own = stapler(ca, cert, url)
    async with aiohttp.ClientSession() as session:
        await own.refresh(session, now=NOW)
        own.url = "http://127.0.0.1:9/"
        with pytest.raises(errors.OcspUnavailable):
            await own.refresh(session, now=NOW + timedelta(minutes=40))
    assert own.staple(now=NOW + timedelta(minutes=50))
    with pytest.raises(errors.OcspUnavailable):
        own.staple(now=NOW + timedelta(minutes=61))


def test_peer_status_cache_caches_good_and_expires(ca: CertificateAuthority, issue: Issuer) -> None:
    cert = issue("auth")
    key = generate_key("ec-p256")
    responder_cert = ca.issue_service_certificate(key.public_key(), profile="ocsp", now=NOW)
    responder = OcspResponder(ca.certificate, responder_cert, key, ca.status_of)
    der = responder.respond(build_ocsp_request(cert, ca.certificate), now=NOW)
    cache = PeerStatusCache(trust_roots=[ca.certificate], max_age=MAX_AGE)
    first = cache.check(der, cert=cert, issuer=ca.certificate, now=NOW)
    assert cache.check(der, cert=cert, issuer=ca.certificate, now=NOW + MAX_AGE) is first
    with pytest.raises(errors.OcspStale):
        cache.check(der, cert=cert, issuer=ca.certificate, now=NOW + MAX_AGE + timedelta(1))
    other = issue("auth")
    with pytest.raises(errors.OcspInvalid):
        cache.check(der, cert=other, issuer=ca.certificate, now=NOW)

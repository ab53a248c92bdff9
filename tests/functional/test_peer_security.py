"""Attacks on the peer port, made by a test acting as (or impersonating) a node."""

from __future__ import annotations

import base64
import ssl
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from certs import jws
from certs.ca import CertificateAuthority
from certs.identifiers import NodeId
from certs.keys import (
    generate_key,
    load_certificates,
    load_private_key,
    save_certificate,
    save_private_key,
)
from certs.ocsp_client import fetch_ocsp_response
from certs.profiles import make_csr
from gateway.descriptions import request_description
from gateway.protocol import parse_exchange_request
from gateway.settings import NodeSettings, load_node_settings
from gateway.signing import REQUEST_TYP, MessageSigner
from gateway.tls import client_context
from tests.functional.sandbox_helpers import node

HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"
TRANSIT = "RENKEI/COM/TRANSIT/ss1"
CLIENT = "RENKEI/GOV/HOSP-A/EHR"
TARGET = "/r1/RENKEI/GOV/HOSP-B/EHR/echo/items?x=1"


def settings_of(federation: dict[str, Any], node_id: str) -> NodeSettings:
    return load_node_settings(Path(node(federation, node_id)["config"]))


def peer_url(federation: dict[str, Any], node_id: str = HOSP_B) -> str:
    return str(node(federation, node_id)["peer_url"])


def tls(federation: dict[str, Any], cert: Path, key: Path) -> ssl.SSLContext:
    cadata = Path(federation["trust"]["ca_cert"]).read_text()
    return client_context(cert, key, cadata)


async def staple(federation: dict[str, Any], cert_path: Path) -> bytes:
    """A fresh OCSP response for one of node A's certificates, as node A staples it."""
    cert = load_certificates(cert_path)[0]
    issuer = load_certificates(Path(federation["trust"]["ca_cert"]))[0]
    async with aiohttp.ClientSession() as session:
        return await fetch_ocsp_response(session, federation["trust"]["ocsp_url"], cert, issuer)


async def signed_request(
    federation: dict[str, Any],
    *,
    method: str = "POST",
    target: str = TARGET,
    body: bytes = b'{"a": 1}',
    destination: str = HOSP_B,
    issued_at: int | None = None,
    extra_headers: tuple[tuple[str, str], ...] = (),
    duplicate: tuple[str, object] | None = None,
) -> tuple[list[tuple[str, str]], str]:
    """Headers (with the signature) for a request node A would send; ``duplicate``
    puts a second value of one key in front of the signed description."""
    import hashlib

    settings = settings_of(federation, HOSP_A)
    sign = settings.sign_keys[0]
    signer = MessageSigner(
        member=sign.member,
        key=load_private_key(sign.key),
        chain=tuple(load_certificates(sign.certificate)),
    )
    headers = [
        ("X-Road-Client", CLIENT),
        ("X-Road-Id", str(uuid.uuid4())),
        ("Content-Type", "application/json"),
        *extra_headers,
    ]
    request = parse_exchange_request(method, target, headers)
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
    description = request_description(
        request,
        request_id=str(uuid.uuid4()),
        body_sha256=digest,
        body_length=len(body),
        issued_at=int(time.time()) if issued_at is None else issued_at,
        origin=settings.node_id,
        destination=NodeId.parse(destination),
    )
    sign_staple = await staple(federation, sign.certificate)
    auth_staple = await staple(federation, settings.auth_certificate)
    token = signer.sign(description, typ=REQUEST_TYP, ocsp=sign_staple)
    if duplicate is not None:
        # Genuinely signed by node A's key, by an independent JWS implementation.
        key, first = duplicate
        payload = b"{" + jws.canonical_json({key: first})[1:-1] + b","
        payload += jws.canonical_json(description)[1:]
        header = {"typ": REQUEST_TYP, "x5c": [jws.certificate_der_base64(signer.chain[0])],
                  "ocsp": base64.b64encode(sign_staple).decode()}
        token = jwt.api_jws.encode(payload, signer.key, algorithm=jws.algorithm_for(signer.key),
                                   headers=header)
    return [
        *headers,
        ("Renkei-Signature", token),
        ("Renkei-Auth-Status", base64.b64encode(auth_staple).decode()),
    ], target


async def send(
    federation: dict[str, Any],
    headers: list[tuple[str, str]],
    target: str,
    body: bytes = b'{"a": 1}',
    *,
    method: str = "POST",
    context: ssl.SSLContext | None = None,
) -> tuple[int, str | None]:
    if context is None:
        settings = settings_of(federation, HOSP_A)
        context = tls(federation, settings.auth_certificate, settings.auth_key)
    connector = aiohttp.TCPConnector(ssl=context)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(
            method,
            peer_url(federation) + target,
            headers=aiohttp.typedefs.CIMultiDict(headers),
            data=body,
            skip_auto_headers=("Content-Type", "User-Agent", "Accept", "Accept-Encoding"),
        ) as response,
    ):
        await response.read()
        return response.status, response.headers.get("X-Road-Error")


async def test_a_correctly_signed_request_is_served(federation: dict[str, Any]) -> None:
    headers, target = await signed_request(federation)
    assert await send(federation, headers, target) == (200, None)


async def test_replayed_request_is_refused(federation: dict[str, Any]) -> None:
    headers, target = await signed_request(federation)
    assert await send(federation, headers, target) == (200, None)
    assert await send(federation, headers, target) == (500, "server.serverproxy.replay")


@pytest.mark.parametrize(
    ("mutation", "code"),
    [
        ("query", "server.serverproxy.signature_invalid"),
        ("path", "server.serverproxy.signature_invalid"),
        ("method", "server.serverproxy.signature_invalid"),
        ("body", "server.serverproxy.signature_invalid"),
        ("header", "server.serverproxy.signature_invalid"),
        ("message_id", "server.serverproxy.signature_invalid"),
        ("token", "server.serverproxy.signature_invalid"),
    ],
)
async def test_tampered_requests_are_refused(
    federation: dict[str, Any], mutation: str, code: str
) -> None:
    headers, target = await signed_request(federation)
    body = b'{"a": 1}'
    method = "POST"
    if mutation == "query":
        target = target.replace("x=1", "x=2")
    elif mutation == "path":
        target = target.replace("/items", "/other")
    elif mutation == "method":
        method = "PUT"
    elif mutation == "body":
        body = b'{"a": 2}'
    elif mutation == "header":
        headers.append(("X-Injected", "1"))
    elif mutation == "message_id":
        headers = [(k, "forged" if k == "X-Road-Id" else v) for k, v in headers]
    elif mutation == "token":
        headers = [
            (k, v[:-4] + ("AAAA" if not v.endswith("AAAA") else "BBBB"))
            if k == "Renkei-Signature"
            else (k, v)
            for k, v in headers
        ]
    status, error = await send(federation, headers, target, body, method=method)
    assert (status, error) == (500, code)


@pytest.mark.parametrize(("key", "first"), [("method", "DELETE"), ("destination", TRANSIT)])
async def test_a_signed_request_with_a_duplicate_key_is_refused(
    federation: dict[str, Any], key: str, first: str
) -> None:
    # A reader keeping the first key would see DELETE, or another destination node.
    headers, target = await signed_request(federation, duplicate=(key, first))
    assert await send(federation, headers, target) == (
        500, "server.serverproxy.signature_invalid"
    )


async def test_request_signed_for_another_node_is_refused(federation: dict[str, Any]) -> None:
    headers, target = await signed_request(federation, destination=TRANSIT)
    assert await send(federation, headers, target) == (500, "server.serverproxy.wrong_destination")


async def test_stale_request_is_refused(federation: dict[str, Any]) -> None:
    headers, target = await signed_request(federation, issued_at=int(time.time()) - 3600)
    assert await send(federation, headers, target) == (
        500,
        "server.serverproxy.request_expired",
    )


@pytest.mark.parametrize(
    ("offset_s", "expected"),
    [
        (20, (200, None)),  # the consumer's clock ahead, within clock_skew_s (30 s)
        (-120, (200, None)),  # behind, within request_max_age_s (300 s)
        (120, (500, "server.serverproxy.clock_skew")),  # ahead beyond the tolerance
    ],
)
async def test_clock_skew_within_tolerance_is_accepted_beyond_it_refused(
    federation: dict[str, Any], offset_s: int, expected: tuple[int, str | None]
) -> None:
    headers, target = await signed_request(federation, issued_at=int(time.time()) + offset_s)
    assert await send(federation, headers, target) == expected


async def test_unregistered_peer_certificate_is_refused(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    """A certificate from the right CA, naming node A, but not the one registered."""
    ca = CertificateAuthority.load(Path(federation["dir"]) / "ca")
    key = generate_key()
    save_private_key(key, tmp_path / "rogue.key")
    cert = ca.issue(
        make_csr(key, NodeId.parse(HOSP_A), "auth"), profile="auth", now=datetime.now(UTC)
    )
    save_certificate(cert, tmp_path / "rogue.pem")
    headers, target = await signed_request(federation)
    context = tls(federation, tmp_path / "rogue.pem", tmp_path / "rogue.key")
    assert await send(federation, headers, target, context=context) == (
        500,
        "server.serverproxy.ssl_authentication_failed",
    )


async def test_certificate_of_another_ca_fails_the_handshake(
    federation: dict[str, Any], tmp_path: Path
) -> None:
    other = CertificateAuthority.create(tmp_path / "ca", instance="RENKEI", now=datetime.now(UTC))
    key = generate_key()
    save_private_key(key, tmp_path / "other.key")
    cert = other.issue(
        make_csr(key, NodeId.parse(HOSP_A), "auth"), profile="auth", now=datetime.now(UTC)
    )
    save_certificate(cert, tmp_path / "other.pem")
    headers, target = await signed_request(federation)
    context = tls(federation, tmp_path / "other.pem", tmp_path / "other.key")
    with pytest.raises(aiohttp.ClientError):
        await send(federation, headers, target, context=context)

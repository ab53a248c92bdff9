"""The client-facing proxy: an information system's request, signed and relayed.

Order: parse → configuration valid → client hosted here → provider node →
read and hash the body → sign → relay over mutual TLS → verify the signed
response (it must bind our request hash) → commit the audit row → reply.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

import aiohttp
import structlog
from aiohttp import web
from cryptography import x509
from yarl import URL

from certs.identifiers import MemberId
from gateway.audit.models import AuditEntry
from gateway.context import NodeContext
from gateway.dedup import claim_message_id
from gateway.descriptions import request_description, response_description
from gateway.errors import (
    BodyTooLarge,
    DatabaseUnavailable,
    GatewayError,
    NetworkError,
    ProviderNotAuthenticated,
    ProviderTimeout,
    PurposeUndeclared,
    RemoteError,
    ResponseInvalid,
    UnknownClient,
    UnknownProvider,
)
from gateway.limits import HttpLimits
from gateway.metrics import stage
from gateway.peer_connector import PinMismatch
from gateway.protocol import ExchangeRequest, parse_exchange_request
from gateway.relay import response_headers_from
from gateway.request_hash import request_head, xroad_request_hash
from gateway.responses import error_response, r1_status
from gateway.sending import send_body
from gateway.signing import (
    REQUEST_TYP,
    RESPONSE_TYP,
    CertificateCache,
    SignatureError,
    StatusCheck,
    request_hash,
    verify_message,
)
from gateway.spool import SpooledBody, spool
from gateway.status import AUTH, encode_staple
from member_registry.globalconf import GlobalConf, Node

__all__ = [
    "ArrivedRefusal",
    "ArrivedResponse",
    "ExpectedResponse",
    "LegAnswer",
    "SignedResponse",
    "check_response_description",
    "exchange_leg",
    "handle_client_request",
    "verify_refusal",
    "verify_response",
]

log = structlog.get_logger(__name__)

_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,5}")
# A refusal is an error document, never a payload: read no more than this of it.
_MAX_REFUSAL_BYTES = 64 * 1024


@dataclass
class _Relayed:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: SpooledBody
    signature: str
    withheld: tuple[str, ...]
    consent_ids: tuple[str, ...]
    subject: str | None
    break_glass: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArrivedResponse:
    """What the provider node actually sent, as the consumer sees it."""

    status: int
    headers: tuple[tuple[str, str], ...]  # end-to-end, from ``response_headers_from``
    body_sha256: str
    body_length: int
    withheld_headers: tuple[str, ...] = ()  # every ``Renkei-Withheld`` value
    consent_headers: tuple[str, ...] = ()  # every ``Renkei-Consent`` value
    error: str | None = None  # the ``X-Road-Error`` of a refusal
    break_glass_headers: tuple[str, ...] = ()  # every ``Renkei-Break-Glass`` value


@dataclass(frozen=True)
class ExpectedResponse:
    """What the response must be bound to: the request this node signed."""

    member: MemberId  # the provider member, whose sign key must have signed
    request_id: str
    request_hash: str
    request_issued_at: int


@dataclass(frozen=True)
class SignedResponse:
    withheld: tuple[str, ...]
    consent_ids: tuple[str, ...]
    subject: str | None = None  # the data subject the provider signed, if any
    break_glass: tuple[str, ...] = ()  # deny rules an emergency purpose overrode


def check_response_description(
    signed: Any,
    arrived: ArrivedResponse,
    expected: ExpectedResponse,
    *,
    now: datetime,
    clock_skew_s: int,
) -> SignedResponse:
    """Check a verified response payload against what arrived; raise ResponseInvalid.

    The description is rebuilt from what arrived and from our own request,
    and must equal what the provider signed. Its ``issued_at`` must lie between
    our request's issue time and ``now``, each widened by ``clock_skew_s``.
    """
    if not isinstance(signed, dict):
        raise ResponseInvalid("the response signature payload is not an object")
    issued_at = signed.get("issued_at")
    if not isinstance(issued_at, int) or isinstance(issued_at, bool):
        raise ResponseInvalid("the signed response has no issue time")
    if issued_at > now.timestamp() + clock_skew_s:
        raise ResponseInvalid(
            "the signed response is dated in the future", code="server.clientproxy.clock_skew"
        )
    if issued_at < expected.request_issued_at - clock_skew_s:
        raise ResponseInvalid(
            "the signed response is older than its request",
            code="server.clientproxy.clock_skew",
        )
    withheld, consent_ids = signed.get("withheld"), signed.get("consent_ids")
    if not _strings(withheld):
        raise ResponseInvalid("the signed withheld list is malformed")
    if not _strings(consent_ids):
        raise ResponseInvalid("the signed consent list is malformed")
    subject = signed.get("subject")
    if "subject" in signed and not isinstance(subject, str):
        raise ResponseInvalid("the signed subject is malformed")
    break_glass = signed.get("break_glass", [])
    if not _strings(break_glass):
        raise ResponseInvalid("the signed break-glass list is malformed")
    rebuilt = response_description(
        request_id=expected.request_id,
        request_hash=expected.request_hash,
        status=arrived.status,
        headers=arrived.headers,
        body_sha256=arrived.body_sha256,
        body_length=arrived.body_length,
        issued_at=issued_at,
        error=arrived.error,
        withheld=tuple(withheld),
        consent_ids=tuple(consent_ids),
        subject=subject,
        break_glass=tuple(break_glass),
    )
    if signed != rebuilt:
        raise ResponseInvalid("the response differs from what the provider signed")
    # The unsigned headers the provider adds must say what it signed.
    if arrived.withheld_headers != _joined(withheld) or arrived.consent_headers != _joined(
        consent_ids
    ):
        raise ResponseInvalid("the withheld or consent headers differ from the signed lists")
    if arrived.break_glass_headers != _joined(break_glass):
        raise ResponseInvalid("the break-glass header differs from the signed list")
    return SignedResponse(
        withheld=tuple(withheld),
        consent_ids=tuple(consent_ids),
        subject=subject,
        break_glass=tuple(break_glass),
    )


def _strings(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _joined(items: list[str]) -> tuple[str, ...]:
    return (",".join(items),) if items else ()


def verify_response(
    token: str,
    arrived: ArrivedResponse,
    expected: ExpectedResponse,
    *,
    trust_roots: Sequence[x509.Certificate],
    roots_key: int,
    now: datetime,
    clock_skew_s: int,
    cache: CertificateCache,
    status_check: StatusCheck | None = None,
) -> SignedResponse:
    """Verify the provider's response signature and its binding; raise ResponseInvalid."""
    try:
        signed = verify_message(
            token,
            typ=RESPONSE_TYP,
            expected_member=expected.member,
            trust_roots=trust_roots,
            roots_key=roots_key,
            now=now,
            cache=cache,
            status_check=status_check,
        )
    except SignatureError as exc:
        raise ResponseInvalid(f"response signature refused: {exc.message}") from exc
    return check_response_description(signed, arrived, expected, now=now, clock_skew_s=clock_skew_s)


def _choose_provider(conf: GlobalConf, request: ExchangeRequest) -> Node:
    nodes = conf.nodes_hosting(request.service.subsystem)
    if request.security_server is not None:
        nodes = tuple(node for node in nodes if node.id == request.security_server)
    if not nodes:
        raise UnknownProvider(f"no node hosts {request.service.subsystem}")
    return nodes[0]


async def handle_client_request(ctx: NodeContext, request: web.Request) -> web.StreamResponse:
    now = ctx.clock()
    # Every Accept field counts, as X-Road reads them (gateway/responses.py).
    accept = ",".join(request.headers.getall("Accept", [])) or None
    parsed: ExchangeRequest | None = None
    request_id = str(uuid.uuid4())
    structlog.contextvars.bind_contextvars(request_id=request_id)
    entry = AuditEntry(
        role="consumer",
        message_id=request.headers.get("X-Road-Id", request_id)[:255],
        logged_at=now,
        request_id=request_id,
        method=request.method[:16],
        path=request.raw_path[:2048],
    )
    try:
        with stage("parse"):
            parsed = parse_exchange_request(
                request.method,
                request.raw_path,
                request.headers.items(),
                instance=ctx.settings.node_id.instance,
            )
        structlog.contextvars.bind_contextvars(message_id=parsed.message_id)
        entry.message_id = parsed.message_id
        entry.client = str(parsed.client)
        entry.service = str(parsed.service)
        entry.path = parsed.service_path + (f"?{parsed.query}" if parsed.query else "")
        entry.user_id = parsed.user_id
        entry.purpose = parsed.purpose
        entry.subject = parsed.subject
        return await _exchange(ctx, request, parsed, request_id, entry)
    except GatewayError as exc:
        detail = str(uuid.uuid4())
        log.info("exchange_refused", code=exc.code, error=exc.message, detail=detail)
        status = await _audit_refusal(ctx, entry, exc)
        return error_response(exc.code, exc.message, status, accept=accept, detail=detail)
    finally:
        structlog.contextvars.unbind_contextvars("request_id", "message_id")


async def _audit_refusal(ctx: NodeContext, entry: AuditEntry, exc: GatewayError) -> int:
    """Record the refusal of an exchange; the r1 status it is answered with."""
    status = r1_status(exc.status, exc.code)
    entry.status = status
    entry.error_code = exc.code
    if isinstance(exc, RemoteError):
        # The provider's signed refusal, kept so that it cannot deny it.
        entry.response_signature = exc.signature
        entry.response_body_sha256 = exc.body_sha256
        entry.subject = exc.subject  # as the provider signed it: both rows agree
    if isinstance(exc, DatabaseUnavailable):
        # The reply does not wait on the database a second time: the row is
        # committed when the database is back (and settles any reservation).
        with contextlib.suppress(DatabaseUnavailable):
            ctx.audit.append_later(entry)
    else:
        await ctx.audit.append(entry)
    return status


@dataclass(frozen=True)
class LegAnswer:
    """A provider's verified answer to an exchange this node made itself."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


async def exchange_leg(
    ctx: NodeContext, request: ExchangeRequest, *, max_body_bytes: int
) -> LegAnswer:
    """One body-less exchange a node feature makes for a client (a federated query's leg).

    The same path as an information system's call: the client must be hosted
    here, the request is signed with its member's key, relayed, the signed
    response verified and both the exchange and any refusal audited. Raises
    the GatewayError it was refused with (already audited).
    """
    now = ctx.clock()
    request_id = str(uuid.uuid4())
    entry = AuditEntry(
        role="consumer",
        message_id=request.message_id,
        logged_at=now,
        request_id=request_id,
        method=request.method,
        path=(request.service_path + (f"?{request.query}" if request.query else ""))[:2048],
        client=str(request.client),
        service=str(request.service),
        user_id=request.user_id,
        purpose=request.purpose,
        subject=request.subject,
    )

    async def nothing() -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover - makes this an async generator

    try:
        relayed, _ = await _relay_exchange(ctx, request, request_id, entry, 0, nothing())
    except GatewayError as exc:
        await _audit_refusal(ctx, entry, exc)
        raise
    try:
        if not relayed.body.in_memory or relayed.body.size > max_body_bytes:
            raise ResponseInvalid("the provider's answer is larger than this feature reads")
        return LegAnswer(relayed.status, relayed.headers, relayed.body.content())
    finally:
        relayed.body.close()


async def _exchange(
    ctx: NodeContext,
    http: web.Request,
    request: ExchangeRequest,
    request_id: str,
    entry: AuditEntry,
) -> web.StreamResponse:
    relayed, client_hash = await _relay_exchange(
        ctx, request, request_id, entry, http.content_length,
        http.content.iter_chunked(256 * 1024),
    )  # fmt: skip
    try:
        return await _reply(http, request, request_id, client_hash, relayed, ctx.settings.limits)
    finally:
        relayed.body.close()


async def _relay_exchange(
    ctx: NodeContext,
    request: ExchangeRequest,
    request_id: str,
    entry: AuditEntry,
    content_length: int | None,
    content: AsyncIterator[bytes],
) -> tuple[_Relayed, str]:
    """Sign, relay, verify and audit; the verified response and the client's request hash."""
    conf = ctx.conf.current()
    ctx.check_timestamping(ctx.clock())
    if not conf.has_client(request.client) or not conf.client_hosted_on(
        request.client, ctx.settings.node_id
    ):
        raise UnknownClient(f"{request.client} is not a client registered on this node")
    signer = ctx.signers.get(request.client.member)
    if signer is None:
        raise UnknownClient(f"this node holds no sign key for {request.client.member}")
    if request.purpose is not None and (
        # Purposes are declared by subsystems; a member-level client has none.
        isinstance(request.client, MemberId)
        or await ctx.policy.purpose(request.client, request.purpose) is None
    ):
        raise PurposeUndeclared(
            f"{request.client} has not declared the purpose {request.purpose!r}"
        )
    provider = _choose_provider(conf, request)
    entry.peer_node = str(provider.id)
    # A node whose own certificates' status is not good and fresh does not send.
    now = ctx.clock()
    status = ctx.certificate_status()
    sign_staple = status.own_staple(str(request.client.member), now=now)
    auth_staple = status.own_staple(AUTH, now=now)
    if content_length is not None and content_length > ctx.settings.max_body_bytes:
        raise BodyTooLarge(f"body exceeds the limit of {ctx.settings.max_body_bytes} bytes")
    body = await spool(
        content,
        memory_limit=ctx.settings.body_memory_limit,
        max_size=ctx.settings.max_body_bytes,
        sha512=True,
    )
    try:
        # What the client can check (PR-REST §4.3); the nodes bind the response
        # to the signed request itself (req_hash below).
        client_hash = xroad_request_hash(
            request_head(request, request_id), body.sha512_digest if body.size else None
        )
        issued_at = int(ctx.clock().timestamp())
        description = request_description(
            request,
            request_id=request_id,
            body_sha256=body.sha256,
            body_length=body.size,
            issued_at=issued_at,
            origin=ctx.settings.node_id,
            destination=provider.id,
        )
        with stage("sign"):
            token = signer.sign(description, typ=REQUEST_TYP, ocsp=sign_staple)
        req_hash = request_hash(token)
        entry.request_hash = req_hash
        entry.request_body_sha256 = body.sha256
        entry.request_signature = token
        ctx.audit.keep_body(entry, "req", body)
        entry.request_size = body.size
        # Nothing leaves this node unrecorded: the reservation is committed
        # first, or the exchange ends here with server.database_unavailable.
        with stage("reserve"):
            await ctx.audit.reserve(entry)
        if request.deduplicate:
            # At most once per client-chosen id, only where the client asks
            # (Renkei-Deduplicate, gateway/dedup.py); X-Road serves a retry.
            await claim_message_id(ctx.engine, request.client, request.message_id, now=ctx.clock())
        started = time.perf_counter()
        with stage("relay"):
            relayed = await _relay(
                ctx,
                conf,
                provider,
                request,
                token,
                auth_staple,
                body,
                ExpectedResponse(request.service.member, request_id, req_hash, issued_at),
            )
        entry.backend_ms = (time.perf_counter() - started) * 1000
    finally:
        body.close()
    try:
        entry.status = relayed.status
        entry.response_size = relayed.body.size
        entry.response_body_sha256 = relayed.body.sha256
        entry.response_signature = relayed.signature
        # The subject the provider decided on (named, or located by path or query), as
        # it signed it: both nodes' rows name the same data subject.
        entry.subject = relayed.subject
        ctx.audit.keep_body(entry, "resp", relayed.body)
        if relayed.withheld or relayed.consent_ids:
            entry.consent = {
                "withheld": list(relayed.withheld),
                "consent_ids": list(relayed.consent_ids),
            }
        with stage("audit"):
            await ctx.audit.append(entry)
    except BaseException:
        relayed.body.close()
        raise
    return relayed, client_hash


async def _relay(
    ctx: NodeContext,
    conf: GlobalConf,
    provider: Node,
    request: ExchangeRequest,
    token: str,
    auth_staple: bytes | None,
    body: SpooledBody,
    expected: ExpectedResponse,
) -> _Relayed:
    # encoded=True: the target goes out byte for byte as the client sent it.
    url = URL(
        f"https://{_host(provider.address)}:{provider.peer_port}{request.target}", encoded=True
    )
    headers: list[tuple[str, str]] = [*request.headers, ("X-Road-Client", str(request.client))]
    headers.append(("Renkei-Signature", token))
    if auth_staple is not None:
        headers.append(("Renkei-Auth-Status", encode_staple(auth_staple)))
    security_server = str(request.security_server) if request.security_server else None
    for name, value in (
        ("X-Road-Id", request.message_id),
        ("X-Road-UserId", request.user_id),
        ("X-Road-Issue", request.issue),
        ("X-Road-Security-Server", security_server),
        ("X-Road-Represented-Party", request.represented_party),
        ("Renkei-Purpose", request.purpose),
        ("Renkei-Subject", request.subject),
    ):
        if value is not None:
            headers.append((name, value))
    headers.append(("Content-Length", str(body.size)))
    timeout = aiohttp.ClientTimeout(total=ctx.settings.peer_timeout_s, sock_connect=10)
    try:
        async with ctx.peer_session().request(
            request.method,
            url,
            headers=headers,
            data=body.chunks() if body.size else None,
            allow_redirects=False,
            timeout=timeout,
            skip_auto_headers=("User-Agent", "Content-Type", "Accept", "Accept-Encoding"),
        ) as response:
            return await _receive(ctx, conf, response, expected)
    except TimeoutError as exc:
        raise ProviderTimeout(f"no response from {provider.id} in time") from exc
    except PinMismatch as exc:
        raise ProviderNotAuthenticated(str(exc)) from exc
    except aiohttp.ClientError as exc:
        raise NetworkError(f"cannot reach {provider.id}: {exc.__class__.__name__}") from exc


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


async def _receive(
    ctx: NodeContext,
    conf: GlobalConf,
    response: aiohttp.ClientResponse,
    expected: ExpectedResponse,
) -> _Relayed:
    error_code = response.headers.get("X-Road-Error")
    if error_code is not None:
        raise await _verified_refusal(ctx, conf, response, error_code, expected)
    token = response.headers.get("Renkei-Signature")
    if token is None:
        raise ResponseInvalid("the provider's response is not signed")
    if response.headers.get("X-Road-Request-Hash") != expected.request_hash:
        raise ResponseInvalid("the response is not bound to this request")
    body = await spool(
        response.content.iter_chunked(256 * 1024),
        memory_limit=ctx.settings.body_memory_limit,
        max_size=ctx.settings.max_body_bytes,
    )
    try:
        arrived = ArrivedResponse(
            status=response.status,
            headers=response_headers_from(response.headers.items()),
            body_sha256=body.sha256,
            body_length=body.size,
            withheld_headers=tuple(response.headers.getall("Renkei-Withheld", ())),
            consent_headers=tuple(response.headers.getall("Renkei-Consent", ())),
            break_glass_headers=tuple(response.headers.getall("Renkei-Break-Glass", ())),
        )
        roots, roots_key = ctx.trust(conf)
        with stage("verify"):
            signed = verify_response(
                token,
                arrived,
                expected,
                trust_roots=roots,
                roots_key=roots_key,
                now=ctx.clock(),
                clock_skew_s=ctx.settings.clock_skew_s,
                cache=ctx.cert_cache,
                status_check=lambda cert, staple: ctx.certificate_status().check_peer(
                    cert, staple, now=ctx.clock(), side="clientproxy"
                ),
            )
    except BaseException:
        body.close()
        raise
    return _Relayed(
        status=response.status,
        headers=arrived.headers,
        body=body,
        signature=token,
        withheld=signed.withheld,
        consent_ids=signed.consent_ids,
        break_glass=signed.break_glass,
        subject=signed.subject,
    )


@dataclass(frozen=True)
class ArrivedRefusal:
    """A refusal (``X-Road-Error``) as the provider node sent it."""

    status: int
    error_code: str
    content_type: str
    body: bytes
    request_hash: str | None  # its ``X-Road-Request-Hash``
    signature: str | None  # its ``Renkei-Signature``


def verify_refusal(
    refusal: ArrivedRefusal,
    expected: ExpectedResponse,
    *,
    trust_roots: Sequence[x509.Certificate],
    roots_key: int,
    now: datetime,
    clock_skew_s: int,
    cache: CertificateCache,
    status_check: StatusCheck | None = None,
) -> RemoteError:
    """The provider's refusal to relay, once its signature binds it to our request.

    A refusal is relayed (and logged as the provider's) only when the provider
    signed it: otherwise anyone between the nodes could put words in the
    provider's mouth, and a provider could later deny what it answered.
    Raises :class:`ResponseInvalid` (``server.clientproxy.refusal_unsigned``
    when there is no signature) for anything else.
    """
    if not _ERROR_CODE.fullmatch(refusal.error_code):
        raise ResponseInvalid("the provider sent a malformed error code")
    if refusal.signature is None:
        raise ResponseInvalid(
            "the provider's refusal is not signed", code="server.clientproxy.refusal_unsigned"
        )
    if len(refusal.body) > _MAX_REFUSAL_BYTES:
        raise ResponseInvalid("the provider's refusal is too large")
    if refusal.request_hash != expected.request_hash:
        raise ResponseInvalid("the refusal is not bound to this request")
    arrived = ArrivedResponse(
        status=refusal.status,
        headers=(("content-type", refusal.content_type),),
        body_sha256=_sha256_b64(refusal.body),
        body_length=len(refusal.body),
        error=refusal.error_code,
    )
    signed = verify_response(
        refusal.signature, arrived, expected, trust_roots=trust_roots, roots_key=roots_key,
        now=now, clock_skew_s=clock_skew_s, cache=cache, status_check=status_check,
    )  # fmt: skip
    try:
        message = str(json.loads(refusal.body).get("message", ""))
    except (ValueError, AttributeError):
        message = "the provider node refused the request"
    return RemoteError(
        message, code=refusal.error_code, status=refusal.status,
        signature=refusal.signature, body_sha256=arrived.body_sha256, subject=signed.subject,
    )  # fmt: skip


async def _verified_refusal(
    ctx: NodeContext,
    conf: GlobalConf,
    response: aiohttp.ClientResponse,
    error_code: str,
    expected: ExpectedResponse,
) -> GatewayError:
    refusal = ArrivedRefusal(
        status=response.status,
        error_code=error_code,
        content_type=response.headers.get("Content-Type", ""),
        body=await _read_refusal(response),
        request_hash=response.headers.get("X-Road-Request-Hash"),
        signature=response.headers.get("Renkei-Signature"),
    )
    roots, roots_key = ctx.trust(conf)
    try:
        with stage("verify"):
            return verify_refusal(
                refusal, expected, trust_roots=roots, roots_key=roots_key, now=ctx.clock(),
                clock_skew_s=ctx.settings.clock_skew_s, cache=ctx.cert_cache,
                status_check=lambda cert, staple: ctx.certificate_status().check_peer(
                    cert, staple, now=ctx.clock(), side="clientproxy"
                ),
            )  # fmt: skip
    except ResponseInvalid as exc:
        # This node's own refusal now; what the provider claimed goes to the log.
        log.warning(
            "provider_refusal_not_verified", claimed_code=error_code[:128], error=exc.message
        )
        return exc


async def _read_refusal(response: aiohttp.ClientResponse) -> bytes:
    """The whole refusal, or its first bytes past the size a refusal may have."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > _MAX_REFUSAL_BYTES:
            break
    return bytes(body)


def _sha256_b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


async def _reply(
    http: web.Request,
    request: ExchangeRequest,
    request_id: str,
    client_hash: str,
    relayed: _Relayed,
    limits: HttpLimits,
) -> web.StreamResponse:
    reply = web.StreamResponse(status=relayed.status)
    for name, value in relayed.headers:
        reply.headers.add(name, value)
    reply.headers["X-Road-Id"] = request.message_id
    reply.headers["X-Road-Client"] = str(request.client)
    reply.headers["X-Road-Service"] = str(request.service)
    reply.headers["X-Road-Request-Id"] = request_id
    reply.headers["X-Road-Request-Hash"] = client_hash
    if relayed.withheld:
        reply.headers["Renkei-Withheld"] = ",".join(relayed.withheld)
    if relayed.consent_ids:
        reply.headers["Renkei-Consent"] = ",".join(relayed.consent_ids)
    if relayed.break_glass:
        # Released against the data subject's deny: the provider signed it.
        reply.headers["Renkei-Break-Glass"] = ",".join(relayed.break_glass)
    reply.content_length = relayed.body.size
    await reply.prepare(http)
    await send_body(http, reply, relayed.body.chunks(), limits)
    return reply

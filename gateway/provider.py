"""The peer-facing proxy: a consumer node's signed request, checked and served.

Order (DESIGN §4.2): parse → known provider subsystem → peer authentication →
signature → replay → service exists → access right → (consent) → backend →
filter → sign → log → reply. Every refusal is logged too. Once the request's
signature has been verified, refusals are signed as well, so the consumer
can prove what this node answered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from yarl import URL

from certs.identifiers import IdentifierError, MemberId, ServiceId
from gateway.audit.models import AuditEntry
from gateway.broker.serving import answer_from_store
from gateway.consent_stage import ConsentDecision, ConsentRefused, decide, enforce
from gateway.context import NodeContext
from gateway.descriptions import request_description, response_description
from gateway.errors import (
    AccessDenied,
    BodyTooLarge,
    ClientNotHosted,
    GatewayError,
    PeerAuthenticationFailed,
    ServiceDisabled,
    ServiceFailed,
    ServiceTimeout,
    SignatureInvalid,
    UnknownService,
    WrongDestination,
)
from gateway.metaservices import answer_metaservice, is_metaservice
from gateway.metrics import stage
from gateway.protocol import ExchangeRequest, check_path_parameters, parse_exchange_request
from gateway.relay import response_headers_from
from gateway.responses import error_body
from gateway.sending import send_body
from gateway.services import Service
from gateway.signing import (
    REQUEST_TYP,
    RESPONSE_TYP,
    SignatureError,
    request_hash,
    verify_message,
)
from gateway.spool import SpooledBody, spool
from gateway.status import decode_staple
from gateway.tls import peer_certificate_der
from member_registry.globalconf import GlobalConf, Node
from policies.errors import AccessDenied as PolicyAccessDenied

__all__ = ["handle_peer_request"]

log = structlog.get_logger(__name__)

_PEER_HEADERS = frozenset({"renkei-signature", "renkei-auth-status"})


@dataclass
class _Verified:
    request: ExchangeRequest
    token: str
    request_hash: str
    request_id: str
    peer: Node
    body: SpooledBody


async def handle_peer_request(ctx: NodeContext, http: web.Request) -> web.StreamResponse:
    now = ctx.clock()
    entry = AuditEntry(
        role="provider",
        message_id=http.headers.get("X-Road-Id", "")[:255] or "-",
        logged_at=now,
        method=http.method[:16],
        path=http.raw_path[:2048],
    )
    verified: _Verified | None = None
    try:
        verified = await _verify(ctx, http, entry, now)
        return await _serve(ctx, http, verified, entry)
    except GatewayError as exc:
        return await _refuse(ctx, http, exc, entry, verified)
    finally:
        if verified is not None:
            verified.body.close()
        structlog.contextvars.unbind_contextvars("message_id", "request_id")


async def _verify(
    ctx: NodeContext, http: web.Request, entry: AuditEntry, now: datetime
) -> _Verified:
    with stage("parse"):
        request = parse_exchange_request(
            http.method, http.raw_path, http.headers.items(), allowed_node_headers=_PEER_HEADERS
        )
    structlog.contextvars.bind_contextvars(message_id=request.message_id)
    entry.message_id = request.message_id
    entry.client = str(request.client)
    entry.service = str(request.service)
    entry.path = request.service_path + (f"?{request.query}" if request.query else "")
    entry.user_id = request.user_id
    entry.purpose = request.purpose
    entry.subject = request.subject
    conf = ctx.conf.current(now)
    if not conf.is_hosted_on(request.service.subsystem, ctx.settings.node_id):
        raise UnknownService(f"{request.service.subsystem} is not served by this node")
    transport = http.transport
    der = peer_certificate_der(transport.get_extra_info("ssl_object") if transport else None)
    try:
        auth_staple = decode_staple(http.headers.get("Renkei-Auth-Status"))
    except ValueError as exc:
        raise PeerAuthenticationFailed("the stapled OCSP response is malformed") from exc
    peer = ctx.authenticate_peer(der, conf, now, auth_staple)
    entry.peer_node = str(peer.id)
    if not conf.client_hosted_on(request.client, peer.id):
        raise ClientNotHosted(f"{request.client} is not hosted on {peer.id}")
    tokens = http.headers.getall("Renkei-Signature", [])
    if len(tokens) != 1:
        raise SignatureInvalid("the request must carry exactly one signature")
    token = tokens[0]
    entry.request_signature = token
    roots, roots_key = ctx.trust(conf)
    try:
        with stage("verify"):
            signed = verify_message(
                token,
                typ=REQUEST_TYP,
                expected_member=request.client.member,
                trust_roots=roots,
                roots_key=roots_key,
                now=now,
                cache=ctx.cert_cache,
                status_check=lambda cert, staple: ctx.certificate_status().check_peer(
                    cert, staple, now=now, side="serverproxy"
                ),
            )
    except SignatureError as exc:
        raise SignatureInvalid(exc.message, code=_signature_code(exc)) from exc
    request_id = _check_envelope(ctx, signed, peer, now)
    entry.request_id = request_id
    entry.request_hash = request_hash(token)
    structlog.contextvars.bind_contextvars(request_id=request_id)
    body = await spool(
        http.content.iter_chunked(256 * 1024),
        memory_limit=ctx.settings.body_memory_limit,
        max_size=ctx.settings.max_body_bytes,
    )
    entry.request_body_sha256 = body.sha256
    expected = request_description(
        request,
        request_id=request_id,
        body_sha256=body.sha256,
        body_length=body.size,
        issued_at=int(signed["issued_at"]),
        origin=peer.id,
        destination=ctx.settings.node_id,
    )
    if signed != expected:
        body.close()
        raise SignatureInvalid(
            "the request differs from what was signed: " + _first_difference(signed, expected)
        )
    try:
        await ctx.replay.check_and_remember(request_id, now=now)
    except GatewayError:
        body.close()
        raise
    return _Verified(
        request=request,
        token=token,
        request_hash=entry.request_hash,
        request_id=request_id,
        peer=peer,
        body=body,
    )


def _signature_code(exc: SignatureError) -> str:
    return exc.code if exc.code.startswith("server.") else SignatureInvalid.code


def _check_envelope(ctx: NodeContext, signed: dict[str, Any], peer: Node, now: datetime) -> str:
    if signed.get("v") != 1 or signed.get("kind") != "request":
        raise SignatureInvalid("unsupported signed request version")
    if signed.get("destination") != str(ctx.settings.node_id):
        raise WrongDestination("the request was signed for another node")
    if signed.get("origin") != str(peer.id):
        raise SignatureInvalid("the request was signed for another origin node")
    issued_at = signed.get("issued_at")
    if not isinstance(issued_at, int):
        raise SignatureInvalid("the signed request has no issue time")
    age = now.timestamp() - issued_at
    if age > ctx.settings.request_max_age_s:
        raise SignatureInvalid(
            "the signed request is too old", code="server.serverproxy.request_expired"
        )
    if age < -ctx.settings.clock_skew_s:
        raise SignatureInvalid(
            "the signed request is dated in the future", code="server.serverproxy.clock_skew"
        )
    request_id = signed.get("request_id")
    try:
        return str(uuid.UUID(str(request_id)))
    except ValueError as exc:
        raise SignatureInvalid("the signed request id is not a UUID") from exc


def _first_difference(signed: dict[str, Any], actual: dict[str, Any]) -> str:
    for key in sorted(set(signed) | set(actual)):
        if signed.get(key) != actual.get(key):
            return key
    return "unknown"


async def _serve(
    ctx: NodeContext, http: web.Request, verified: _Verified, entry: AuditEntry
) -> web.StreamResponse:
    request = verified.request
    backend = ctx.service_snapshot().get(request.service)
    meta = is_metaservice(request.service)  # answered here (gateway/metaservices.py)
    if backend is None and not meta:
        raise UnknownService(f"{request.service} is not a service of this node")
    if backend is not None and not backend.enabled and not meta:
        raise ServiceDisabled(f"{request.service} is disabled on this node")
    path_parameters = backend is not None and backend.path_parameters and not meta
    check_path_parameters(request.service_path, allowed=path_parameters)
    now = ctx.clock()
    conf = ctx.conf.current(now)
    ctx.check_timestamping(now)
    if not meta:
        await _check_access(ctx, conf, request, path_parameters=path_parameters)
    decision = None if meta else await decide(ctx, conf, request, now)
    if decision is not None:
        entry.subject = decision.subject
    # A body to filter is held in memory up to the filter's own limit, no further.
    limit = ctx.filter_limits.max_bytes if decision is not None else None
    started = time.perf_counter()
    if backend is None or meta:
        status, headers, body = await answer_metaservice(ctx, conf, request)
    elif backend.serves_own_entities:
        if ctx.ngsi_ld is None:
            raise ServiceFailed(f"{request.service} has no entity store on this node")
        with stage("backend"):
            status, headers, body = await answer_from_store(ctx.ngsi_ld, request)
    else:
        with stage("backend"):
            status, headers, body = await _call_backend(
                ctx,
                backend,
                request,
                verified.request_id,
                verified.body,
                limit,
                subject=decision.subject if decision is not None else request.subject,
            )
    entry.backend_ms = (time.perf_counter() - started) * 1000
    entry.request_size = verified.body.size
    ctx.audit.keep_body(entry, "req", verified.body)
    withheld: tuple[str, ...] = ()
    if decision is not None:
        with stage("filter"):
            body, headers, withheld = _filtered(ctx, decision, entry, headers, body)
    consent_ids = decision.consent_ids if decision is not None else ()
    try:
        description = response_description(
            request_id=verified.request_id,
            request_hash=verified.request_hash,
            status=status,
            headers=headers,
            body_sha256=body.sha256,
            body_length=body.size,
            issued_at=int(ctx.clock().timestamp()),
            error=None,
            withheld=withheld,
            consent_ids=consent_ids,
            subject=entry.subject,
            break_glass=tuple(entry.consent.get("break_glass", ())) if entry.consent else (),
        )
        with stage("sign"):
            token = _sign_response(ctx, request, description)
        entry.status = status
        entry.response_size = body.size
        entry.response_body_sha256 = body.sha256
        entry.response_signature = token
        ctx.audit.keep_body(entry, "resp", body)
        with stage("audit"):
            await ctx.audit.append(entry)
        reply = web.StreamResponse(status=status)
        for name, value in headers:
            reply.headers.add(name, value)
        reply.headers["X-Road-Request-Hash"] = verified.request_hash
        reply.headers["Renkei-Signature"] = token
        if withheld:
            reply.headers["Renkei-Withheld"] = ",".join(withheld)
        if consent_ids:
            reply.headers["Renkei-Consent"] = ",".join(consent_ids)
        if "break_glass" in description:
            reply.headers["Renkei-Break-Glass"] = ",".join(description["break_glass"])
        reply.content_length = body.size
        await reply.prepare(http)
        await send_body(http, reply, body.chunks(), ctx.settings.limits)
        return reply
    finally:
        body.close()


def _filtered(
    ctx: NodeContext,
    decision: ConsentDecision,
    entry: AuditEntry,
    headers: tuple[tuple[str, str], ...],
    body: SpooledBody,
) -> tuple[SpooledBody, tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Apply consent to the backend's body; the unfiltered body is discarded here."""
    try:
        if not body.in_memory:
            raise ConsentRefused(
                "the response of a consent-governed service is larger than a node filters",
                code="server.serverproxy.response_unfilterable",
            )
        enforced = enforce(decision, headers, body.content(), ctx.filter_limits)
    finally:
        body.close()
    entry.consent = {
        "released": list(enforced.released),
        "withheld": list(enforced.withheld),
        "consent_ids": list(decision.consent_ids),
        "purpose": decision.purpose,
        # Whose data left the node, and whose was withheld as not the named subject's:
        # the data-subject report finds an exchange for every person it touched.
        "subjects": list(enforced.subjects),
        "withheld_subjects": list(enforced.withheld_subjects),
    }
    if enforced.break_glass:
        # Released against the data subject's deny for an emergency purpose: always marked.
        entry.consent["break_glass"] = list(enforced.break_glass)
    filtered = SpooledBody(memory_limit=len(enforced.body))
    filtered.feed(enforced.body)
    return filtered, enforced.headers, enforced.withheld


def _sign_response(
    ctx: NodeContext, request: ExchangeRequest | MemberId, description: dict[str, Any]
) -> str:
    """Sign with the provider member's key, stapling that key's certificate status."""
    member = request.service.member if isinstance(request, ExchangeRequest) else request
    signer = ctx.signers.get(member)
    if signer is None:
        raise UnknownService(f"this node holds no sign key for {member}")
    staple = ctx.certificate_status().own_staple(str(member), now=ctx.clock(), side="serverproxy")
    return signer.sign(description, typ=RESPONSE_TYP, ocsp=staple)


async def _check_access(
    ctx: NodeContext, conf: GlobalConf, request: ExchangeRequest, *, path_parameters: bool
) -> None:
    policy = await ctx.policy.access_policy()
    try:
        policy.check_query(
            request.client,
            conf.groups_of(request.client),
            request.service,
            request.method,
            request.service_path or "/",
            path_parameters=path_parameters,
        )
    except PolicyAccessDenied as exc:
        raise AccessDenied(str(exc)) from exc


def _xroad_headers(
    request: ExchangeRequest, request_id: str, subject: str | None
) -> list[tuple[str, str]]:
    """The X-Road headers a provider's service receives, as X-Road passes them.

    X-Road hands the service the request's own ``X-Road-*`` headers plus the
    ``X-Road-Request-Id`` its client proxy assigned; every value here was
    signed by the consumer node (``request_id`` included), so a backend can
    rely on them as far as it trusts this node. ``Renkei-Subject`` is the
    subject consent was decided for (from the signed header, path or query),
    so the backend can enforce it too.
    """
    security_server = str(request.security_server) if request.security_server else None
    pairs = (
        ("X-Road-Client", str(request.client)),
        ("X-Road-Service", str(request.service)),
        ("X-Road-Id", request.message_id),
        ("X-Road-Request-Id", request_id),
        ("X-Road-UserId", request.user_id),
        ("X-Road-Issue", request.issue),
        ("X-Road-Represented-Party", request.represented_party),
        ("X-Road-Security-Server", security_server),
        ("Renkei-Purpose", request.purpose),
        ("Renkei-Subject", subject),
    )
    return [(name, value) for name, value in pairs if value]


async def _call_backend(
    ctx: NodeContext,
    backend: Service,
    request: ExchangeRequest,
    request_id: str,
    body: SpooledBody,
    filter_limit: int | None,
    *,
    subject: str | None,
) -> tuple[int, tuple[tuple[str, str], ...], SpooledBody]:
    url = URL(
        backend.url + request.service_path + (f"?{request.query}" if request.query else ""),
        encoded=True,
    )
    headers = [*request.headers, *_xroad_headers(request, request_id, subject)]
    if body.size:
        # The size is known: no chunked framing, which not every backend reads.
        headers.append(("Content-Length", str(body.size)))
    session = ctx.backend_session
    assert session is not None
    timeout = aiohttp.ClientTimeout(total=backend.timeout_s, sock_connect=5)
    try:
        async with session.request(
            request.method,
            url,
            headers=headers,
            data=body.chunks() if body.size else None,
            allow_redirects=False,
            timeout=timeout,
            ssl=backend.ssl if backend.ssl is not None else True,
            skip_auto_headers=("User-Agent", "Content-Type", "Accept", "Accept-Encoding"),
        ) as response:
            try:
                received = await spool(
                    response.content.iter_chunked(256 * 1024),
                    memory_limit=filter_limit or ctx.settings.body_memory_limit,
                    max_size=filter_limit or ctx.settings.max_body_bytes,
                )
            except BodyTooLarge as exc:
                raise ConsentRefused(
                    "the response is larger than the consent filter accepts",
                    code="server.serverproxy.response_unfilterable",
                ) from exc
            return response.status, response_headers_from(response.headers.items()), received
    except TimeoutError as exc:
        raise ServiceTimeout(f"the backend of {request.service} did not answer in time") from exc
    except aiohttp.ClientError as exc:
        raise ServiceFailed(
            f"the backend of {request.service} failed: {exc.__class__.__name__}"
        ) from exc


async def _refuse(
    ctx: NodeContext,
    http: web.Request,
    exc: GatewayError,
    entry: AuditEntry,
    verified: _Verified | None,
) -> web.Response:
    detail = str(uuid.uuid4())
    log.info("exchange_refused", code=exc.code, error=exc.message, detail=detail)
    # Always JSON: the consumer node reads the message from it and answers its
    # client in the form the client's Accept asks for (gateway/responses.py).
    body, content_type = error_body(exc.code, exc.message, detail, xml=False)
    headers = {"X-Road-Error": exc.code, "Content-Type": content_type}
    entry.status = exc.status
    entry.error_code = exc.code
    binding = _refusal_binding(http, entry, verified)
    if binding is not None:
        # The consumer can prove this refusal, and must be able to: sign it, bound
        # to the request it answers (the consumer relays no unsigned refusal).
        request_id, req_hash, member = binding
        description = response_description(
            request_id=request_id,
            request_hash=req_hash,
            status=exc.status,
            headers=(("content-type", content_type),),
            body_sha256=_sha256_b64(body),
            body_length=len(body),
            issued_at=int(ctx.clock().timestamp()),
            error=exc.code,
            subject=entry.subject,
        )
        try:
            token: str | None = _sign_response(ctx, member, description)
        except GatewayError:
            token = None  # no usable sign key or status: the refusal goes unsigned
        if token is not None:
            headers["Renkei-Signature"] = token
            headers["X-Road-Request-Hash"] = req_hash
            entry.response_signature = token
            entry.response_body_sha256 = description["body_sha256"]  # as the consumer keeps it
    await ctx.audit.append(entry)
    return web.Response(status=exc.status, body=body, headers=headers)


def _refusal_binding(
    http: web.Request, entry: AuditEntry, verified: _Verified | None
) -> tuple[str, str, MemberId] | None:
    """(request id, request hash, provider member) a refusal is signed for, if any.

    Before the request's signature was verified (or when it failed) the
    refusal is bound to the token as presented: the consumer, who made that
    token, checks the binding; anyone else learns nothing from it.
    """
    if verified is not None:
        return verified.request_id, verified.request_hash, verified.request.service.member
    tokens = http.headers.getall("Renkei-Signature", [])
    if len(tokens) != 1 or entry.service is None:
        return None
    try:
        member = ServiceId.parse(entry.service).member
        encoded = tokens[0].split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        request_id = str(uuid.UUID(str(payload["request_id"])))
        req_hash = request_hash(tokens[0])
    except (IndexError, KeyError, TypeError, ValueError, UnicodeError, IdentifierError):
        return None
    entry.request_id = entry.request_id or request_id
    entry.request_hash = entry.request_hash or req_hash
    return request_id, req_hash, member


def _sha256_b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

"""Management API for access rights, declarations and consents.

Roles: ``admin`` manages access rights, declarations and purposes; ``consent``
manages consents (the data holder's consent desk); ``auditor`` may read.
Every change applies to the next request: the proxies read the policy store
per exchange.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from certs.identifiers import GlobalGroupId, IdentifierError, ServiceId, SubsystemId
from gateway.context import NodeContext
from gateway.fhir_consent_api import (
    FHIR_JSON,
    add_fhir_code_routes,
    export_fhir_consent,
    import_fhir_consent,
    wants_fhir,
)
from gateway.operator_log import note_change
from policies.access import AccessRight, format_grantee, parse_grantee
from policies.consent import Consent
from policies.consent_desk import check_consent_request
from policies.declarations import PurposeDeclaration
from policies.errors import (
    AccessRightNotFound,
    ConsentError,
    ConsentNotFound,
    DeclarationError,
    PolicyError,
    ReceiptError,
)
from policies.fhir_consent import FhirConsentRefused
from policies.files import apply_policy_file, declaration_json, parse_policy_text
from policies.receipts import make_consent_record, make_receipt, sign_receipt, sign_record

log = structlog.get_logger(__name__)

__all__ = [
    "add_policy_routes", "consent_json", "grant_checked_consent", "right_json", "strict_body",
]

RoleCheck = Callable[..., None]


def _problem(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"type": code, "message": message}, status=status)


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConsentError(f"{name} must be an RFC 3339 time") from exc
    if parsed.tzinfo is None:
        raise ConsentError(f"{name} must carry a time zone")
    return parsed


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def consent_json(consent: Consent) -> dict[str, Any]:
    return {
        "id": str(consent.id),
        "subject": consent.subject,
        "consumer": str(consent.consumer),
        "service": str(consent.service),
        "purpose": consent.purpose,
        "fields": list(consent.fields),
        "valid_from": _iso(consent.valid_from),
        "valid_until": _iso(consent.valid_until),
        "granted_at": _iso(consent.granted_at),
        "revoked_at": _iso(consent.revoked_at),
        "decision": consent.decision,
        "depth": consent.depth,
        "resource_types": list(consent.resource_types),
        "resources": list(consent.resources),
        "labels": list(consent.labels),
        "data_from": _iso(consent.data_from),
        "data_until": _iso(consent.data_until),
        "actor": consent.actor,
        "origin": consent.origin,
    }


def _purpose_json(purpose: PurposeDeclaration) -> dict[str, Any]:
    return {"consumer": str(purpose.consumer), "code": purpose.code, "text": purpose.text}


def right_json(right: AccessRight) -> dict[str, Any]:
    return {
        "id": right.id,
        "service": str(right.service),
        "grantee": format_grantee(right.grantee),
        "method": right.method,
        "path": right.path,
        "granted_at": _iso(right.granted_at),
    }


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        # Two values for one key: which one counts is parser-dependent, so refuse.
        raise ValueError("duplicate key in a JSON object")
    return document


def _strict_loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_no_duplicate_keys)


async def strict_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; a duplicate key or another shape is a 400."""
    return await _body(request)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        document = await request.json(loads=_strict_loads)
    except ValueError as exc:
        raise ConsentError(
            f"the request body must be a JSON object without duplicate keys: {exc}"
        ) from exc
    if not isinstance(document, dict):
        raise ConsentError("the request body must be a JSON object")
    return document


def _consumer(text: str) -> SubsystemId | GlobalGroupId:
    try:
        return SubsystemId.parse(text)
    except IdentifierError:
        try:
            return GlobalGroupId.parse(text)
        except IdentifierError as exc:
            raise ConsentError(f"consumer {text!r} is neither a subsystem nor a group") from exc



async def grant_checked_consent(
    ctx: NodeContext, body: dict[str, Any]
) -> tuple[Consent, dict[str, Any]]:
    """Grant a consent as the consent desk asks it (API and console alike): only for
    consumers of the current configuration, declared purposes and declared fields.
    Returns the consent and its signed receipt; raises a :class:`PolicyError` (or an
    :class:`IdentifierError`) naming what is wrong."""
    store = ctx.policy
    now = ctx.clock()
    try:
        service = ServiceId.parse(str(body["service"]))
        consumer = _consumer(str(body["consumer"]))
        fields = body["fields"]
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise ConsentError("fields must be a list of field paths")
        subject, purpose = str(body["subject"]), str(body["purpose"])
    except KeyError as exc:
        raise ConsentError(f"missing key {exc.args[0]!r}") from exc
    declaration = await store.service_declaration(service)
    if declaration is None:
        raise DeclarationError(f"{service} has no service declaration on this node")
    valid_until = _time(body.get("valid_until"), "valid_until")
    conf = ctx.conf.current(now)
    accepted = check_consent_request(
        declaration=declaration,
        consumer=consumer,
        purpose=purpose,
        fields=fields,
        valid_until=valid_until,
        now=now,
        known_subsystem=conf.has_subsystem,
        group_members=lambda group: next(
            (g.members for g in conf.global_groups if g.id == group), None
        ),
        purposes=await store.list_purposes(),
    )
    consent = await store.grant_consent(
        subject=subject,
        consumer=consumer,
        service=service,
        purpose=purpose,
        fields=accepted.fields,
        valid_from=_time(body.get("valid_from"), "valid_from") or now,
        valid_until=valid_until,
        now=now,
    )
    return consent, _receipt(ctx, consent, declaration, now, accepted.purpose_text)


def add_policy_routes(app: web.Application, ctx: NodeContext, require_role: RoleCheck) -> None:
    store = ctx.policy

    @web.middleware
    async def translate(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except (ConsentNotFound, AccessRightNotFound) as exc:
            return _problem(404, exc.code, str(exc))
        except FhirConsentRefused as exc:
            problems = [{"element": element, "why": why} for element, why in exc.problems]
            return web.json_response(
                {"type": exc.code, "message": str(exc), "problems": problems}, status=400
            )
        except (PolicyError, IdentifierError) as exc:
            code = getattr(exc, "code", "client.bad_request")
            return _problem(400, code, str(exc))
        return response

    app.middlewares.append(translate)

    async def grant_consent(request: web.Request) -> web.Response:
        require_role(request, "consent", "admin")
        if request.content_type == FHIR_JSON:
            return await import_fhir_consent(request, ctx, store, consent_json)
        consent, receipt = await grant_checked_consent(ctx, await _body(request))
        note_change(request, before=None, after=consent_json(consent))
        return web.json_response({"consent": consent_json(consent), **receipt}, status=201)

    async def list_consents(request: web.Request) -> web.Response:
        require_role(request, "consent", "admin", "auditor")
        service_text = request.query.get("service")
        consents = await store.list_consents(
            subject=request.query.get("subject"),
            service=ServiceId.parse(service_text) if service_text else None,
            include_inactive=request.query.get("include_inactive") == "true",
            now=ctx.clock(),
        )
        return web.json_response({"consents": [consent_json(c) for c in consents]})

    async def get_consent(request: web.Request) -> web.Response:
        require_role(request, "consent", "admin", "auditor")
        if wants_fhir(request):
            return await export_fhir_consent(ctx, store, request.match_info["consent_id"])
        consent = await store.consent(request.match_info["consent_id"])
        return web.json_response(consent_json(consent))

    async def revoke_consent(request: web.Request) -> web.Response:
        require_role(request, "consent", "admin")
        before = consent_json(await store.consent(request.match_info["consent_id"]))
        consent = await store.revoke_consent(request.match_info["consent_id"], ctx.clock())
        note_change(request, before=before, after=consent_json(consent))
        return web.json_response(consent_json(consent))

    async def list_access(request: web.Request) -> web.Response:
        require_role(request, "admin", "auditor")
        service_text = request.query.get("service")
        rights = await store.list_access(ServiceId.parse(service_text) if service_text else None)
        return web.json_response({"access": [right_json(r) for r in rights]})

    async def grant_access(request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = await _body(request)
        try:
            right = AccessRight(
                service=ServiceId.parse(str(body["service"])),
                grantee=parse_grantee(str(body["grantee"])),
                method=str(body.get("method", "*")),
                path=str(body.get("path", "*")),
            )
        except KeyError as exc:
            raise DeclarationError(f"missing key {exc.args[0]!r}") from exc
        granted = await store.grant_access(right, now=ctx.clock())
        note_change(request, before=None, after=right_json(granted))
        return web.json_response(right_json(granted), status=201)

    async def revoke_access(request: web.Request) -> web.Response:
        require_role(request, "admin")
        right_id = request.match_info["right_id"]
        before = [right_json(r) for r in await store.list_access() if str(r.id) == right_id]
        await store.revoke_access(right_id)
        note_change(request, before=before[0] if before else None, after=None)
        return web.json_response({"revoked": right_id})

    async def list_declarations(request: web.Request) -> web.Response:
        require_role(request, "admin", "auditor", "consent")
        declarations = await store.list_services()
        return web.json_response({"declarations": [declaration_json(d) for d in declarations]})

    async def list_purposes(request: web.Request) -> web.Response:
        require_role(request, "admin", "auditor", "consent")
        purposes = await store.list_purposes()
        return web.json_response(
            {
                "purposes": [
                    {"consumer": str(p.consumer), "code": p.code, "text": p.text} for p in purposes
                ]
            }
        )

    async def declare_purpose(request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = await _body(request)
        try:
            declaration = PurposeDeclaration(
                consumer=SubsystemId.parse(str(body["consumer"])),
                code=str(body["code"]),
                text=str(body["text"]),
            )
        except KeyError as exc:
            raise DeclarationError(f"missing key {exc.args[0]!r}") from exc
        previous = await store.purpose(declaration.consumer, declaration.code)
        await store.declare_purpose(declaration)
        note_change(
            request,
            before=_purpose_json(previous) if previous is not None else None,
            after=_purpose_json(declaration),
        )
        return web.json_response(
            {"consumer": str(declaration.consumer), "code": declaration.code}, status=201
        )

    async def apply_policy(request: web.Request) -> web.Response:
        """A declarative policy file, applied at once (or with dry_run, only compared)."""
        require_role(request, "admin")
        body = await _body(request)
        text, dry_run = body.get("policy"), body.get("dry_run", False)
        if not isinstance(text, str) or not isinstance(dry_run, bool):
            raise DeclarationError(
                'the body must be {"policy": "<policy file text>", "dry_run": true|false}'
            )
        source = str(body.get("source") or "policy.toml")[:255]
        report = await apply_policy_file(
            store, parse_policy_text(text, source), now=ctx.clock(), dry_run=dry_run
        )
        if report.applied:
            note_change(request, **report.trail_change())
        return web.json_response(report.to_json())

    app.router.add_post("/api/policy/apply", apply_policy)
    app.router.add_post("/api/consents", grant_consent)
    app.router.add_get("/api/consents", list_consents)
    app.router.add_get("/api/consents/{consent_id}", get_consent)
    app.router.add_delete("/api/consents/{consent_id}", revoke_consent)
    app.router.add_get("/api/access", list_access)
    app.router.add_post("/api/access", grant_access)
    app.router.add_delete("/api/access/{right_id}", revoke_access)
    app.router.add_get("/api/declarations", list_declarations)
    app.router.add_get("/api/purposes", list_purposes)
    app.router.add_post("/api/purposes", declare_purpose)
    add_fhir_code_routes(app, store, require_role)


def _receipt(
    ctx: NodeContext,
    consent: Consent,
    declaration: Any,
    now: datetime,
    purpose_text: str | None = None,
) -> dict[str, Any]:
    """The signed consent receipt (Kantara CR 1.1) and record (ISO/IEC TS 27560), by the
    data holder's sign key; none when the node does not say who the controller is."""
    holder = consent.service.member
    signer = ctx.signers.get(holder)
    conf = ctx.conf.latest()
    member = conf.member(holder) if conf is not None else None
    configured = ctx.settings.receipt_controller
    controller = {
        "piiController": configured.get("name")
        or (member.name if member is not None else str(holder)),
        "contact": configured.get("contact", ""),
        "address": configured.get("address", ""),
        "email": configured.get("email", ""),
        "phone": configured.get("phone", ""),
        "jurisdiction": configured.get("jurisdiction", ""),
        "policyUrl": configured.get("policy_url", ""),
    }
    try:
        receipt = make_receipt(consent, declaration, controller, now, purpose_text=purpose_text)
        record = make_consent_record(consent, declaration, controller, now)
    except ReceiptError as exc:
        log.warning("consent_receipt_not_issued", reason=str(exc))
        return {"receipt": None, "receipt_jws": None, "record": None, "record_jws": None}
    if signer is None:
        return {"receipt": receipt, "receipt_jws": None, "record": record, "record_jws": None}
    certificate = signer.chain[0]
    return {
        "receipt": receipt,
        "receipt_jws": sign_receipt(receipt, signer.key, certificate),
        "record": record,
        "record_jws": sign_record(record, signer.key, certificate),
    }

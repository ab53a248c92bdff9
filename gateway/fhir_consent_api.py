"""FHIR R4 ``Consent`` on the management API, and the operator's FHIR mapping table.

``POST /api/consents`` with ``Content-Type: application/fhir+json`` imports a Consent
for the service named by the ``service`` query parameter (``root_type`` states the root
rule's effect where the resource leaves it out): all of its rules or, with a 400 naming
each FHIR element the node cannot enforce, none. Importing a Consent with the id of an
earlier one replaces it (the earlier rules are revoked); an id another patient's or
service's consent holds is refused. ``GET /api/consents/{id}`` with ``Accept:
application/fhir+json`` returns a consent (a rule id or an imported Consent's id) as a
FHIR Consent. ``/api/fhir-codes`` keeps the table that maps FHIR purposes of use and
actor references onto purposes and consumers, the services' base policies and the
break-glass purposes (``policies.fhir_consent``).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from aiohttp import web

from certs.identifiers import IdentifierError, ServiceId
from gateway.context import NodeContext
from gateway.operator_log import note_change
from policies.consent import Consent
from policies.errors import ConsentError, ConsentNotFound, DeclarationError
from policies.fhir_consent import FhirMapping, export_consent, import_consent
from policies.store import PolicyStore

__all__ = [
    "FHIR_JSON",
    "add_fhir_code_routes",
    "export_fhir_consent",
    "fhir_mapping",
    "import_fhir_consent",
    "wants_fhir",
]

FHIR_JSON = "application/fhir+json"


def wants_fhir(request: web.Request) -> bool:
    return FHIR_JSON in request.headers.get("Accept", "")


async def fhir_mapping(store: PolicyStore, service: ServiceId) -> FhirMapping:
    codes = await store.fhir_codes()
    return FhirMapping(
        purposes={c.code: c.target for c in codes if c.kind == "purpose"},
        actors={c.code: c.target for c in codes if c.kind == "actor"},
        opt_out=await store.is_opt_out(service),
    )


def _loads(text: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document = dict(pairs)
        if len(document) != len(pairs):
            raise ValueError("duplicate key in a JSON object")
        return document

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except ValueError as exc:
        raise ConsentError(f"the body must be FHIR JSON without duplicate keys: {exc}") from exc


async def import_fhir_consent(
    request: web.Request, ctx: NodeContext, store: PolicyStore, consent_json: Any
) -> web.Response:
    now = ctx.clock()
    resource = _loads(await request.text())
    service_text = request.query.get("service")
    if not service_text:
        raise ConsentError("the service query parameter names the service the consent governs")
    try:
        service = ServiceId.parse(service_text)
    except IdentifierError as exc:
        raise ConsentError(f"service: {exc}") from exc
    declaration = await store.service_declaration(service)
    if declaration is None:
        raise DeclarationError(f"{service} has no service declaration on this node")
    mapping = await fhir_mapping(store, service)
    rules = import_consent(
        resource,
        declaration=declaration,
        mapping=mapping,
        now=now,
        root_type=request.query.get("root_type"),
    )
    origin = rules[0].origin
    assert origin is not None
    async with store.atomic() as tx:
        earlier = await tx.consents_of_origin(origin)
        if any((r.subject, r.service) != (rules[0].subject, service) for r in earlier):
            raise ConsentError(
                f"Consent.id: {origin!r} already names the consent of another patient or service"
            )
        if earlier:
            await tx.revoke_origin(origin, now)
        await tx.grant_rules(rules)
    exported = export_consent(rules, mapping=mapping, now=now)
    note_change(request, before=None, after={"fhir_consent": origin, "rules": len(rules)})
    return web.json_response(
        {"origin": origin, "consents": [consent_json(r) for r in rules], "fhir": exported},
        status=201,
    )


async def export_fhir_consent(
    ctx: NodeContext, store: PolicyStore, consent_id: str
) -> web.Response:
    try:
        UUID(consent_id)
    except ValueError:
        rules = await store.consents_of_origin(consent_id)
    else:
        rule = await store.consent(consent_id)
        rules = await store.consents_of_origin(rule.origin) if rule.origin else [rule]
    if not rules:
        raise ConsentNotFound(f"no consent has id {consent_id}")
    rules = _latest(rules)
    document = export_consent(
        rules, mapping=await fhir_mapping(store, rules[0].service), now=ctx.clock()
    )
    return web.json_response(document, content_type=FHIR_JSON)


def _latest(rules: list[Consent]) -> list[Consent]:
    """The rules of the last import of a Consent (an earlier import was replaced)."""
    newest = max(rule.granted_at for rule in rules)
    return [rule for rule in rules if rule.granted_at == newest]


def add_fhir_code_routes(app: web.Application, store: PolicyStore, require_role: Any) -> None:
    async def list_codes(request: web.Request) -> web.Response:
        require_role(request, "admin", "auditor", "consent")
        codes = await store.fhir_codes()
        return web.json_response(
            {
                "codes": [
                    {
                        "kind": c.kind,
                        "code": c.code,
                        "target": c.target,
                        "break_glass": c.break_glass,
                    }
                    for c in codes
                ]
            }
        )

    async def set_code(request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = await request.json(loads=_loads)
        if not isinstance(body, dict):
            raise ConsentError("the body must be a JSON object")
        try:
            kind, code, target = str(body["kind"]), str(body["code"]), str(body["target"])
        except KeyError as exc:
            raise ConsentError(f"missing key {exc.args[0]!r}") from exc
        break_glass = body.get("break_glass", False)
        if not isinstance(break_glass, bool):
            raise ConsentError("break_glass must be true or false")
        await store.set_fhir_code(kind, code, target, break_glass=break_glass)
        after = {"kind": kind, "code": code, "target": target, "break_glass": break_glass}
        note_change(request, before=None, after=after)
        return web.json_response(after)

    async def remove_code(request: web.Request) -> web.Response:
        require_role(request, "admin")
        kind, code = request.query.get("kind"), request.query.get("code")
        if not kind or not code:
            raise ConsentError("give kind and code as query parameters")
        await store.remove_fhir_code(kind, code)
        note_change(request, before={"kind": kind, "code": code}, after=None)
        return web.json_response({"removed": {"kind": kind, "code": code}})

    app.router.add_get("/api/fhir-codes", list_codes)
    app.router.add_put("/api/fhir-codes", set_code)
    app.router.add_delete("/api/fhir-codes", remove_code)

"""Per-field consent on the provider node (DESIGN §5).

Before the backend is called, :func:`decide` finds the data subject the request
names and that subject's consents in force for (consumer, service, purpose), and
so the fields that may leave the node. The named subject is the consumer's
statement, not a fact: after the backend answers, :func:`enforce` establishes
from the body whose data each resource is, releases only resources about the
named subject (and those declared impersonal), filtered to the released fields,
and removes every backend header the declaration does not allow. Anything that
cannot be filtered safely is refused; an unfiltered body (or header) of a
consent-governed service never leaves the node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl
from uuid import UUID

from certs.identifiers import MemberId
from gateway.context import NodeContext
from gateway.errors import ProviderError
from gateway.protocol import ExchangeRequest
from member_registry.globalconf import GlobalConf
from policies.consent import ANY_CONSUMER, ANY_PURPOSE, Consent, ResourceGate, released_fields
from policies.declarations import ServiceDeclaration
from policies.errors import FilterError, PolicyError, ReleaseRefused, SubjectRequired
from policies.filter import FilterLimits, decode_content, filter_body

__all__ = ["ConsentDecision", "ConsentRefused", "decide", "enforce"]

SUBJECT_HEADER = "renkei-subject"
# The base rule of an opt-out service: not a stored consent, so never listed as one.
_OPT_OUT_BASE = UUID(int=0)
# Without these the consumer could not read the body; the node sets the length itself.
_BODY_HEADERS = frozenset({"content-type"})
# These describe the backend's body, not the filtered one: never passed on.
_DESCRIBE_THE_UNFILTERED_BODY = frozenset(
    {"content-encoding", "content-length", "content-md5", "digest", "etag"}
)


class ConsentRefused(ProviderError):
    """A consent-governed request or response that cannot be served safely."""

    code = "server.serverproxy.consent_refused"


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    declaration: ServiceDeclaration
    subject: str
    purpose: str
    released: tuple[str, ...]
    consent_ids: tuple[str, ...]
    # Per-resource rules (denies, conditions); None where the fields say it all.
    gate: ResourceGate | None = None


@dataclass(frozen=True, slots=True)
class Enforced:
    body: bytes
    headers: tuple[tuple[str, str], ...]
    released: tuple[str, ...]
    withheld: tuple[str, ...]
    # Whose data was released, and whose was withheld as not the named subject's.
    subjects: tuple[str, ...] = ()
    withheld_subjects: tuple[str, ...] = ()
    # Deny rules a break-glass purpose overrode for this response.
    break_glass: tuple[str, ...] = ()


def allowed_headers(
    decision: ConsentDecision, headers: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """The backend's headers the declaration lets through (``Link``, ``Location`` or a
    custom header can carry data as well as a body can). ``headers`` are lower-cased."""
    allowed = _BODY_HEADERS | {name.lower() for name in decision.declaration.response_headers}
    return tuple(
        (name, value)
        for name, value in headers
        if name in allowed and name not in _DESCRIBE_THE_UNFILTERED_BODY
    )


def _lookup(pairs: tuple[tuple[str, str], ...]) -> Callable[[str], list[str]]:
    def values(name: str) -> list[str]:
        key = name.lower()
        return [value for header, value in pairs if header == key]

    return values


async def decide(
    ctx: NodeContext, conf: GlobalConf, request: ExchangeRequest, now: datetime
) -> ConsentDecision | None:
    """The fields released for this request; None if the service is not consent-governed."""
    declaration = await ctx.policy.service_declaration(request.service)
    if declaration is None or not declaration.consent_governed:
        return None
    if not request.purpose:
        raise ConsentRefused(
            f"{request.service} is consent-governed: the request must carry Renkei-Purpose",
            code="server.serverproxy.purpose_required",
        )
    headers = request.headers
    if request.subject is not None:
        headers = (*headers, (SUBJECT_HEADER, request.subject))
    query = tuple((k.lower(), v) for k, v in parse_qsl(request.query, keep_blank_values=True))
    try:
        subject = declaration.subject.locate(
            headers=_lookup(headers),
            path=request.service_path,
            query=lambda name: [v for k, v in query if k == name.lower()],
        )
    except SubjectRequired as exc:
        raise ConsentRefused(str(exc), code=exc.code) from exc
    if request.subject is not None and request.subject != subject:
        raise ConsentRefused(
            "Renkei-Subject names another data subject than the request does",
            code="server.serverproxy.subject_mismatch",
        )
    # Desk consents are given to subsystems and groups: a member-level client matches
    # only rules for its member or for any consumer.
    client = request.client
    consents = await ctx.policy.active_consents(
        subject,
        client,
        () if isinstance(client, MemberId) else conf.groups_of(client),
        request.service,
        request.purpose,
        now,
        actor=request.user_id,
    )
    released, consent_ids = released_fields(declaration, consents, now)
    rules = list(consents)
    if await ctx.policy.is_opt_out(request.service):
        # Opt-out: everything declared is released unless a rule takes it away.
        rules.append(_opt_out_base(declaration, subject, now))
        released = tuple(sorted(declaration.fields))
    if not any(rule.decision == "deny" or rule.conditional for rule in rules):
        return ConsentDecision(declaration, subject, request.purpose, released, consent_ids)
    gate = ResourceGate(rules, break_glass=await ctx.policy.is_break_glass(request.purpose))
    if not declaration.is_fhir and gate.withheld({}, "") is not None:
        # A plain JSON record is one resource: a deny that holds leaves the public fields.
        released = tuple(sorted(declaration.public_fields))
    return ConsentDecision(declaration, subject, request.purpose, released, consent_ids, gate)


def _opt_out_base(declaration: ServiceDeclaration, subject: str, now: datetime) -> Consent:
    return Consent(
        id=_OPT_OUT_BASE,
        subject=subject,
        consumer=ANY_CONSUMER,
        service=declaration.service,
        purpose=ANY_PURPOSE,
        fields=tuple(declaration.fields),
        valid_from=now,
        valid_until=None,
        granted_at=now,
    )


def enforce(
    decision: ConsentDecision,
    headers: tuple[tuple[str, str], ...],
    body: bytes,
    limits: FilterLimits,
) -> Enforced:
    """Filter a backend response; raise :class:`ConsentRefused` rather than pass it on."""
    if not body:
        # Nothing to filter, but the headers of a 204 are a channel too.
        return Enforced(body, allowed_headers(decision, headers), (), ())
    content_type = next((v for k, v in headers if k == "content-type"), "")
    encoding = next((v for k, v in headers if k == "content-encoding"), None)
    try:
        decoded = decode_content(body, encoding, limits)
        filtered = filter_body(
            decoded,
            content_type=content_type,
            declaration=decision.declaration,
            subject=decision.subject,
            released_fields=decision.released,
            limits=limits,
            gate=decision.gate.withheld if decision.gate is not None else None,
        )
    except ReleaseRefused as exc:
        raise ConsentRefused(str(exc), code=exc.code) from exc
    except FilterError as exc:
        raise ConsentRefused(
            f"the response cannot be filtered safely ({exc.code}): {exc}",
            code="server.serverproxy.response_unfilterable",
        ) from exc
    except PolicyError as exc:
        raise ConsentRefused(f"the response cannot be filtered: {exc}") from exc
    return Enforced(
        filtered.body,
        allowed_headers(decision, headers),
        filtered.released,
        filtered.withheld,
        filtered.subjects,
        filtered.withheld_subjects,
        tuple(sorted(decision.gate.overridden)) if decision.gate is not None else (),
    )

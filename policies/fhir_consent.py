"""FHIR R4 ``Consent`` in and out: a resource onto consent rules, and rules back.

:func:`import_consent` maps one FHIR Consent onto :class:`~policies.consent.Consent`
rules of one service, or raises :class:`FhirConsentRefused` naming every element the
node cannot enforce as written (never dropping or widening one). The mapping:

- ``patient`` ``Patient/ID`` is the data subject; ``status`` must be ``active``,
  ``scope`` ``patient-privacy``; ``policyRule`` (v3 ActCode ``OPTIN``/``OPTOUT``) must
  be the service's base policy (the operator's, :class:`FhirMapping`).
- Each ``provision`` becomes rules at its nesting depth (the root at 1, an opt-out base
  is depth 0) with its own and its parents' conditions: the deepest rule that matches
  a resource decides (``consent.ResourceGate``). A nested provision must narrow its
  parent, else it would silently override it. The root's ``type`` may be given by the
  operator where the resource leaves it out (R4 allows that, and the official examples
  use ``OPTIN`` for withdrawals too, so the node does not guess).
- ``actor``: a recipient (``PRCP``, ``IRCP``) is a consumer from the operator's table
  (or an identifier ``urn:renkei:consumer``) or, for a person (``Practitioner``,
  ``PractitionerRole``, ``Patient``, ``RelatedPerson``), the ``X-Road-UserId`` the
  consumer states; a permit to a person needs the organisation they act for. The
  custodian (``CST``) must be this node (mapped to ``self``).
- ``purpose``: through the operator's table (or system ``urn:renkei:purpose``).
- ``class`` (resource types), ``data`` (``instance`` only), ``securityLabel``,
  ``period`` and ``dataPeriod`` are conditions; ``action`` must be ``access`` for a
  permit (a node only releases data to read); ``code``, ``policy``, ``extension`` and
  the other data meanings are refused.

:func:`export_consent` gives the rules of one consent (imported or granted at the
desk) as a FHIR Consent that imports back to the same rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final
from uuid import uuid4

from certs.identifiers import IdentifierError
from policies.consent import (
    ANY_CONSUMER,
    ANY_PURPOSE,
    Consent,
    Consumer,
    parse_consumer,
)
from policies.declarations import ServiceDeclaration
from policies.errors import ConsentError, FhirConsentRefused

__all__ = [
    "FIELDS_EXTENSION",
    "FhirConsentRefused",
    "FhirMapping",
    "export_consent",
    "import_consent",
]

ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONSENT_SCOPE: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION: Final = "http://terminology.hl7.org/CodeSystem/consentaction"
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
RENKEI_CONSUMER: Final = "urn:renkei:consumer"
RENKEI_USER: Final = "urn:renkei:user-id"
RENKEI_PURPOSE: Final = "urn:renkei:purpose"
# Field-level consent has no FHIR element: kept in this extension so nothing widens.
FIELDS_EXTENSION: Final = "urn:renkei:fhir:consent-released-fields"

_RECIPIENT_ROLES: Final = frozenset({"PRCP", "IRCP"})
_PERSONS: Final = ("Practitioner/", "PractitionerRole/", "Patient/", "RelatedPerson/")
# Elements that record the act of consenting; they restrict nothing the node enforces.
_INFORMATIONAL: Final = frozenset(
    {
        "resourceType",
        "id",
        "meta",
        "text",
        "language",
        "identifier",
        "category",
        "dateTime",
        "performer",
        "organization",
        "sourceAttachment",
        "sourceReference",
        "verification",
        "status",
        "scope",
        "patient",
        "policyRule",
        "provision",
    }
)
_PROVISION_KEYS: Final = frozenset(
    {
        "id",
        "type",
        "period",
        "actor",
        "action",
        "securityLabel",
        "purpose",
        "class",
        "dataPeriod",
        "data",
        "provision",
        "extension",
    }
)


@dataclass(frozen=True, slots=True)
class FhirMapping:
    """The operator's table: FHIR purpose ``system|code`` -> purpose code, FHIR
    reference -> consumer (``*``) or ``self`` (this node as custodian), and the
    service's base policy."""

    purposes: Mapping[str, str] = field(default_factory=dict)
    actors: Mapping[str, str] = field(default_factory=dict)
    opt_out: bool = False


@dataclass(frozen=True, slots=True)
class _Scope:
    """What a provision holds for: its own conditions and those of its parents."""

    consumers: tuple[Consumer, ...] = ()
    users: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    resource_types: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    data_from: datetime | None = None
    data_until: datetime | None = None


class _Importer:
    def __init__(
        self, declaration: ServiceDeclaration, mapping: FhirMapping, now: datetime
    ) -> None:
        self.declaration = declaration
        self.mapping = mapping
        self.now = now
        self.problems: list[tuple[str, str]] = []
        self.rules: list[tuple[str, int, str, _Scope]] = []

    def refuse(self, element: str, why: str) -> None:
        self.problems.append((element, why))

    # -- one provision -------------------------------------------------------------

    def provision(
        self,
        value: object,
        where: str,
        path: str,
        depth: int,
        decision: str | None,
        parent: _Scope,
    ) -> None:
        if type(value) is not dict:
            self.refuse(where, "must be an object")
            return
        for key in sorted(set(value) - _PROVISION_KEYS):
            self.refuse(f"{where}.{key}", _UNSUPPORTED.get(key, "the node cannot enforce it"))
        own_type = value.get("type")
        if own_type is not None and own_type not in ("permit", "deny"):
            self.refuse(f"{where}.type", "must be permit or deny")
            return
        if decision is not None and own_type is not None and own_type != decision:
            self.refuse(f"{where}.type", f"is {own_type}, but the operator said {decision}")
            return
        decision = own_type or decision
        if decision is None:
            self.refuse(
                f"{where}.type",
                "missing: R4 leaves the rule's effect to policyRule, which the official "
                "examples use for grants and withdrawals alike; state permit or deny",
            )
            return
        scope = self.scope(value, where, decision, parent)
        if scope is None:
            return
        if depth > 1 and scope == parent:
            self.refuse(where, "a nested rule must narrow its parent; this one would override it")
            return
        self.rules.append((decision, depth, path, scope))
        children = value.get("provision", [])
        if type(children) is not list:
            self.refuse(f"{where}.provision", "must be a list")
            return
        for index, child in enumerate(children):
            if type(child) is dict and "type" not in child:
                self.refuse(f"{where}.provision[{index}].type", "a nested rule needs a type")
                continue
            self.provision(
                child, f"{where}.provision[{index}]", f"{path}.{index}", depth + 1, None, scope
            )

    def scope(
        self, value: dict[str, Any], where: str, decision: str, parent: _Scope
    ) -> _Scope | None:
        before = len(self.problems)
        scope = parent
        period = self.period(value.get("period"), f"{where}.period")
        if period is not None:
            start = _later(parent.valid_from, period[0])
            end = _earlier(parent.valid_until, period[1])
            if start is not None and end is not None and end <= start:
                self.refuse(f"{where}.period", "does not overlap its parent's period")
            elif end is not None and end <= self.now:
                self.refuse(f"{where}.period", "lies entirely in the past")
            scope = replace(scope, valid_from=start, valid_until=end)
        data_period = self.period(value.get("dataPeriod"), f"{where}.dataPeriod")
        if data_period is not None:
            scope = replace(
                scope,
                data_from=_later(parent.data_from, data_period[0]),
                data_until=_earlier(parent.data_until, data_period[1]),
            )
        scope = self.actors(value.get("actor"), f"{where}.actor", decision, scope, parent)
        self.actions(value.get("action"), f"{where}.action", decision)
        purposes = self.codings(value.get("purpose"), f"{where}.purpose", self.purpose)
        labels = self.codings(value.get("securityLabel"), f"{where}.securityLabel", _label)
        types = self.codings(value.get("class"), f"{where}.class", _resource_type)
        resources = self.data(value.get("data"), f"{where}.data")
        fields = self.fields(value.get("extension"), f"{where}.extension")
        narrowed = {
            "purposes": purposes,
            "labels": labels,
            "resource_types": types,
            "resources": resources,
            "fields": fields,
        }
        for name, values in narrowed.items():
            if not values:
                continue
            inherited: tuple[str, ...] = getattr(parent, name)
            if inherited and not set(values) <= set(inherited):
                self.refuse(where, f"its {name.replace('_', ' ')} must be among its parent's")
            changes: dict[str, Any] = {name: tuple(dict.fromkeys(values))}
            scope = replace(scope, **changes)
        if len(self.problems) != before:
            return None
        return scope

    def period(self, value: object, where: str) -> tuple[datetime | None, datetime | None] | None:
        if value is None:
            return None
        if type(value) is not dict or set(value) - {"start", "end"}:
            self.refuse(where, "must be a Period with start and/or end")
            return None
        start, end = (_instant(value.get(key)) for key in ("start", "end"))
        if (start is None and "start" in value) or (end is None and "end" in value):
            self.refuse(where, "start and end must be FHIR dates or dateTimes")
            return None
        if start is not None and end is not None and end <= start:
            self.refuse(where, "ends before it starts")
            return None
        return start, end

    def actors(
        self, value: object, where: str, decision: str, scope: _Scope, parent: _Scope
    ) -> _Scope:
        if value is None:
            return scope
        consumers: list[Consumer] = []
        users: list[str] = []
        for index, actor in enumerate(_list(value)):
            at = f"{where}[{index}]"
            role = _codes(actor.get("role") if type(actor) is dict else None)
            reference = actor.get("reference") if type(actor) is dict else None
            if not role or type(reference) is not dict:
                self.refuse(at, "an actor needs a role and a reference")
                continue
            target = self.reference(reference)
            if (PARTICIPATION, "CST") in role:
                if target != "self":
                    self.refuse(
                        f"{at}.reference",
                        "the custodian must be this node (map the reference to self); "
                        "the node cannot enforce rules on another custodian's data",
                    )
                continue
            if not role & {(PARTICIPATION, code) for code in _RECIPIENT_ROLES}:
                self.refuse(f"{at}.role", "only recipients (PRCP, IRCP) and CST are enforced")
                continue
            if target == "self":
                self.refuse(f"{at}.reference", "this node is the custodian, not a recipient")
            elif target is None:
                self.refuse(
                    f"{at}.reference",
                    "maps to no consumer (the operator's table has no entry for it)",
                )
            elif isinstance(target, str):
                users.append(target)
            else:
                consumers.append(target)
        if consumers:
            if (
                parent.consumers
                and ANY_CONSUMER not in parent.consumers
                and not set(consumers) <= set(parent.consumers)
            ):
                self.refuse(where, "its consumers must be among its parent's")
            scope = replace(scope, consumers=tuple(dict.fromkeys(consumers)))
        if users:
            if decision == "permit" and not scope.consumers:
                self.refuse(
                    where,
                    "a permit to a person needs the organisation they act for; the node "
                    "knows a person only from a consumer's statement",
                )
            scope = replace(scope, users=tuple(dict.fromkeys(users)))
        return scope

    def reference(self, reference: dict[str, Any]) -> Consumer | str | None:
        """A consumer, ``self``, a person's user id (str), or None if unmapped."""
        identifier = reference.get("identifier")
        if type(identifier) is dict and identifier.get("system") in (RENKEI_CONSUMER, RENKEI_USER):
            text = identifier.get("value")
            if type(text) is not str:
                return None
            if identifier["system"] == RENKEI_USER:
                return text
            try:
                return parse_consumer(text)
            except (IdentifierError, ValueError):
                return None
        text = reference.get("reference")
        if type(text) is not str:
            return None
        mapped = self.mapping.actors.get(text)
        if mapped == "self":
            return "self"
        if mapped is not None:
            return parse_consumer(mapped)
        if text.startswith(_PERSONS):
            return text
        return None

    def actions(self, value: object, where: str, decision: str) -> None:
        if value is None:
            return
        codes = set()
        for concept in _list(value):
            codes |= {code for system, code in _codes(concept) if system == CONSENT_ACTION}
        if decision == "permit" and codes - {"access"}:
            self.refuse(where, "a node releases data to read only; a permit may only be access")
        if decision == "deny" and "access" not in codes:
            self.refuse(where, "a deny that does not deny access means nothing to the node")

    def purpose(self, coding: dict[str, Any]) -> str | tuple[str]:
        key = f"{coding.get('system')}|{coding.get('code')}"
        if coding.get("system") == RENKEI_PURPOSE and type(coding.get("code")) is str:
            return str(coding["code"])
        mapped = self.mapping.purposes.get(key)
        if mapped is None:
            return (f"{key} maps to no purpose (the operator's table has no entry)",)
        return mapped

    def codings(
        self, value: object, where: str, convert: Callable[[dict[str, Any]], str | tuple[str]]
    ) -> tuple[str, ...]:
        if value is None:
            return ()
        found: list[str] = []
        for index, coding in enumerate(_list(value)):
            at = f"{where}[{index}]"
            if type(coding) is not dict:
                self.refuse(at, "must be a Coding")
                continue
            result = convert(coding)
            if isinstance(result, tuple):
                self.refuse(at, result[0])
            else:
                found.append(result)
        return tuple(found)

    def data(self, value: object, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        found: list[str] = []
        for index, item in enumerate(_list(value)):
            at = f"{where}[{index}]"
            meaning = item.get("meaning") if type(item) is dict else None
            if meaning != "instance":
                self.refuse(
                    f"{at}.meaning",
                    f"{meaning!r}: only instance can be established from a response; "
                    "related, dependents and authoredby need links the response may lack",
                )
                continue
            reference = item.get("reference", {}).get("reference")
            if type(reference) is not str or reference.count("/") != 1:
                self.refuse(f"{at}.reference", "must be a relative reference Type/id")
                continue
            found.append(reference)
        return tuple(found)

    def fields(self, value: object, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        found: list[str] = []
        for index, extension in enumerate(_list(value)):
            if type(extension) is not dict or extension.get("url") != FIELDS_EXTENSION:
                self.refuse(f"{where}[{index}]", "the node cannot know what it means")
                continue
            text = extension.get("valueString")
            if type(text) is not str or text not in self.declaration.fields:
                self.refuse(f"{where}[{index}]", f"{text!r} is not a declared field")
                continue
            found.append(text)
        return tuple(found)


_UNSUPPORTED: Final = {
    "code": "codes inside the data (e.g. LOINC) cannot be matched by the node",
    "modifierExtension": "the node cannot know what it changes",
}


def _label(coding: dict[str, Any]) -> str | tuple[str]:
    system, code = coding.get("system"), coding.get("code")
    if type(system) is not str or type(code) is not str:
        return ("a security label needs system and code",)
    return f"{system}|{code}"


def _resource_type(coding: dict[str, Any]) -> str | tuple[str]:
    if coding.get("system") != RESOURCE_TYPES or type(coding.get("code")) is not str:
        return (f"only FHIR resource types ({RESOURCE_TYPES}) name a class of data here",)
    return str(coding["code"])


def _list(value: object) -> list[Any]:
    return value if type(value) is list else [value]


def _codes(concept: object) -> set[tuple[object, object]]:
    if type(concept) is not dict:
        return set()
    codings = concept.get("coding")
    if type(codings) is not list:
        return set()
    return {(c.get("system"), c.get("code")) for c in codings if type(c) is dict}


def _instant(value: object) -> datetime | None:
    if type(value) is not str:
        return None
    text = value.replace("Z", "+00:00")
    text += {4: "-01-01", 7: "-01"}.get(len(text), "")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _declared_fields(declaration: ServiceDeclaration, types: Sequence[str]) -> tuple[str, ...]:
    if not types:
        return tuple(declaration.fields)
    return tuple(f for f in declaration.fields if f.split(".", 1)[0] in types)


def import_consent(
    resource: object,
    *,
    declaration: ServiceDeclaration,
    mapping: FhirMapping,
    now: datetime,
    root_type: str | None = None,
) -> list[Consent]:
    """The rules of ``resource`` for ``declaration``'s service; raises
    FhirConsentRefused naming each element the node cannot enforce as written."""
    if type(resource) is not dict or resource.get("resourceType") != "Consent":
        raise FhirConsentRefused([("Consent", "the body is not a FHIR Consent resource")])
    importer = _Importer(declaration, mapping, now)
    for key in sorted(set(resource) - _INFORMATIONAL):
        importer.refuse(
            f"Consent.{key}",
            "external policies cannot be enforced by the node"
            if key == "policy"
            else "the node cannot enforce it",
        )
    if not declaration.is_fhir or not declaration.consent_governed:
        importer.refuse(
            "Consent", f"service {declaration.service} is not a consent-governed FHIR service"
        )
    if resource.get("status") != "active":
        importer.refuse("Consent.status", f"{resource.get('status')!r}: only active consents apply")
    if (CONSENT_SCOPE, "patient-privacy") not in _codes(resource.get("scope")):
        importer.refuse("Consent.scope", "only patient-privacy consents govern disclosure")
    patient = resource.get("patient")
    reference = patient.get("reference") if type(patient) is dict else None
    subject = reference[len("Patient/") :] if type(reference) is str else ""
    if type(reference) is not str or not reference.startswith("Patient/") or "/" in subject:
        importer.refuse("Consent.patient", "must reference Patient/ID: the data subject")
    rule = _codes(resource.get("policyRule"))
    opt_out = (ACT_CODE, "OPTOUT") in rule
    if not rule <= {(ACT_CODE, "OPTIN"), (ACT_CODE, "OPTOUT")} or len(rule) > 1:
        importer.refuse("Consent.policyRule", "only v3 ActCode OPTIN or OPTOUT")
    elif opt_out != mapping.opt_out:
        importer.refuse(
            "Consent.policyRule",
            f"the service's base policy is {'opt-out' if mapping.opt_out else 'opt-in'}; "
            "the consent was given under another",
        )
    if root_type not in (None, "permit", "deny"):
        raise ConsentError("the root type must be permit or deny")
    if "provision" not in resource:
        importer.refuse("Consent.provision", "without a rule there is nothing to enforce")
    else:
        importer.provision(resource["provision"], "Consent.provision", "0", 1, root_type, _Scope())
    if importer.problems:
        raise FhirConsentRefused(importer.problems)
    origin = str(resource.get("id") or uuid4())
    granted = _instant(resource.get("dateTime")) or now
    rules: list[Consent] = []
    for decision, depth, path, scope in importer.rules:
        fields = scope.fields or _declared_fields(declaration, scope.resource_types)
        if not fields:
            raise FhirConsentRefused(
                [(f"provision {path}", "the service declares no field of these resource types")]
            )
        combos = itertools.product(
            scope.consumers or (ANY_CONSUMER,),
            scope.users or (None,),
            scope.purposes or (ANY_PURPOSE,),
        )
        for consumer, user, purpose in combos:
            rules.append(
                Consent(
                    id=uuid4(),
                    subject=subject,
                    consumer=consumer,
                    service=declaration.service,
                    purpose=purpose,
                    fields=fields,
                    valid_from=scope.valid_from or granted,
                    valid_until=scope.valid_until,
                    granted_at=now,
                    decision="permit" if decision == "permit" else "deny",
                    depth=depth,
                    resource_types=scope.resource_types,
                    resources=scope.resources,
                    labels=scope.labels,
                    data_from=scope.data_from,
                    data_until=scope.data_until,
                    actor=user,
                    origin=origin,
                    provision=path,
                )
            )
    return rules


def export_consent(
    rules: Sequence[Consent], *, mapping: FhirMapping, now: datetime
) -> dict[str, Any]:
    """One consent's rules (one origin, or one desk-granted consent) as a FHIR Consent.

    Each provision states what differs from its parent, so it imports back to the same
    rules; the fields are carried in :data:`FIELDS_EXTENSION` (FHIR has no element)."""
    if not rules:
        raise ConsentError("no rules to export")
    first = rules[0]
    by_path: dict[str, list[Consent]] = {}
    for rule in rules:
        by_path.setdefault(rule.provision or "0", []).append(rule)
    root = "0" if "0" in by_path else min(by_path, key=lambda p: (p.count("."), p))
    revoked = first.revoked_at is not None and first.revoked_at <= now
    return {
        "resourceType": "Consent",
        "id": first.origin or str(first.id),
        "status": "inactive" if revoked else "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{first.subject}"},
        "dateTime": first.granted_at.isoformat(),
        "policyRule": {
            "coding": [{"system": ACT_CODE, "code": "OPTOUT" if mapping.opt_out else "OPTIN"}]
        },
        "provision": _Exporter(by_path, mapping).node(root, None),
    }


@dataclass(frozen=True, slots=True)
class _Facts:
    """What a group of rows from one provision holds for, as sets to compare."""

    consumers: frozenset[str]
    users: frozenset[str]
    purposes: frozenset[str]
    rule: Consent

    @classmethod
    def of(cls, group: Sequence[Consent]) -> _Facts:
        return cls(
            frozenset(str(r.consumer) for r in group) - {"*"},
            frozenset(r.actor for r in group if r.actor is not None),
            frozenset(r.purpose for r in group) - {ANY_PURPOSE},
            group[0],
        )


class _Exporter:
    def __init__(self, by_path: Mapping[str, list[Consent]], mapping: FhirMapping) -> None:
        self.by_path = by_path
        self.purposes = {target: key for key, target in mapping.purposes.items()}
        self.actors = {target: key for key, target in mapping.actors.items() if target != "self"}

    def node(self, path: str, parent: _Facts | None) -> dict[str, Any]:
        facts = _Facts.of(self.by_path[path])
        rule, up = facts.rule, parent.rule if parent is not None else None
        out: dict[str, Any] = {"type": rule.decision}

        def differs(name: str) -> bool:
            return up is None or getattr(rule, name) != getattr(up, name)

        if differs("valid_from") or differs("valid_until"):
            out["period"] = _period(rule.valid_from, rule.valid_until)
        role = {"coding": [{"system": PARTICIPATION, "code": "PRCP"}]}
        actors: list[dict[str, Any]] = []
        if parent is None or facts.consumers != parent.consumers:
            actors += [
                {"role": role, "reference": self.consumer(c)} for c in sorted(facts.consumers)
            ]
        if parent is None or facts.users != parent.users:
            actors += [{"role": role, "reference": _user(u)} for u in sorted(facts.users)]
        if actors:
            out["actor"] = actors
        out["action"] = [{"coding": [{"system": CONSENT_ACTION, "code": "access"}]}]
        if facts.purposes and (parent is None or facts.purposes != parent.purposes):
            out["purpose"] = [self.purpose(code) for code in sorted(facts.purposes)]
        if rule.labels and differs("labels"):
            out["securityLabel"] = [
                {"system": label.split("|", 1)[0], "code": label.split("|", 1)[1]}
                for label in rule.labels
            ]
        if rule.resource_types and differs("resource_types"):
            out["class"] = [{"system": RESOURCE_TYPES, "code": t} for t in rule.resource_types]
        if (rule.data_from or rule.data_until) and (differs("data_from") or differs("data_until")):
            out["dataPeriod"] = _period(rule.data_from, rule.data_until)
        if rule.resources and differs("resources"):
            out["data"] = [
                {"meaning": "instance", "reference": {"reference": r}} for r in rule.resources
            ]
        if differs("fields"):
            out["extension"] = [{"url": FIELDS_EXTENSION, "valueString": f} for f in rule.fields]
        depth = path.count(".") + 1
        children = sorted(
            (p for p in self.by_path if p.startswith(path + ".") and p.count(".") == depth),
            key=lambda p: int(p.rsplit(".", 1)[1]),
        )
        if children:
            out["provision"] = [self.node(child, facts) for child in children]
        return out

    def consumer(self, consumer: str) -> dict[str, Any]:
        mapped = self.actors.get(consumer)
        if mapped is not None:
            return {"reference": mapped}
        return {"identifier": {"system": RENKEI_CONSUMER, "value": consumer}}

    def purpose(self, code: str) -> dict[str, str]:
        key = self.purposes.get(code)
        if key is not None and "|" in key:
            system, fhir_code = key.split("|", 1)
            return {"system": system, "code": fhir_code}
        return {"system": RENKEI_PURPOSE, "code": code}


def _user(user: str) -> dict[str, Any]:
    if user.startswith(_PERSONS):
        return {"reference": user}
    return {"identifier": {"system": RENKEI_USER, "value": user}}


def _period(start: datetime | None, end: datetime | None) -> dict[str, str]:
    period: dict[str, str] = {}
    if start is not None:
        period["start"] = start.isoformat()
    if end is not None:
        period["end"] = end.isoformat()
    return period

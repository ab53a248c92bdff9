"""Per-field consent of data subjects and the fields a response may release.

A consent lets one consumer (a subsystem, a member, a global group or any consumer) see
named fields of one service for one purpose (or any purpose: ``*``), from ``valid_from``
until ``valid_until`` (open-ended if None), unless revoked; a revocation applies from
``revoked_at`` on.

A consent is a rule: it ``permit``s or ``deny``s, and it may be narrowed by conditions
on the data (resource types, specific resources, security labels, the data's own date)
and on the person the consumer says it acts for (``actor``, from the signed
``X-Road-UserId``). Rules imported from one FHIR Consent share its ``origin`` and carry
their nesting ``depth``: for each resource, the deepest rule that matches decides, a
deny winning a tie (:class:`ResourceGate`). An ``opt-out`` base rule is a permit at depth
0 that deeper rules narrow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal
from uuid import UUID

from certs.identifiers import GlobalGroupId, MemberId, ServiceId, SubsystemId
from policies.declarations import ServiceDeclaration
from policies.errors import ConsentError

__all__ = [
    "ANY_CONSUMER",
    "ANY_PURPOSE",
    "AnyConsumer",
    "Consent",
    "Consumer",
    "FhirCode",
    "ResourceGate",
    "check_consent_fields",
    "parse_consumer",
    "released_fields",
]


@dataclass(frozen=True, slots=True)
class AnyConsumer:
    """Every consumer the access rights let in (a rule that names no recipient)."""

    def __str__(self) -> str:
        return "*"


ANY_CONSUMER: Final = AnyConsumer()
ANY_PURPOSE: Final = "*"
Consumer = SubsystemId | MemberId | GlobalGroupId | AnyConsumer
Decision = Literal["permit", "deny"]

_PURPOSE_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}|\*")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")
_RESOURCE = re.compile(r"[A-Z][A-Za-z0-9]{0,63}/[A-Za-z0-9\-.]{1,64}")
_LABEL = re.compile(r"[^|\s]{1,255}\|[^|\s]{1,64}")
_MAX_SUBJECT = 255


def parse_consumer(text: str) -> Consumer:
    """``*``, ``INSTANCE/GROUP`` (a global group), a member (3 parts) or a subsystem."""
    if text == "*":
        return ANY_CONSUMER
    parts = text.count("/")
    if parts == 1:
        return GlobalGroupId.parse(text)
    if parts == 2:
        return MemberId.parse(text)
    return SubsystemId.parse(text)


def _aware(value: datetime | None, name: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ConsentError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class FhirCode:
    """A row of the operator's FHIR mapping table (``PolicyStore.set_fhir_code``)."""

    kind: str
    code: str
    target: str
    break_glass: bool = False


@dataclass(frozen=True, slots=True)
class Consent:
    """A data subject's consent; see the module docstring."""

    id: UUID
    subject: str
    consumer: Consumer
    service: ServiceId
    purpose: str
    fields: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime | None
    granted_at: datetime
    revoked_at: datetime | None = None
    decision: Decision = "permit"
    depth: int = 0
    resource_types: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # "system|code" of meta.security
    data_from: datetime | None = None
    data_until: datetime | None = None
    actor: str | None = None  # as the consumer states it in X-Road-UserId
    origin: str | None = None  # the FHIR Consent it was imported from
    provision: str | None = None  # where in it: "0", "0.1" (nested provision indices)

    def __post_init__(self) -> None:
        if (
            not self.subject
            or len(self.subject) > _MAX_SUBJECT
            or any(ord(char) < 0x20 or ord(char) == 0x7F for char in self.subject)
        ):
            raise ConsentError("subject must be 1-255 characters without control characters")
        self.check_purpose(self.purpose)
        if not self.fields or len(set(self.fields)) != len(self.fields):
            raise ConsentError("a consent names at least one field, each once")
        for name in ("valid_from", "valid_until", "granted_at", "revoked_at"):
            _aware(getattr(self, name), name)
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ConsentError("valid_until must be later than valid_from")
        self._check_conditions()

    def _check_conditions(self) -> None:
        if self.decision not in ("permit", "deny"):
            raise ConsentError(f"decision {self.decision!r} is neither permit nor deny")
        if not 0 <= self.depth <= 16:
            raise ConsentError("depth must be 0-16")
        checks = (
            (self.resource_types, _RESOURCE_TYPE, "resource type"),
            (self.resources, _RESOURCE, "resource reference"),
            (self.labels, _LABEL, "security label"),
        )
        for values, pattern, what in checks:
            for value in values:
                if not pattern.fullmatch(value):
                    raise ConsentError(f"{what} {value!r} is malformed")
        for name in ("data_from", "data_until"):
            _aware(getattr(self, name), name)
        if (
            self.data_from is not None
            and self.data_until is not None
            and self.data_until <= self.data_from
        ):
            raise ConsentError("data_until must be later than data_from")
        if self.actor is not None and not 0 < len(self.actor) <= 255:
            raise ConsentError("actor must be 1-255 characters")

    @property
    def conditional(self) -> bool:
        """Whether it applies to some resources only (so it decides per resource)."""
        return bool(
            self.resources
            or self.labels
            or self.data_from is not None
            or self.data_until is not None
        )

    @staticmethod
    def check_purpose(purpose: str) -> None:
        if not _PURPOSE_CODE.fullmatch(purpose):
            raise ConsentError(f"purpose code {purpose!r} is malformed")

    def is_active(self, now: datetime) -> bool:
        """In force at ``now``: started, not expired, not revoked."""
        _aware(now, "now")
        if now < self.valid_from:
            return False
        if self.valid_until is not None and now >= self.valid_until:
            return False
        return self.revoked_at is None or now < self.revoked_at


def check_consent_fields(declaration: ServiceDeclaration, fields: Iterable[str]) -> None:
    """Raise ConsentError unless every field is one the service declares."""
    if not declaration.consent_governed:
        raise ConsentError(f"service {declaration.service} is not consent-governed")
    unknown = sorted(set(fields) - set(declaration.fields))
    if unknown:
        raise ConsentError(
            f"fields {', '.join(unknown)} are not declared by service {declaration.service}"
        )


def released_fields(
    declaration: ServiceDeclaration, consents: Iterable[Consent], now: datetime
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fields a response may carry and the ids of the consents that released them.

    Public fields plus the union of the fields of consents active at ``now`` for this
    service; consents for other services and fields the declaration no longer lists are
    ignored, so a stale consent can never widen what is released.
    """
    declared = set(declaration.fields)
    fields = set(declaration.public_fields)
    consent_ids: set[str] = set()
    for consent in consents:
        if consent.service != declaration.service or not consent.is_active(now):
            continue
        if consent.decision == "deny":
            # A deny takes resources away (ResourceGate); it never releases a field.
            consent_ids.add(str(consent.id))
            continue
        granted = declared.intersection(consent.fields)
        if granted:
            fields |= granted
            consent_ids.add(str(consent.id))
    return tuple(sorted(fields)), tuple(sorted(consent_ids))


# Where a resource of these types says when it happened (the data's date for dataPeriod);
# the first element present counts. A type not listed has no date the node trusts.
_DATA_DATE: Final = {
    "AllergyIntolerance": ("recordedDate", "onsetDateTime"),
    "Condition": ("recordedDate", "onsetDateTime"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod.start", "issued"),
    "Encounter": ("period.start",),
    "Immunization": ("occurrenceDateTime",),
    "MedicationRequest": ("authoredOn",),
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
    "Procedure": ("performedDateTime", "performedPeriod.start"),
}


def data_date(resource: dict[str, object], resource_type: str) -> datetime | None:
    """When the resource's data is from (see ``_DATA_DATE``), or None if unknown."""
    for path in _DATA_DATE.get(resource_type, ()):
        value: object = resource
        for step in path.split("."):
            value = value.get(step) if type(value) is dict else None
        if type(value) is str:
            return _fhir_instant(value)
    return None


def _fhir_instant(value: str) -> datetime | None:
    """A FHIR date/dateTime as an aware datetime (a date without zone counts as UTC)."""
    text = value.replace("Z", "+00:00")
    if len(text) == 4:
        text += "-01-01"
    elif len(text) == 7:
        text += "-01"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


def _labels_of(resource: dict[str, object]) -> frozenset[str]:
    meta = resource.get("meta")
    security = meta.get("security") if type(meta) is dict else None
    if type(security) is not list:
        return frozenset()
    return frozenset(
        f"{label.get('system')}|{label.get('code')}" for label in security if type(label) is dict
    )


class ResourceGate:
    """Which resources the rules in force let out (FHIR mode; one per response).

    For each resource the deepest matching rule decides and a deny wins a tie. A resource
    no rule matches keeps the field-level outcome, unless fields were released by rules
    that hold for some resources only: then it is withheld, since those fields were
    not released for it. Under break-glass a deny is overridden and noted.
    """

    __slots__ = ("break_glass", "conditional", "overridden", "rules")

    def __init__(self, rules: Iterable[Consent], *, break_glass: bool = False) -> None:
        self.rules = tuple(rules)
        self.break_glass = break_glass
        self.conditional = any(
            rule.decision == "permit" and rule.conditional for rule in self.rules
        ) and not any(
            rule.decision == "permit" and not rule.conditional and not rule.resource_types
            for rule in self.rules
        )
        self.overridden: set[str] = set()

    def withheld(self, resource: dict[str, object], resource_type: str) -> str | None:
        """None to release, else why the resource is withheld (``denied``/``not-permitted``)."""
        matching = [rule for rule in self.rules if _matches(rule, resource, resource_type)]
        if not matching:
            return "not-permitted" if self.conditional else None
        deepest = max(rule.depth for rule in matching)
        decisive = [rule for rule in matching if rule.depth == deepest]
        denies = [rule for rule in decisive if rule.decision == "deny"]
        if not denies:
            return None
        if self.break_glass:
            self.overridden.update(str(rule.id) for rule in denies)
            return None
        return "denied"


def _matches(rule: Consent, resource: dict[str, object], resource_type: str) -> bool:
    if rule.resource_types and resource_type not in rule.resource_types:
        return False
    if rule.resources and f"{resource_type}/{resource.get('id')}" not in rule.resources:
        return False
    if rule.labels and not _labels_of(resource) & set(rule.labels):
        return False
    if rule.data_from is None and rule.data_until is None:
        return True
    when = data_date(resource, resource_type)
    if when is None:
        # Unknown date: a deny holds (fail closed), a permit does not.
        return rule.decision == "deny"
    if rule.data_from is not None and when < rule.data_from:
        return False
    return rule.data_until is None or when < rule.data_until

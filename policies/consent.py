"""Per-field consent of data subjects and the fields a response may release.

A consent lets one consumer (a subsystem or a global group) see named fields of one
service for one purpose, from ``valid_from`` until ``valid_until`` (open-ended if None),
unless revoked; a revocation applies from ``revoked_at`` on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from certs.identifiers import GlobalGroupId, ServiceId, SubsystemId
from policies.declarations import ServiceDeclaration
from policies.errors import ConsentError

__all__ = ["Consent", "Consumer", "check_consent_fields", "released_fields"]

Consumer = SubsystemId | GlobalGroupId

_PURPOSE_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_MAX_SUBJECT = 255


def _aware(value: datetime | None, name: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ConsentError(f"{name} must be timezone-aware")


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

    def __post_init__(self) -> None:
        if (
            not self.subject
            or len(self.subject) > _MAX_SUBJECT
            or any(ord(char) < 0x20 or ord(char) == 0x7F for char in self.subject)
        ):
            raise ConsentError("subject must be 1-255 characters without control characters")
        if not _PURPOSE_CODE.fullmatch(self.purpose):
            raise ConsentError(f"purpose code {self.purpose!r} is malformed")
        if not self.fields or len(set(self.fields)) != len(self.fields):
            raise ConsentError("a consent names at least one field, each once")
        for name in ("valid_from", "valid_until", "granted_at", "revoked_at"):
            _aware(getattr(self, name), name)
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ConsentError("valid_until must be later than valid_from")

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
        granted = declared.intersection(consent.fields)
        if granted:
            fields |= granted
            consent_ids.add(str(consent.id))
    return tuple(sorted(fields)), tuple(sorted(consent_ids))

"""The consent desk records only consents that can apply."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest

from certs.identifiers import GlobalGroupId, MemberId, ServiceId, SubsystemId
from policies.consent import ANY_CONSUMER, Consumer
from policies.consent_desk import check_consent_request
from policies.declarations import PurposeDeclaration, ServiceDeclaration
from policies.errors import ConsentError

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
CLINIC = SubsystemId.parse("EE/GOV/A/clinic")
LAB = SubsystemId.parse("EE/GOV/L/lab")
UNKNOWN = SubsystemId.parse("EE/GOV/X/nobody")
PARTNERS = GlobalGroupId.parse("EE/partners")
DECLARATION = ServiceDeclaration(
    ServiceId.parse("EE/GOV/B/records/patients"),
    media_types=("application/fhir+json",),
    fields=("Patient.name", "Patient.birthDate", "AllergyIntolerance"),
)
PURPOSES = (
    PurposeDeclaration(CLINIC, "treatment", "Treating the patient"),
    PurposeDeclaration(CLINIC, "research", "Research"),
)
GROUPS: dict[GlobalGroupId, tuple[SubsystemId, ...]] = {PARTNERS: (LAB, CLINIC)}


def check(
    consumer: Consumer = CLINIC,
    purpose: str = "treatment",
    fields: tuple[str, ...] = ("Patient.name",),
    valid_until: datetime | None = None,
    declaration: ServiceDeclaration = DECLARATION,
) -> tuple[tuple[str, ...], str]:
    def members(group: GlobalGroupId) -> Collection[SubsystemId] | None:
        return GROUPS.get(group)

    accepted = check_consent_request(
        declaration=declaration,
        consumer=consumer,
        purpose=purpose,
        fields=fields,
        valid_until=valid_until,
        now=NOW,
        known_subsystem=lambda s: s in (CLINIC, LAB),
        group_members=members,
        purposes=PURPOSES,
    )
    return accepted.fields, accepted.purpose_text


def test_a_consent_that_can_apply_is_accepted_with_its_purpose_text() -> None:
    assert check() == (("Patient.name",), "Treating the patient")
    assert check(valid_until=NOW + timedelta(seconds=1))[0] == ("Patient.name",)
    # A group's purpose is one a member of the group declared.
    assert check(consumer=PARTNERS)[1] == "Treating the patient"


def test_all_declared_fields_is_explicit_and_expanded() -> None:
    assert check(fields=("*",))[0] == DECLARATION.fields


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"consumer": UNKNOWN}, "not a subsystem of the current global configuration"),
        ({"consumer": GlobalGroupId.parse("Organization/f001")}, "not a global group"),
        ({"purpose": "marketing"}, "declared: research, treatment"),
        ({"consumer": LAB}, "declared: none"),
        ({"valid_until": NOW}, "entirely in the past"),
        ({"valid_until": NOW - timedelta(days=1)}, "entirely in the past"),
        ({"fields": ("Patient.telecom",)},
         "declared: Patient.name, Patient.birthDate, AllergyIntolerance (or '*' for all)"),
        ({"fields": ("*", "Patient.name")}, "stands alone"),
        ({"declaration": ServiceDeclaration(
            DECLARATION.service, ("application/json",), ("name",), consent_governed=False)},
         "not consent-governed"),
    ],
)
def test_consents_that_can_never_apply_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConsentError, match=re.escape(message)):
        check(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("consumer", [ANY_CONSUMER, MemberId.parse("EE/GOV/A")])
def test_the_desk_grants_no_member_or_any_consumer_consent(consumer: Consumer) -> None:
    # A member or "any consumer" declares no purposes: only an imported rule may name one.
    with pytest.raises(ConsentError, match="subsystem or a global group"):
        check(consumer=consumer)

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from certs.identifiers import GlobalGroupId, ServiceId, SubsystemId
from policies.consent import Consent, check_consent_fields, released_fields
from policies.declarations import ServiceDeclaration
from policies.errors import ConsentError

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
SERVICE = ServiceId.parse("EE/GOV/B/records/patients")
CLIENT = SubsystemId.parse("EE/GOV/A/clinic")
DECLARATION = ServiceDeclaration(
    SERVICE,
    media_types=("application/fhir+json",),
    fields=("Patient.name", "Patient.birthDate", "Patient.address", "AllergyIntolerance"),
    public_fields=("Patient.name",),
)


def consent(**changes: object) -> Consent:
    values: dict[str, object] = {
        "id": uuid4(),
        "subject": "38001010000",
        "consumer": CLIENT,
        "service": SERVICE,
        "purpose": "treatment",
        "fields": ("Patient.birthDate",),
        "valid_from": NOW - timedelta(days=1),
        "valid_until": NOW + timedelta(days=1),
        "granted_at": NOW - timedelta(days=1),
    }
    values.update(changes)
    return Consent(**values)  # type: ignore[arg-type]


def test_is_active_window_and_revocation() -> None:
    active = consent()
    assert active.is_active(NOW)
    assert not active.is_active(NOW - timedelta(days=2))
    assert not active.is_active(NOW + timedelta(days=1))  # valid_until is exclusive
    assert consent(valid_until=None).is_active(NOW + timedelta(days=3650))
    revoked = consent(revoked_at=NOW - timedelta(seconds=1))
    assert not revoked.is_active(NOW)
    assert revoked.is_active(NOW - timedelta(hours=1))


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": ""},
        {"subject": "a\nb"},
        {"subject": "x" * 256},
        {"purpose": "bad purpose"},
        {"fields": ()},
        {"fields": ("Patient.name", "Patient.name")},
        {"valid_until": NOW - timedelta(days=2)},
        {"valid_from": datetime(2026, 1, 1)},  # naive on purpose
    ],
)
def test_malformed_consents_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ConsentError) as info:
        consent(**changes)
    assert info.value.code == "policies.consent_invalid"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ConsentError):
        consent().is_active(datetime(2026, 5, 1))  # naive


def test_released_fields_are_public_plus_active_consents() -> None:
    first = consent(fields=("Patient.birthDate",))
    second = consent(fields=("AllergyIntolerance",), consumer=GlobalGroupId.parse("EE/hospitals"))
    expired = consent(fields=("Patient.address",), valid_until=NOW - timedelta(hours=1))
    other_service = consent(service=SERVICE.subsystem.service("other"), fields=("Patient.address",))
    fields, ids = released_fields(DECLARATION, [first, second, expired, other_service], NOW)
    assert fields == ("AllergyIntolerance", "Patient.birthDate", "Patient.name")
    assert ids == tuple(sorted([str(first.id), str(second.id)]))


def test_released_fields_ignore_fields_no_longer_declared() -> None:
    stale = consent(fields=("Patient.telecom",))
    assert released_fields(DECLARATION, [stale], NOW) == (("Patient.name",), ())


def test_no_consent_releases_only_public_fields() -> None:
    assert released_fields(DECLARATION, [], NOW) == (("Patient.name",), ())


def test_check_consent_fields() -> None:
    check_consent_fields(DECLARATION, ["Patient.birthDate"])
    with pytest.raises(ConsentError):
        check_consent_fields(DECLARATION, ["Patient.telecom"])
    open_service = ServiceDeclaration(
        SERVICE, media_types=("application/json",), fields=(), consent_governed=False
    )
    with pytest.raises(ConsentError):
        check_consent_fields(open_service, [])

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from certs.identifiers import GlobalGroupId, SubsystemId
from policies.access import AccessRight, LocalGroupRef
from policies.consent import Consent
from policies.declarations import PurposeDeclaration, ServiceDeclaration, SubjectLocator
from policies.errors import (
    AccessDenied,
    AccessRightNotFound,
    ConsentError,
    ConsentNotFound,
    DeclarationError,
)
from policies.store import PolicyStore

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
PROVIDER = SubsystemId.parse("EE/GOV/B/records")
SERVICE = PROVIDER.service("patients")
CLIENT = SubsystemId.parse("EE/GOV/A/clinic")
OTHER = SubsystemId.parse("EE/GOV/C/shop")
GROUP = GlobalGroupId.parse("EE/hospitals")
NONE: frozenset[GlobalGroupId] = frozenset()
DECLARATION = ServiceDeclaration(
    SERVICE,
    media_types=("application/fhir+json",),
    fields=("Patient.name", "Patient.birthDate", "Patient.address", "AllergyIntolerance"),
    public_fields=("Patient.name",),
    subject=SubjectLocator.path("/Patient/{subject}"),
    description="Patient records",
)


async def test_access_rights_round_trip_and_apply_to_next_policy(store: PolicyStore) -> None:
    policy = await store.access_policy()
    with pytest.raises(AccessDenied):
        policy.check_query(CLIENT, NONE, SERVICE, "GET", "/Patient/1")
    right = await store.grant_access(
        AccessRight(SERVICE, CLIENT, method="GET", path="/Patient/*"), now=NOW
    )
    assert right.id is not None
    assert right.granted_at == NOW
    again = await store.grant_access(
        AccessRight(SERVICE, CLIENT, method="GET", path="/Patient/*"), now=NOW
    )
    assert again.id == right.id
    assert await store.list_access() == [right]
    assert await store.list_access(PROVIDER.service("other")) == []
    allowed = (await store.access_policy()).check_query(CLIENT, NONE, SERVICE, "GET", "/Patient/1")
    assert allowed.id == right.id
    await store.revoke_access(right.id)
    with pytest.raises(AccessDenied):
        (await store.access_policy()).check_query(CLIENT, NONE, SERVICE, "GET", "/Patient/1")
    with pytest.raises(AccessRightNotFound):
        await store.revoke_access(right.id)


async def test_grant_access_without_a_time_records_none(store: PolicyStore) -> None:
    right = await store.grant_access(AccessRight(SERVICE, CLIENT))
    assert right.granted_at is None
    assert await store.list_access() == [right]


async def test_global_group_right(store: PolicyStore) -> None:
    await store.grant_access(AccessRight(SERVICE, GROUP), now=NOW)
    policy = await store.access_policy()
    policy.check_query(OTHER, frozenset({GROUP}), SERVICE, "GET", "/")
    with pytest.raises(AccessDenied):
        policy.check_query(OTHER, NONE, SERVICE, "GET", "/")


async def test_local_groups(store: PolicyStore) -> None:
    group = LocalGroupRef(PROVIDER, "partners")
    await store.add_local_group(group, "Partner hospitals")
    await store.add_local_group(group, "Partner hospitals")
    await store.grant_access(AccessRight(SERVICE, group), now=NOW)
    with pytest.raises(AccessDenied):
        (await store.access_policy()).check_query(CLIENT, NONE, SERVICE, "GET", "/")
    await store.add_local_group_member(group, CLIENT)
    await store.add_local_group_member(group, CLIENT)
    (await store.access_policy()).check_query(CLIENT, NONE, SERVICE, "GET", "/")
    assert await store.list_local_groups() == {group: frozenset({CLIENT})}
    await store.set_local_group_members(group, [OTHER])
    policy = await store.access_policy()
    policy.check_query(OTHER, NONE, SERVICE, "GET", "/")
    with pytest.raises(AccessDenied):
        policy.check_query(CLIENT, NONE, SERVICE, "GET", "/")
    await store.remove_local_group_member(group, OTHER)
    assert await store.list_local_groups() == {group: frozenset()}
    with pytest.raises(DeclarationError):
        await store.add_local_group_member(LocalGroupRef(PROVIDER, "missing"), CLIENT)


async def test_service_declarations(store: PolicyStore) -> None:
    assert await store.service_declaration(SERVICE) is None
    await store.declare_service(DECLARATION)
    assert await store.service_declaration(SERVICE) == DECLARATION
    changed = ServiceDeclaration(
        SERVICE,
        media_types=("application/json",),
        fields=("name",),
        consent_governed=False,
        subject_fields=("patient.id",),
        response_headers=("Last-Modified",),
    )
    await store.declare_service(changed)
    assert await store.service_declaration(SERVICE) == changed
    assert await store.list_services() == [changed]
    await store.remove_service_declaration(SERVICE)
    assert await store.list_services() == []


async def test_subject_rules_of_a_fhir_declaration_round_trip(store: PolicyStore) -> None:
    fhir = ServiceDeclaration(
        SERVICE,
        media_types=("application/fhir+json",),
        fields=("Patient.name", "Organization"),
        subject_fields=("Observation.focus", "Observation.subject"),
        impersonal=("Organization",),
    )
    await store.declare_service(fhir)
    assert await store.service_declaration(SERVICE) == fhir


async def test_purposes(store: PolicyStore) -> None:
    purpose = PurposeDeclaration(CLIENT, "treatment", "Treating the patient")
    await store.declare_purpose(purpose)
    assert await store.purpose(CLIENT, "treatment") == purpose
    assert await store.purpose(OTHER, "treatment") is None
    updated = PurposeDeclaration(CLIENT, "treatment", "Treatment and follow-up")
    await store.declare_purpose(updated)
    assert await store.list_purposes() == [updated]
    await store.remove_purpose(CLIENT, "treatment")
    assert await store.list_purposes() == []


async def _grant(store: PolicyStore, **changes: object) -> Consent:
    values: dict[str, object] = {
        "subject": "p1",
        "consumer": CLIENT,
        "service": SERVICE,
        "purpose": "treatment",
        "fields": ("Patient.birthDate", "AllergyIntolerance"),
        "valid_from": NOW - timedelta(days=1),
        "valid_until": NOW + timedelta(days=30),
        "now": NOW - timedelta(days=1),
    }
    values.update(changes)
    return await store.grant_consent(**values)  # type: ignore[arg-type]


async def test_consent_lifecycle(store: PolicyStore) -> None:
    await store.declare_service(DECLARATION)
    consent = await store.grant_consent(
        "p1", CLIENT, SERVICE, "treatment", ("Patient.birthDate",), NOW, None, NOW
    )
    assert await store.consent(consent.id) == consent
    found = await store.active_consents("p1", CLIENT, NONE, SERVICE, "treatment", NOW)
    assert found == [consent]
    for args in [
        ("p2", CLIENT, NONE, SERVICE, "treatment"),
        ("p1", OTHER, NONE, SERVICE, "treatment"),
        ("p1", CLIENT, NONE, SERVICE, "research"),
        ("p1", CLIENT, NONE, PROVIDER.service("other"), "treatment"),
    ]:
        assert await store.active_consents(*args, now=NOW) == []
    assert (
        await store.active_consents(
            "p1", CLIENT, NONE, SERVICE, "treatment", NOW - timedelta(seconds=1)
        )
        == []
    )
    revoked = await store.revoke_consent(consent.id, NOW + timedelta(hours=1))
    assert revoked.revoked_at == NOW + timedelta(hours=1)
    again = await store.revoke_consent(str(consent.id), NOW + timedelta(hours=2))
    assert again.revoked_at == revoked.revoked_at
    later = NOW + timedelta(hours=1)
    assert await store.active_consents("p1", CLIENT, NONE, SERVICE, "treatment", later) == []
    assert await store.list_consents("p1", now=later) == []
    assert await store.list_consents("p1", include_inactive=True, now=later) == [revoked]


async def test_group_consent_and_expiry(store: PolicyStore) -> None:
    await store.declare_service(DECLARATION)
    group_consent = await _grant(store, consumer=GROUP)
    expired = await _grant(store, valid_until=NOW - timedelta(hours=1))
    assert await store.active_consents("p1", CLIENT, NONE, SERVICE, "treatment", NOW) == []
    assert await store.active_consents(
        "p1", CLIENT, frozenset({GROUP}), SERVICE, "treatment", NOW
    ) == [group_consent]
    everything = await store.list_consents(service=SERVICE, include_inactive=True, now=NOW)
    assert {c.id for c in everything} == {group_consent.id, expired.id}


async def test_times_survive_storage_in_utc(store: PolicyStore) -> None:
    await store.declare_service(DECLARATION)
    plus_two = timezone(timedelta(hours=2))
    start = datetime(2026, 5, 1, 14, tzinfo=plus_two)  # 12:00 UTC
    consent = await _grant(store, valid_from=start, now=start)
    stored = await store.consent(consent.id)
    assert stored.valid_from == NOW
    assert stored.valid_from.tzinfo == UTC
    assert await store.active_consents("p1", CLIENT, NONE, SERVICE, "treatment", NOW) == [stored]
    assert (
        await store.active_consents(
            "p1", CLIENT, NONE, SERVICE, "treatment", NOW - timedelta(microseconds=1)
        )
        == []
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"fields": ("Patient.telecom",)},
        {"service": PROVIDER.service("undeclared")},
        {"fields": ()},
        {"valid_until": NOW - timedelta(days=2)},
    ],
)
async def test_invalid_consents_are_refused(store: PolicyStore, changes: dict[str, object]) -> None:
    await store.declare_service(DECLARATION)
    with pytest.raises(ConsentError):
        await _grant(store, **changes)
    assert await store.list_consents(include_inactive=True, now=NOW) == []


async def test_unknown_consent(store: PolicyStore) -> None:
    with pytest.raises(ConsentNotFound) as info:
        await store.revoke_consent(uuid4(), NOW)
    assert info.value.code == "policies.consent_not_found"
    with pytest.raises(ConsentNotFound):
        await store.consent("not-a-uuid")

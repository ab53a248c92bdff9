"""Consent rules and the operator's FHIR mapping table in the store (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certs.identifiers import GlobalGroupId, ServiceId, SubsystemId
from policies.consent import FhirCode
from policies.declarations import ServiceDeclaration
from policies.errors import ConsentError
from policies.fhir_consent import FhirMapping, export_consent, import_consent
from policies.store import PolicyStore

DATA = Path(__file__).parents[2] / "data" / "fhir"
NOW = datetime(2026, 5, 1, tzinfo=UTC)
SERVICE = ServiceId.parse("RENKEI/GOV/HOSPB/records/fhir")
CLINIC = SubsystemId.parse("RENKEI/GOV/HOSPA/clinic")
OTHER = SubsystemId.parse("RENKEI/GOV/HOSPC/ward")
DECLARATION = ServiceDeclaration(
    SERVICE, media_types=("application/fhir+json",), fields=("Patient", "Observation")
)


def _example(name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(
        (DATA / f"Consent-consent-example-{name}.json").read_text()
    )
    return document


async def test_imported_rules_are_stored_and_selected_per_actor(store: PolicyStore) -> None:
    await store.declare_service(DECLARATION)
    mapping = FhirMapping(actors={"Organization/f001": "self"})
    rules = import_consent(
        _example("notThem"), declaration=DECLARATION, mapping=mapping, now=NOW, root_type="deny"
    )
    await store.grant_rules(rules)
    stored = await store.consents_of_origin("consent-example-notThem")
    assert [(r.decision, str(r.consumer), r.actor, r.provision) for r in stored] == [
        ("deny", "*", "Practitioner/f204", "0")
    ]
    found = await store.active_consents("f001", CLINIC, (), SERVICE, "treatment", NOW)
    assert found == []
    found = await store.active_consents(
        "f001", CLINIC, (), SERVICE, "treatment", NOW, actor="Practitioner/f204"
    )
    assert [r.id for r in found] == [rules[0].id]
    # Export of the stored rules imports back to the same rules.
    exported = export_consent(stored, mapping=mapping, now=NOW)
    again = import_consent(exported, declaration=DECLARATION, mapping=mapping, now=NOW)
    assert [(r.decision, r.actor, r.consumer) for r in again] == [
        (r.decision, r.actor, r.consumer) for r in stored
    ]
    assert await store.revoke_origin("consent-example-notThem", NOW) == 1
    assert await store.active_consents(
        "f001", CLINIC, (), SERVICE, "treatment", NOW + timedelta(seconds=1),
        actor="Practitioner/f204",
    ) == []  # fmt: skip


async def test_member_group_and_any_purpose_rules_apply(store: PolicyStore) -> None:
    await store.declare_service(DECLARATION)
    group = GlobalGroupId.parse("RENKEI/hospitals")
    for consumer in ("RENKEI/GOV/HOSPA", str(group)):
        mapping = FhirMapping(actors={"Organization/f001": consumer})
        rules = import_consent(
            _example("notOrg"), declaration=DECLARATION, mapping=mapping, now=NOW
        )
        await store.grant_rules(rules)
    found = await store.active_consents("f001", CLINIC, (group,), SERVICE, "research", NOW)
    assert sorted(str(r.consumer) for r in found) == ["RENKEI/GOV/HOSPA", "RENKEI/hospitals"]
    assert await store.active_consents("f001", OTHER, (), SERVICE, "research", NOW) == []


async def test_rules_of_an_undeclared_field_are_refused_whole(store: PolicyStore) -> None:
    await store.declare_service(DECLARATION)
    rules = import_consent(
        _example("notAuthor"),
        declaration=ServiceDeclaration(
            SERVICE, media_types=("application/fhir+json",), fields=("Patient", "Claim")
        ),
        mapping=FhirMapping(actors={"Organization/f001": "self"}),
        now=NOW,
        root_type="deny",
    )
    with pytest.raises(ConsentError):
        await store.grant_rules(rules)
    assert await store.consents_of_origin("consent-example-notAuthor") == []


async def test_the_mapping_table_base_policy_and_break_glass(store: PolicyStore) -> None:
    reason = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
    await store.set_fhir_code("purpose", f"{reason}|ETREAT", "emergency", break_glass=True)
    await store.set_fhir_code("purpose", f"{reason}|TREAT", "treatment")
    await store.set_fhir_code("actor", "Organization/f001", "self")
    await store.set_fhir_code("base", str(SERVICE), "opt-out")
    assert await store.is_break_glass("emergency")
    assert not await store.is_break_glass("treatment")
    assert await store.is_opt_out(SERVICE)
    assert not await store.is_opt_out(ServiceId.parse("RENKEI/GOV/HOSPB/records/other"))
    await store.set_fhir_code("base", str(SERVICE), "opt-in")
    assert not await store.is_opt_out(SERVICE)
    codes = await store.fhir_codes()
    assert FhirCode("actor", "Organization/f001", "self") in codes
    await store.remove_fhir_code("purpose", f"{reason}|ETREAT")
    assert not await store.is_break_glass("emergency")
    for kind, code, target, glass in [
        ("colour", "x", "y", False),
        ("purpose", "x", "not a code!", False),
        ("actor", "Organization/x", "not/an/id/at/all/really", False),
        ("actor", "Organization/x", "self", True),
        ("base", str(SERVICE), "sometimes", False),
    ]:
        with pytest.raises(ConsentError):
            await store.set_fhir_code(kind, code, target, break_glass=glass)

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certs.identifiers import ServiceId, SubsystemId
from policies.access import AccessRight, LocalGroupRef
from policies.errors import AccessDenied, PolicyFileError
from policies.files import apply_policy_file, load_policy_file
from policies.store import PolicyStore

EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "hospital-b-policy.toml"
NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
PATIENTS = ServiceId.parse("RENKEI/GOV/HOSPB/records/patients")
CLINIC = SubsystemId.parse("RENKEI/GOV/HOSPA/clinic")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file_loads() -> None:
    policy = load_policy_file(EXAMPLE)
    assert [s.service for s in policy.services] == [PATIENTS]
    assert policy.services[0].is_fhir
    assert len(policy.access) == 2
    assert policy.local_groups[0].members == frozenset({CLINIC})
    assert policy.purposes[0].code == "treatment"
    assert policy.named_services == {PATIENTS}


def errors_of(tmp_path: Path, text: str) -> tuple[str, ...]:
    with pytest.raises(PolicyFileError) as info:
        load_policy_file(write(tmp_path, text))
    assert info.value.code == "policies.file_invalid"
    return info.value.errors


def test_every_error_names_file_table_index_and_key(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        """
[[access]]
service = "A/B/C/D/E"
grantee = "A/B/C/D"

[[access]]
service = "A/B/C/D/E"
grantee = "not an id"
method = "get"

[[service]]
id = "A/B/C/D/E"
media_types = ["application/json"]
fields = ["name"]
public_fields = ["address"]
colour = "blue"

[[purpose]]
consumer = "A/B/C/D"
""",
    )
    text = "\n".join(errors)
    source = str(tmp_path / "policy.toml")
    assert all(error.startswith(source) for error in errors)
    assert "[[access]] #2, key 'grantee'" in text
    assert "[[access]] #2, key 'method'" not in text or "method" in text
    assert "[[service]] #1, key 'colour': is not a known key" in text
    assert "[[purpose]] #1, key 'code': is required" in text
    assert "[[purpose]] #1, key 'text': is required" in text
    assert len(errors) >= 4


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("access = 1", "must be an array of tables"),
        ("[policy]\nx = 1", "unknown top-level key 'policy'"),
        ("[[access]]\nservice = 'A/B/C/D/E'\ngrantee = 'A/B/C/D'\npath = 'x'", "key None")
        if False
        else ("[[access]]\nservice = 'A/B/C/D/E'\ngrantee = 'A/B/C/D'\npath = 'x'", "path pattern"),
        ("[[access]]\nservice = 3\ngrantee = 'A/B/C/D'", "key 'service': must be a non-empty"),
        ("[[service]]\nid = 'A/B/C/D/E'\nmedia_types = 'x'\nfields = []", "must be an array"),
        (
            "[[service]]\nid = 'A/B/C/D/E'\nmedia_types = ['application/json']\nfields = ['a']\n"
            "subject = { cookie = 'x' }",
            "key 'subject'",
        ),
        ("[[local_group]]\nprovider = 'A/B/C/D'\ncode = 'g'\nmembers = ['x']", "key 'members'"),
        ("[[purpose]]\nconsumer = 'A/B/C/D'\ncode = 'bad code'\ntext = 't'", "purpose code"),
        (
            "[[access]]\nservice = 'A/B/C/D/E'\ngrantee = 'A/B/C/D'\n"
            "[[access]]\nservice = 'A/B/C/D/E'\ngrantee = 'A/B/C/D'",
            "more than once",
        ),
        ("not toml at all [", "not valid TOML"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in "\n".join(errors_of(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot read"):
        load_policy_file(tmp_path / "absent.toml")


async def test_apply_is_idempotent_and_makes_rights_match(store: PolicyStore) -> None:
    policy = load_policy_file(EXAMPLE)
    stray = await store.grant_access(AccessRight(PATIENTS, CLINIC, method="DELETE"), now=NOW)
    other_service = ServiceId.parse("RENKEI/GOV/HOSPB/records/other")
    untouched = await store.grant_access(AccessRight(other_service, CLINIC), now=NOW)

    report = await apply_policy_file(store, policy, now=NOW)
    assert len(report.granted) == 2
    assert [r.id for r in report.revoked] == [stray.id]
    assert report.services == 1
    assert report.purposes == 1

    second = await apply_policy_file(store, policy, now=NOW + timedelta(hours=1))
    assert (second.granted, second.revoked, second.services, second.purposes) == ([], [], 0, 0)

    assert await store.list_access(other_service) == [untouched]
    assert await store.service_declaration(PATIENTS) == policy.services[0]
    assert await store.purpose(CLINIC, "treatment") == policy.purposes[0]
    partners = LocalGroupRef(PATIENTS.subsystem, "partners")
    assert (await store.list_local_groups())[partners] == frozenset({CLINIC})

    access = await store.access_policy()
    access.check_query(CLINIC, frozenset(), PATIENTS, "GET", "/Patient/7")
    access.check_query(CLINIC, frozenset(), PATIENTS, "GET", "/metadata")
    with pytest.raises(AccessDenied):
        access.check_query(CLINIC, frozenset(), PATIENTS, "DELETE", "/Patient/7")

from __future__ import annotations

import pytest

from certs.identifiers import GlobalGroupId, MemberId, SubsystemId
from policies.access import AccessPolicy, AccessRight, LocalGroupRef, parse_grantee
from policies.errors import AccessDenied, DeclarationError

PROVIDER = SubsystemId.parse("EE/GOV/B/records")
SERVICE = PROVIDER.service("patients")
OTHER_SERVICE = PROVIDER.service("feeds")
CLIENT = SubsystemId.parse("EE/GOV/A/clinic")
STRANGER = SubsystemId.parse("EE/GOV/C/shop")
GROUP = GlobalGroupId.parse("EE/hospitals")
NONE: frozenset[GlobalGroupId] = frozenset()


def policy(
    *rights: AccessRight, groups: dict[LocalGroupRef, frozenset[SubsystemId]] | None = None
) -> AccessPolicy:
    return AccessPolicy(rights, groups or {})


def test_empty_policy_denies_everything() -> None:
    with pytest.raises(AccessDenied) as info:
        policy().check_query(CLIENT, NONE, SERVICE, "GET", "/")
    assert info.value.code == "server.serverproxy.access_denied"


def test_grant_to_subsystem_allows_only_that_subsystem() -> None:
    right = AccessRight(SERVICE, CLIENT)
    rules = policy(right)
    assert rules.check_query(CLIENT, NONE, SERVICE, "GET", "/Patient/1") is right
    with pytest.raises(AccessDenied):
        rules.check_query(STRANGER, NONE, SERVICE, "GET", "/Patient/1")
    with pytest.raises(AccessDenied):
        rules.check_query(CLIENT, NONE, OTHER_SERVICE, "GET", "/Patient/1")


def test_a_member_and_its_subsystems_are_different_clients() -> None:
    # X-Road: a member-level client is the member itself; a right for the member is
    # not a right for its subsystems, nor the other way round.
    member = CLIENT.member
    for_member = AccessRight(SERVICE, member)
    assert policy(for_member).check_query(member, NONE, SERVICE, "GET", "/x") is for_member
    with pytest.raises(AccessDenied):
        policy(for_member).check_query(CLIENT, NONE, SERVICE, "GET", "/x")
    with pytest.raises(AccessDenied):
        policy(AccessRight(SERVICE, CLIENT)).check_query(member, NONE, SERVICE, "GET", "/x")
    with pytest.raises(AccessDenied):
        policy(for_member).check_query(STRANGER.member, NONE, SERVICE, "GET", "/x")


def test_grant_to_global_group_needs_membership() -> None:
    rules = policy(AccessRight(SERVICE, GROUP))
    rules.check_query(STRANGER, frozenset({GROUP}), SERVICE, "GET", "/")
    with pytest.raises(AccessDenied):
        rules.check_query(
            STRANGER, frozenset({GlobalGroupId.parse("EE/other")}), SERVICE, "GET", "/"
        )


def test_grant_to_local_group_needs_membership() -> None:
    ref = LocalGroupRef(PROVIDER, "partners")
    rules = policy(AccessRight(SERVICE, ref), groups={ref: frozenset({CLIENT})})
    rules.check_query(CLIENT, NONE, SERVICE, "POST", "/x")
    with pytest.raises(AccessDenied):
        rules.check_query(STRANGER, NONE, SERVICE, "POST", "/x")


def test_local_group_without_members_denies() -> None:
    ref = LocalGroupRef(PROVIDER, "partners")
    with pytest.raises(AccessDenied):
        policy(AccessRight(SERVICE, ref)).check_query(CLIENT, NONE, SERVICE, "GET", "/")


def test_local_group_of_another_provider_is_refused() -> None:
    with pytest.raises(DeclarationError):
        AccessRight(SERVICE, LocalGroupRef(CLIENT, "partners"))


def test_method_restriction() -> None:
    rules = policy(AccessRight(SERVICE, CLIENT, method="GET"))
    rules.check_query(CLIENT, NONE, SERVICE, "GET", "/a")
    with pytest.raises(AccessDenied):
        rules.check_query(CLIENT, NONE, SERVICE, "DELETE", "/a")
    with pytest.raises(AccessDenied):
        rules.check_query(CLIENT, NONE, SERVICE, "get", "/a")


@pytest.mark.parametrize(
    ("pattern", "path", "allowed"),
    [
        ("*", "", True),
        ("*", "/any/thing/at/all", True),
        ("**", "/any/thing", True),
        ("**", "", True),
        ("/Patient/*", "/Patient/123", True),
        ("/Patient/*", "/Patient/", False),
        ("/Patient/*", "/Patient", False),
        ("/Patient/*", "/Patient/1/_history", False),
        ("/Patient/*", "/Observation/1", False),
        ("/Patient/*", "/patient/1", False),
        ("/feeds/**", "/feeds", True),
        ("/feeds/**", "/feeds/a/b/c", True),
        ("/feeds/**", "/feedsx/a", False),
        ("/a/**/z", "/a/z", True),
        ("/a/**/z", "/a/b/c/z", True),
        ("/a/**/z", "/a/b/c/y", False),
        ("/Patient/*", "/Patient/%31", True),
        ("/Patient/*", "/Patient/a%2Fb", False),
        ("/Patient/*", "/Patient/..", False),
        ("/Patient/*", "/Patient/%2e%2e", False),
        ("/Patient/*", "/Patient/%ff", False),
        ("/Patient/*", "/Patient/1?x=1", False),
        ("/Patient/*", "Patient/1", False),
        ("/Patient/*", "/Patient/%0a", False),
        ("/a b/*", "/a%20b/1", True),
        ("/a.c/*", "/abc/1", False),
        ("/", "/", True),
        ("/", "/x", False),
    ],
)
def test_path_patterns(pattern: str, path: str, allowed: bool) -> None:
    rules = policy(AccessRight(SERVICE, CLIENT, path=pattern))
    if allowed:
        rules.check_query(CLIENT, NONE, SERVICE, "GET", path)
    else:
        with pytest.raises(AccessDenied):
            rules.check_query(CLIENT, NONE, SERVICE, "GET", path)


@pytest.mark.parametrize(
    "path",
    [
        "/open/..;/admin",  # a servlet backend reads /admin
        "/open/%2e%2e;/admin",
        "/open/x;y",
        "/open/%2e%2e%3B/admin",
        "/open/x%3By",
        "/open/;x/y",
    ],
)
def test_semicolons_are_denied_without_path_parameters(path: str) -> None:
    rules = policy(AccessRight(SERVICE, CLIENT, method="GET", path="/open/**"))
    with pytest.raises(AccessDenied):
        rules.check_query(CLIENT, NONE, SERVICE, "GET", path)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/open/x;v=1", True),
        ("/open/x;v=1/y;z", True),
        ("/open/..;/admin", False),
        ("/open/%2e%2e;/admin", False),
        ("/open/.;x/admin", False),
        ("/open/;x/admin", False),
        ("/open/x%3Bv=1", False),
        ("/admin;/open/x", False),
    ],
)
def test_path_parameters_are_cut_off_before_matching(path: str, allowed: bool) -> None:
    """Where the service uses ``;parameters``, rights see the path the backend routes on."""
    rules = policy(AccessRight(SERVICE, CLIENT, method="GET", path="/open/**"))
    if allowed:
        rules.check_query(CLIENT, NONE, SERVICE, "GET", path, path_parameters=True)
    else:
        with pytest.raises(AccessDenied):
            rules.check_query(CLIENT, NONE, SERVICE, "GET", path, path_parameters=True)


@pytest.mark.parametrize(
    "pattern", ["Patient/*", "/Pat*", "/a//b", "/a/../b", "/a/./b", "", "/a/\n"]
)
def test_malformed_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(DeclarationError) as info:
        AccessRight(SERVICE, CLIENT, path=pattern)
    assert info.value.code == "policies.declaration_invalid"


@pytest.mark.parametrize("method", ["get", "", "GET POST", "G*"])
def test_malformed_methods_are_refused(method: str) -> None:
    with pytest.raises(DeclarationError):
        AccessRight(SERVICE, CLIENT, method=method)


def test_first_matching_right_is_returned_among_several() -> None:
    narrow = AccessRight(SERVICE, CLIENT, method="GET", path="/Patient/*", id="r1")
    wide = AccessRight(SERVICE, GROUP, id="r2")
    rules = policy(narrow, wide)
    assert rules.check_query(CLIENT, NONE, SERVICE, "GET", "/Patient/7").id == "r1"
    assert rules.check_query(CLIENT, frozenset({GROUP}), SERVICE, "PUT", "/x").id == "r2"
    with pytest.raises(AccessDenied):
        rules.check_query(CLIENT, NONE, SERVICE, "PUT", "/x")


def test_allowed_services_lists_only_the_providers_services_for_this_client() -> None:
    foreign = SubsystemId.parse("EE/GOV/Z/other").service("svc")
    rules = policy(
        AccessRight(SERVICE, CLIENT, path="/Patient/*"),
        AccessRight(SERVICE, CLIENT, method="POST"),
        AccessRight(OTHER_SERVICE, GROUP),
        AccessRight(foreign, CLIENT),
    )
    assert rules.allowed_services(CLIENT, NONE, PROVIDER) == [SERVICE]
    assert rules.allowed_services(CLIENT, frozenset({GROUP}), PROVIDER) == sorted(
        [SERVICE, OTHER_SERVICE]
    )
    assert rules.allowed_services(STRANGER, NONE, PROVIDER) == []
    assert len(rules.allowed_rights(CLIENT, NONE, PROVIDER)) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("EE/GOV/A/clinic", CLIENT),
        ("EE/GOV/A", MemberId.parse("EE/GOV/A")),  # a member as a client (PR-REST §4.1)
        ("EE/hospitals", GROUP),
        ("local:EE/GOV/B/records/partners", LocalGroupRef(PROVIDER, "partners")),
    ],
)
def test_parse_grantee_round_trips(text: str, expected: object) -> None:
    assert parse_grantee(text) == expected
    assert str(parse_grantee(text)) == text


@pytest.mark.parametrize(
    "text", ["", "EE", "EE/GOV/A/b/c/d", "EE/GOV/A b", "local:EE/GOV/B/partners", "EE/a b",
             "local:x"]
)
def test_parse_grantee_rejects_malformed(text: str) -> None:
    with pytest.raises(DeclarationError):
        parse_grantee(text)

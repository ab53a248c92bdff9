"""Identifier parsing: strict alphabet, part counts, lengths, immutability, round trips."""

from __future__ import annotations

import dataclasses

import pytest

from certs.identifiers import (
    GlobalGroupId,
    IdentifierError,
    MemberId,
    NodeId,
    ServiceId,
    SubsystemId,
    check_instance,
)

ALLOWED_PUNCTUATION = "'()+,-.="  # plus '?', tested separately below

IDENTIFIER_TYPES: list[tuple[type[object], int]] = [
    (GlobalGroupId, 2),
    (MemberId, 3),
    (SubsystemId, 4),
    (NodeId, 4),
    (ServiceId, 5),
]


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (MemberId, "EE/GOV/70000001"),
        (SubsystemId, "EE/GOV/70000001/registry"),
        (ServiceId, "EE/GOV/70000001/registry/getPatient"),
        (NodeId, "EE/GOV/70000001/node1"),
        (GlobalGroupId, "EE/hospitals"),
        (MemberId, "FI-TEST/COM/0123456-7"),
        (MemberId, "a/b/c"),
        (MemberId, "EE/GOV/A'(x)+y,z-.=?"),
    ],
)
def test_parse_round_trips(kind: type[MemberId], text: str) -> None:
    identifier = kind.parse(text)
    assert str(identifier) == text
    assert kind.parse(str(identifier)) == identifier


def test_parts_are_named() -> None:
    service = ServiceId.parse("EE/GOV/123/sub/svc")
    assert service.subsystem == SubsystemId("EE", "GOV", "123", "sub")
    assert service.member == MemberId("EE", "GOV", "123")
    node = NodeId.parse("EE/GOV/123/node")
    assert node.member == MemberId("EE", "GOV", "123")
    assert node.node_code == "node"
    assert MemberId("EE", "GOV", "123").node("node") == node
    assert MemberId("EE", "GOV", "123").subsystem("sub").service("svc") == service


@pytest.mark.parametrize(("kind", "count"), IDENTIFIER_TYPES)
def test_wrong_part_count_is_rejected(kind: type[MemberId], count: int) -> None:
    for wrong in (count - 1, count + 1, 1):
        if wrong == count:
            continue
        with pytest.raises(IdentifierError, match=f"{count} parts"):
            kind.parse("/".join(["x"] * wrong))


@pytest.mark.parametrize("text", ["", "/", "EE//123", "/GOV/123", "EE/GOV/", "EE/GOV/123/"])
def test_empty_parts_are_rejected(text: str) -> None:
    with pytest.raises(IdentifierError):
        MemberId.parse(text)


def test_part_length_limit() -> None:
    assert MemberId.parse(f"EE/GOV/{'x' * 255}").member_code == "x" * 255
    with pytest.raises(IdentifierError, match="longer than 255"):
        MemberId.parse(f"EE/GOV/{'x' * 256}")


@pytest.mark.parametrize(
    "bad",
    [
        " ",  # whitespace
        "\t",
        "\n",
        "\x00",  # control characters
        "\x7f",
        "_",  # punctuation outside the allowed set
        "*",
        ":",
        ";",
        "@",
        "#",
        "%",
        "&",
        '"',
        "\\",
        "<",
        "!",
        "é",  # non-ASCII letters and digits
        "٣",
        "\uff21",  # fullwidth A
        "\u200b",  # zero-width space
    ],
)
def test_forbidden_characters_are_rejected_not_cleaned(bad: str) -> None:
    with pytest.raises(IdentifierError, match="outside"):
        MemberId.parse(f"EE/GOV/12{bad}3")
    with pytest.raises(IdentifierError):
        MemberId("EE", "GOV", f"12{bad}3")


@pytest.mark.parametrize("char", [*ALLOWED_PUNCTUATION, "?"])
def test_every_allowed_punctuation_mark_is_accepted(char: str) -> None:
    assert MemberId.parse(f"EE/GOV/a{char}b").member_code == f"a{char}b"


def test_non_string_is_rejected() -> None:
    with pytest.raises(IdentifierError, match="string"):
        MemberId.parse(123)  # type: ignore[arg-type]


def test_constructor_validates_like_parse() -> None:
    with pytest.raises(IdentifierError):
        NodeId("EE", "GOV", "123", "a/b")
    with pytest.raises(IdentifierError):
        ServiceId("EE", "GOV", "123", "sub", "")


def test_identifiers_are_immutable_and_hashable() -> None:
    member = MemberId.parse("EE/GOV/123")
    with pytest.raises(dataclasses.FrozenInstanceError):
        member.member_code = "456"  # type: ignore[misc]
    assert {member, MemberId("EE", "GOV", "123")} == {member}


def test_kinds_are_distinct() -> None:
    node: object = NodeId.parse("EE/GOV/123/x")
    assert node != SubsystemId.parse("EE/GOV/123/x")


def test_error_code() -> None:
    assert IdentifierError.code == "client.invalid_identifier"
    assert issubclass(IdentifierError, ValueError)


def test_check_instance() -> None:
    check_instance("EE")
    for bad in ("", "EE/GOV", "E E", "x" * 256):
        with pytest.raises(IdentifierError):
            check_instance(bad)

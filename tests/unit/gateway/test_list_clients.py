"""listClients (PR-META §2): the spec's own Annex C.1 examples, XML by default, JSON on request."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from certs.identifiers import MemberId, SubsystemId
from gateway.list_clients import list_clients, list_clients_xml, wants_json
from member_registry.globalconf import GlobalConf, Member, Settings

VECTORS = Path(__file__).parents[2] / "vectors" / "xroad"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SUB = SubsystemId.parse("AA/ENT/CLIENT1/sub")


def _conf() -> GlobalConf:
    """The federation of PR-META Annex C.1."""
    return GlobalConf(
        instance="AA",
        version=1,
        generated_at=NOW,
        expires_at=NOW + timedelta(minutes=10),
        settings=Settings(),
        trusted_cas=(),
        tsas=(),
        members=(
            Member(MemberId.parse("AA/GOV/TS1OWNER"), "TS1 Owner", ()),
            Member(MemberId.parse("AA/GOV/TS2OWNER"), "TS2 Owner", ()),
            Member(MemberId.parse("AA/ENT/CLIENT1"), "Client One", (SUB,),
                   {SUB: "Client One Sub"}),
        ),
        nodes=(),
        global_groups=(),
    )


def _key(entry: dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True)


def test_json_answer_is_annex_c1s_json_example() -> None:
    expected = json.loads((VECTORS / "pr-meta_c1_listclients.json").read_text("utf-8"))
    answer = list_clients(_conf())
    # Same entries, field by field; the spec does not fix their order.
    assert sorted(map(_key, answer["member"])) == sorted(map(_key, expected["member"]))


def _xml_entries(document: bytes) -> list[tuple[tuple[str, str], ...]]:
    """Each member element as (qualified tag or attribute, text) pairs, in document order."""
    root = ElementTree.fromstring(document)
    assert root.tag == "{http://x-road.eu/xsd/xroad.xsd}clientList"
    entries = []
    for member in root:
        pairs: list[tuple[str, str]] = []
        for element in member.iter():
            pairs.extend((f"{element.tag}@{name}", value) for name, value in element.attrib.items())
            if element.text and element.text.strip():
                pairs.append((element.tag, element.text.strip()))
        entries.append(tuple(pairs))
    return entries


def test_xml_answer_is_annex_c1s_xml_example() -> None:
    expected = _xml_entries((VECTORS / "pr-meta_c1_listclients.xml").read_bytes())
    document = list_clients_xml(_conf())
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert sorted(_xml_entries(document)) == sorted(expected)


def test_another_instance_is_listed_empty_and_blank_means_this_one() -> None:
    assert list_clients(_conf(), "BB") == {"member": []}
    assert list_clients(_conf(), None) == list_clients(_conf(), "AA")
    assert _xml_entries(list_clients_xml(_conf(), "BB")) == []


def test_a_subsystem_without_a_name_has_no_subsystem_name() -> None:
    conf = _conf()
    unnamed = Member(MemberId.parse("AA/ENT/CLIENT1"), "Client One", (SUB,))
    plain = GlobalConf(
        instance=conf.instance, version=1, generated_at=NOW, expires_at=conf.expires_at,
        settings=conf.settings, trusted_cas=(), tsas=(), members=(unnamed,), nodes=(),
        global_groups=(),
    )
    entries = list_clients(plain)["member"]
    assert [sorted(entry) for entry in entries] == [["id", "name"], ["id", "name"]]
    assert b"subsystemName" not in list_clients_xml(plain)


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        ([], False),
        (["*/*"], False),
        (["text/xml"], False),
        (["application/json"], True),
        (["Application/JSON; charset=utf-8"], True),
        (["text/xml, application/json;q=0.1"], True),  # X-Road ignores q, and so do we
        (["text/html", "application/json"], True),
        (["application/jsonx"], False),
        (["application/problem+json"], False),
    ],
)
def test_json_only_when_accept_names_application_json(
    accept: list[str], json_wanted: bool
) -> None:
    assert wants_json(accept) is json_wanted

"""The ``listClients`` metaservice (PR-META §2, PR-MREST §2), answered by the consumer node.

``GET /listClients[?xRoadInstance=X]`` on the client port lists every member and
subsystem of the instance from the global configuration. As X-Road does, the answer is
``text/xml`` (the ``clientList`` element of PR-META Annex A) unless the ``Accept``
header names ``application/json`` (media-type parameters and ``q`` are ignored, as
X-Road ignores them); then it is the JSON of PR-META Annex B. A blank ``xRoadInstance``
means this node's instance; a node knows only its own instance's configuration, so
another instance's list is empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree

from certs.identifiers import MemberId, SubsystemId
from member_registry.globalconf import GlobalConf

__all__ = [
    "ID_NAMESPACE",
    "XROAD_NAMESPACE",
    "list_clients",
    "list_clients_xml",
    "wants_json",
]

XROAD_NAMESPACE = "http://x-road.eu/xsd/xroad.xsd"
ID_NAMESPACE = "http://x-road.eu/xsd/identifiers"
_JSON = "application/json"


def wants_json(accept: Iterable[str]) -> bool:
    """True when any ``Accept`` value lists ``application/json`` (X-Road's own test)."""
    return any(
        media_range.split(";", 1)[0].strip().lower() == _JSON
        for value in accept
        for media_range in value.split(",")
    )


def _entries(
    conf: GlobalConf, instance: str | None
) -> list[tuple[MemberId | SubsystemId, str, str | None]]:
    wanted = instance or conf.instance
    entries: list[tuple[MemberId | SubsystemId, str, str | None]] = []
    for member in sorted(conf.members, key=lambda m: str(m.id)):
        if member.id.instance != wanted:
            continue
        entries.append((member.id, member.name, None))
        for subsystem in sorted(member.subsystems, key=str):
            entries.append((subsystem, member.name, member.subsystem_names.get(subsystem)))
    return entries


def list_clients(conf: GlobalConf, instance: str | None = None) -> dict[str, Any]:
    """Every member and subsystem of ``instance`` (default: this one), as JSON."""
    listed: list[dict[str, Any]] = []
    for client, name, subsystem_name in _entries(conf, instance):
        identifier: dict[str, str] = {
            "member_class": client.member_class,
            "member_code": client.member_code,
        }
        if isinstance(client, SubsystemId):
            identifier["subsystem_code"] = client.subsystem_code
        identifier["object_type"] = "SUBSYSTEM" if isinstance(client, SubsystemId) else "MEMBER"
        identifier["xroad_instance"] = client.instance
        entry: dict[str, Any] = {"id": identifier, "name": name}
        if subsystem_name is not None:
            entry["subsystem_name"] = subsystem_name
        listed.append(entry)
    return {"member": listed}


def list_clients_xml(conf: GlobalConf, instance: str | None = None) -> bytes:
    """The same list as PR-META Annex A's ``clientList`` element (UTF-8, with declaration)."""
    xroad, ids = f"{{{XROAD_NAMESPACE}}}", f"{{{ID_NAMESPACE}}}"
    root = ElementTree.Element(f"{xroad}clientList")
    for client, name, subsystem_name in _entries(conf, instance):
        member = ElementTree.SubElement(root, f"{xroad}member")
        object_type = "SUBSYSTEM" if isinstance(client, SubsystemId) else "MEMBER"
        identifier = ElementTree.SubElement(
            member, f"{xroad}id", {f"{ids}objectType": object_type}
        )
        ElementTree.SubElement(identifier, f"{ids}xRoadInstance").text = client.instance
        ElementTree.SubElement(identifier, f"{ids}memberClass").text = client.member_class
        ElementTree.SubElement(identifier, f"{ids}memberCode").text = client.member_code
        if isinstance(client, SubsystemId):
            ElementTree.SubElement(identifier, f"{ids}subsystemCode").text = (
                client.subsystem_code
            )
        ElementTree.SubElement(member, f"{xroad}name").text = name
        if subsystem_name is not None:
            ElementTree.SubElement(member, f"{xroad}subsystemName").text = subsystem_name
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document

"""What a sandbox federation consists of, read from TOML or the built-in default."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from certs.identifiers import (
    GlobalGroupId,
    IdentifierError,
    MemberId,
    NodeId,
    ServiceId,
    SubsystemId,
)

__all__ = [
    "ConsentSpec",
    "DescriptionError",
    "GroupSpec",
    "MemberSpec",
    "NodeSpec",
    "SandboxDescription",
    "ServiceSpec",
    "default_description",
    "load_description",
]


class DescriptionError(ValueError):
    code = "sandbox.description_invalid"


@dataclass(frozen=True)
class MemberSpec:
    id: MemberId
    name: str
    subsystems: tuple[SubsystemId, ...]
    # Subsystem code -> display name, for those that have one.
    subsystem_names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeSpec:
    id: NodeId
    subsystems: tuple[SubsystemId, ...]

    @property
    def slug(self) -> str:
        return f"{self.id.member_code}-{self.id.node_code}".lower()


@dataclass(frozen=True)
class GroupSpec:
    id: GlobalGroupId
    description: str
    members: tuple[SubsystemId, ...]


@dataclass(frozen=True)
class ServiceSpec:
    id: ServiceId
    backend: str  # "fhir", "gtfs", "echo" (sample backends) or an http(s) URL
    allowed: tuple[str, ...]
    consent_governed: bool = False
    description: str = ""
    declaration: dict[str, Any] | None = None


@dataclass(frozen=True)
class ConsentSpec:
    subject: str
    consumer: str
    service: ServiceId
    purpose: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class SandboxDescription:
    instance: str
    members: tuple[MemberSpec, ...]
    nodes: tuple[NodeSpec, ...]
    groups: tuple[GroupSpec, ...]
    services: tuple[ServiceSpec, ...]
    purposes: tuple[tuple[SubsystemId, str, str], ...] = ()
    consents: tuple[ConsentSpec, ...] = ()
    # Registry settings overriding its defaults, e.g. {"ocsp_freshness_s": 20}
    settings: dict[str, int] = field(default_factory=dict)

    def node_of(self, subsystem: SubsystemId) -> NodeSpec:
        for node in self.nodes:
            if subsystem in node.subsystems:
                return node
        raise DescriptionError(f"no node hosts {subsystem}")

    def members_on(self, node: NodeSpec) -> tuple[MemberId, ...]:
        """Members whose sign keys the node holds: those of its subsystems."""
        seen: list[MemberId] = []
        for subsystem in node.subsystems:
            if subsystem.member not in seen:
                seen.append(subsystem.member)
        return tuple(seen)


def _ids(values: Any, kind: type[Any], where: str) -> tuple[Any, ...]:
    if not isinstance(values, list):
        raise DescriptionError(f"{where}: expected a list")
    try:
        return tuple(kind.parse(str(v)) for v in values)
    except IdentifierError as exc:
        raise DescriptionError(f"{where}: {exc}") from exc


def _one(value: Any, kind: type[Any], where: str) -> Any:
    try:
        return kind.parse(str(value))
    except IdentifierError as exc:
        raise DescriptionError(f"{where}: {exc}") from exc


def parse_description(data: dict[str, Any]) -> SandboxDescription:
    try:
        instance = str(data["instance"])
        members = tuple(
            MemberSpec(
                id=_one(m["id"], MemberId, f"member[{i}].id"),
                name=str(m.get("name", m["id"])),
                subsystems=_ids(m.get("subsystems", []), SubsystemId, f"member[{i}].subsystems"),
                subsystem_names={
                    str(code): str(name) for code, name in m.get("subsystem_names", {}).items()
                },
            )
            for i, m in enumerate(data.get("member", []))
        )
        nodes = tuple(
            NodeSpec(
                id=_one(n["id"], NodeId, f"node[{i}].id"),
                subsystems=_ids(n.get("subsystems", []), SubsystemId, f"node[{i}].subsystems"),
            )
            for i, n in enumerate(data.get("node", []))
        )
        groups = tuple(
            GroupSpec(
                id=_one(g["id"], GlobalGroupId, f"group[{i}].id"),
                description=str(g.get("description", "")),
                members=_ids(g.get("members", []), SubsystemId, f"group[{i}].members"),
            )
            for i, g in enumerate(data.get("group", []))
        )
        services = tuple(
            ServiceSpec(
                id=_one(s["id"], ServiceId, f"service[{i}].id"),
                backend=str(s["backend"]),
                allowed=tuple(str(a) for a in s.get("allowed", [])),
                consent_governed=bool(s.get("consent_governed", False)),
                description=str(s.get("description", "")),
                declaration=dict(s["declaration"]) if "declaration" in s else None,
            )
            for i, s in enumerate(data.get("service", []))
        )
        purposes = tuple(
            (
                _one(p["consumer"], SubsystemId, f"purpose[{i}].consumer"),
                str(p["code"]),
                str(p.get("text", p["code"])),
            )
            for i, p in enumerate(data.get("purpose", []))
        )
        consents = tuple(
            ConsentSpec(
                subject=str(c["subject"]),
                consumer=str(c["consumer"]),
                service=_one(c["service"], ServiceId, f"consent[{i}].service"),
                purpose=str(c["purpose"]),
                fields=tuple(str(f) for f in c["fields"]),
            )
            for i, c in enumerate(data.get("consent", []))
        )
    except KeyError as exc:
        raise DescriptionError(f"missing key {exc.args[0]!r}") from exc
    settings = data.get("settings", {})
    allowed = {"validity_s", "refresh_interval_s", "ocsp_freshness_s", "timestamping_interval_s"}
    if not isinstance(settings, dict) or not set(settings) <= allowed:
        raise DescriptionError(f"[settings] may only set {', '.join(sorted(allowed))}")
    if not all(isinstance(v, int) and v > 0 for v in settings.values()):
        raise DescriptionError("[settings] values must be positive integers")
    description = SandboxDescription(
        instance, members, nodes, groups, services, purposes, consents, dict(settings)
    )
    for service in services:
        description.node_of(service.id.subsystem)
    for member in members:
        if member.id.instance != instance:
            raise DescriptionError(f"member {member.id} is not in instance {instance}")
    return description


def load_description(path: Path) -> SandboxDescription:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DescriptionError(f"{path}: {exc}") from exc
    return parse_description(data)


def default_description() -> SandboxDescription:
    text = resources.files("gateway.sandbox").joinpath("default.toml").read_text("utf-8")
    return parse_description(tomllib.loads(text))

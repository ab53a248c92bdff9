"""The global configuration (``renkei-globalconf/1``): the registry's signed view of the federation.

The dataclasses are immutable and check their own consistency when built, so a
``GlobalConf`` that exists is one a node may rely on: every hosted or grouped subsystem
belongs to a listed member, identifiers belong to the instance, fingerprints are unique.
``from_json_dict`` is strict: unknown or missing keys, wrong types and bad identifiers
raise ``GlobalConfMalformed``. Lookups used per request are precomputed once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from cryptography import x509

from certs.identifiers import (
    ClientId,
    GlobalGroupId,
    IdentifierError,
    MemberId,
    NodeId,
    SubsystemId,
)
from member_registry._certificates import (
    certificate_to_pem,
    is_fingerprint,
)
from member_registry._strict_json import (
    FormatError,
    format_time,
    parse_time,
    read_certificate,
    read_int,
    read_list,
    read_object,
    read_str,
    read_url,
)
from member_registry.errors import GlobalConfMalformed

__all__ = [
    "FORMAT",
    "GlobalConf",
    "GlobalGroup",
    "Member",
    "Node",
    "Settings",
    "TrustedCa",
    "Tsa",
]

FORMAT = "renkei-globalconf/1"
_MAX_PORT = 65535
_Id = TypeVar("_Id", MemberId, NodeId, GlobalGroupId, SubsystemId)


@dataclass(frozen=True)
class Settings:
    """Federation-wide timing settings, in seconds."""

    refresh_interval_s: int = 60
    validity_s: int = 600
    ocsp_freshness_s: int = 3600
    timestamping_interval_s: int = 60

    def __post_init__(self) -> None:
        for name in ("refresh_interval_s", "validity_s", "ocsp_freshness_s",
                     "timestamping_interval_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise GlobalConfMalformed(f"settings.{name} must be a positive integer")

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "refresh_interval_s": self.refresh_interval_s,
            "validity_s": self.validity_s,
            "ocsp_freshness_s": self.ocsp_freshness_s,
            "timestamping_interval_s": self.timestamping_interval_s,
        }

    @classmethod
    def from_json_dict(cls, value: object, where: str = "settings") -> Settings:
        names = ("refresh_interval_s", "validity_s", "ocsp_freshness_s",
                 "timestamping_interval_s")
        d = read_object(value, where, names)
        return cls(**{name: read_int(d[name], f"{where}.{name}", minimum=1) for name in names})


@dataclass(frozen=True)
class TrustedCa:
    """A certification authority whose certificates nodes accept, with its OCSP responders."""

    certificate: x509.Certificate
    ocsp_urls: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {"certificate": certificate_to_pem(self.certificate),
                "ocsp_urls": list(self.ocsp_urls)}

    @classmethod
    def from_json_dict(cls, value: object, where: str) -> TrustedCa:
        d = read_object(value, where, ("certificate", "ocsp_urls"))
        return cls(
            certificate=read_certificate(d["certificate"], f"{where}.certificate"),
            ocsp_urls=read_list(d["ocsp_urls"], f"{where}.ocsp_urls", read_url),
        )


@dataclass(frozen=True)
class Tsa:
    """A time-stamping authority (RFC 3161)."""

    name: str
    url: str
    certificate: x509.Certificate

    def to_json_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url,
                "certificate": certificate_to_pem(self.certificate)}

    @classmethod
    def from_json_dict(cls, value: object, where: str) -> Tsa:
        d = read_object(value, where, ("name", "url", "certificate"))
        return cls(
            name=read_str(d["name"], f"{where}.name"),
            url=read_url(d["url"], f"{where}.url"),
            certificate=read_certificate(d["certificate"], f"{where}.certificate"),
        )


@dataclass(frozen=True)
class Member:
    """An organisation and its subsystems."""

    id: MemberId
    name: str
    subsystems: tuple[SubsystemId, ...]
    # Display names of the subsystems that have one (listClients' subsystem_name).
    subsystem_names: Mapping[SubsystemId, str] = field(default_factory=dict, hash=False)

    def to_json_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"id": str(self.id), "name": self.name,
                                    "subsystems": [str(s) for s in self.subsystems]}
        # Written only when a name is set, so that a configuration without names stays
        # readable by nodes that predate the key.
        if self.subsystem_names:
            document["subsystem_names"] = {
                str(s): n for s, n in sorted(self.subsystem_names.items())
            }
        return document

    @classmethod
    def from_json_dict(cls, value: object, where: str) -> Member:
        d = read_object(value, where, ("id", "name", "subsystems"), ("subsystem_names",))
        member = cls(
            id=_read_id(MemberId, d["id"], f"{where}.id"),
            name=read_str(d["name"], f"{where}.name"),
            subsystems=read_list(d["subsystems"], f"{where}.subsystems", _read_subsystem),
            subsystem_names=_read_names(d.get("subsystem_names", {}), f"{where}.subsystem_names"),
        )
        unknown = set(member.subsystem_names) - set(member.subsystems)
        if unknown:
            raise FormatError(f"{where}.subsystem_names names subsystems the member lacks")
        return member


@dataclass(frozen=True)
class Node:
    """A node (security server): its address, its auth certificates, the subsystems it hosts."""

    id: NodeId
    address: str
    peer_port: int
    auth_cert_sha256: tuple[str, ...]
    subsystems: tuple[SubsystemId, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "address": self.address, "peer_port": self.peer_port,
                "auth_cert_sha256": list(self.auth_cert_sha256),
                "subsystems": [str(s) for s in self.subsystems]}

    @classmethod
    def from_json_dict(cls, value: object, where: str) -> Node:
        d = read_object(value, where, ("id", "address", "peer_port", "auth_cert_sha256",
                                       "subsystems"))
        return cls(
            id=_read_id(NodeId, d["id"], f"{where}.id"),
            address=read_str(d["address"], f"{where}.address"),
            peer_port=read_int(d["peer_port"], f"{where}.peer_port", minimum=1,
                               maximum=_MAX_PORT),
            auth_cert_sha256=read_list(d["auth_cert_sha256"], f"{where}.auth_cert_sha256",
                                       _read_fingerprint),
            subsystems=read_list(d["subsystems"], f"{where}.subsystems", _read_subsystem),
        )


@dataclass(frozen=True)
class GlobalGroup:
    """A federation-wide group of subsystems, usable in access rights."""

    id: GlobalGroupId
    description: str
    members: tuple[SubsystemId, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "description": self.description,
                "members": [str(s) for s in self.members]}

    @classmethod
    def from_json_dict(cls, value: object, where: str) -> GlobalGroup:
        d = read_object(value, where, ("id", "description", "members"))
        description = d["description"]
        if not isinstance(description, str):
            raise FormatError(f"{where}.description must be a string")
        return cls(
            id=_read_id(GlobalGroupId, d["id"], f"{where}.id"),
            description=description,
            members=read_list(d["members"], f"{where}.members", _read_subsystem),
        )


@dataclass(frozen=True)
class GlobalConf:
    """One signed version of the federation's configuration."""

    instance: str
    version: int
    generated_at: datetime
    expires_at: datetime
    settings: Settings
    trusted_cas: tuple[TrustedCa, ...]
    tsas: tuple[Tsa, ...]
    members: tuple[Member, ...]
    nodes: tuple[Node, ...]
    global_groups: tuple[GlobalGroup, ...]
    format: str = FORMAT

    _members_by_id: Mapping[MemberId, Member] = field(
        init=False, repr=False, compare=False, hash=False)
    _subsystems: frozenset[SubsystemId] = field(
        init=False, repr=False, compare=False, hash=False)
    _nodes_by_id: Mapping[NodeId, Node] = field(init=False, repr=False, compare=False, hash=False)
    _nodes_by_fingerprint: Mapping[str, Node] = field(
        init=False, repr=False, compare=False, hash=False)
    _nodes_by_subsystem: Mapping[SubsystemId, tuple[Node, ...]] = field(
        init=False, repr=False, compare=False, hash=False)
    _groups_by_subsystem: Mapping[SubsystemId, frozenset[GlobalGroupId]] = field(
        init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        try:
            self._check_header()
            self._index()
        except FormatError as exc:
            raise GlobalConfMalformed(str(exc)) from exc

    # -- construction -------------------------------------------------------------------

    def _check_header(self) -> None:
        if self.format != FORMAT:
            raise FormatError(f"format must be {FORMAT!r}")
        read_str(self.instance, "instance")
        read_int(self.version, "version", minimum=1)
        for name in ("generated_at", "expires_at"):
            moment = getattr(self, name)
            if not isinstance(moment, datetime) or moment.utcoffset() is None:
                raise FormatError(f"{name} must be a timezone-aware datetime")
        if self.expires_at <= self.generated_at:
            raise FormatError("expires_at must be after generated_at")

    def _index(self) -> None:
        members: dict[MemberId, Member] = {}
        subsystems: set[SubsystemId] = set()
        for member in self.members:
            self._check_instance(member.id.instance, f"member {member.id}")
            if member.id in members:
                raise FormatError(f"member {member.id} is listed twice")
            members[member.id] = member
            for subsystem in member.subsystems:
                if subsystem.member != member.id:
                    raise FormatError(f"subsystem {subsystem} is not a subsystem of {member.id}")
                if subsystem in subsystems:
                    raise FormatError(f"subsystem {subsystem} is listed twice")
                subsystems.add(subsystem)

        nodes: dict[NodeId, Node] = {}
        by_fingerprint: dict[str, Node] = {}
        by_subsystem: dict[SubsystemId, list[Node]] = {}
        for node in self.nodes:
            if node.id in nodes:
                raise FormatError(f"node {node.id} is listed twice")
            if node.id.member not in members:
                raise FormatError(f"node {node.id} belongs to an unlisted member")
            nodes[node.id] = node
            for fingerprint in node.auth_cert_sha256:
                if not is_fingerprint(fingerprint):
                    raise FormatError(f"node {node.id} has a malformed certificate fingerprint")
                # One certificate identifies one node, or peer authentication is ambiguous.
                if fingerprint in by_fingerprint:
                    raise FormatError(f"auth certificate {fingerprint} is listed twice")
                by_fingerprint[fingerprint] = node
            for subsystem in node.subsystems:
                if subsystem not in subsystems:
                    raise FormatError(f"node {node.id} hosts unlisted subsystem {subsystem}")
                hosts = by_subsystem.setdefault(subsystem, [])
                if node in hosts:
                    raise FormatError(f"node {node.id} lists {subsystem} twice")
                hosts.append(node)

        groups: set[GlobalGroupId] = set()
        groups_of: dict[SubsystemId, set[GlobalGroupId]] = {}
        for group in self.global_groups:
            self._check_instance(group.id.instance, f"global group {group.id}")
            if group.id in groups:
                raise FormatError(f"global group {group.id} is listed twice")
            groups.add(group.id)
            for subsystem in group.members:
                if subsystem not in subsystems:
                    raise FormatError(f"global group {group.id} has unlisted member {subsystem}")
                groups_of.setdefault(subsystem, set()).add(group.id)

        set_ = object.__setattr__  # frozen dataclass: the indexes are set once, here
        set_(self, "_members_by_id", members)
        set_(self, "_subsystems", frozenset(subsystems))
        set_(self, "_nodes_by_id", nodes)
        set_(self, "_nodes_by_fingerprint", by_fingerprint)
        set_(self, "_nodes_by_subsystem", {k: tuple(v) for k, v in by_subsystem.items()})
        set_(self, "_groups_by_subsystem", {k: frozenset(v) for k, v in groups_of.items()})

    def _check_instance(self, instance: str, what: str) -> None:
        if instance != self.instance:
            raise FormatError(f"{what} is not in instance {self.instance}")

    # -- JSON ---------------------------------------------------------------------------

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "instance": self.instance,
            "version": self.version,
            "generated_at": format_time(self.generated_at),
            "expires_at": format_time(self.expires_at),
            "settings": self.settings.to_json_dict(),
            "trusted_cas": [ca.to_json_dict() for ca in self.trusted_cas],
            "tsas": [tsa.to_json_dict() for tsa in self.tsas],
            "members": [member.to_json_dict() for member in self.members],
            "nodes": [node.to_json_dict() for node in self.nodes],
            "global_groups": [group.to_json_dict() for group in self.global_groups],
        }

    @classmethod
    def from_json_dict(cls, d: object) -> GlobalConf:
        """Parse the JSON form strictly; raises ``GlobalConfMalformed``."""
        try:
            doc = read_object(d, "globalconf", (
                "format", "instance", "version", "generated_at", "expires_at", "settings",
                "trusted_cas", "tsas", "members", "nodes", "global_groups"))
            if doc["format"] != FORMAT:
                raise FormatError(f"format must be {FORMAT!r}")
            return cls(
                format=FORMAT,
                instance=read_str(doc["instance"], "instance"),
                version=read_int(doc["version"], "version", minimum=1),
                generated_at=parse_time(doc["generated_at"], "generated_at"),
                expires_at=parse_time(doc["expires_at"], "expires_at"),
                settings=Settings.from_json_dict(doc["settings"]),
                trusted_cas=read_list(doc["trusted_cas"], "trusted_cas",
                                      TrustedCa.from_json_dict),
                tsas=read_list(doc["tsas"], "tsas", Tsa.from_json_dict),
                members=read_list(doc["members"], "members", Member.from_json_dict),
                nodes=read_list(doc["nodes"], "nodes", Node.from_json_dict),
                global_groups=read_list(doc["global_groups"], "global_groups",
                                        GlobalGroup.from_json_dict),
            )
        except FormatError as exc:
            raise GlobalConfMalformed(f"malformed global configuration: {exc}") from exc

    # -- lookups (called per request) ---------------------------------------------------

    def node(self, node_id: NodeId) -> Node | None:
        return self._nodes_by_id.get(node_id)

    def node_by_fingerprint(self, sha256_hex: str) -> Node | None:
        return self._nodes_by_fingerprint.get(sha256_hex.lower())

    def nodes_hosting(self, subsystem: SubsystemId) -> tuple[Node, ...]:
        return self._nodes_by_subsystem.get(subsystem, ())

    def is_hosted_on(self, subsystem: SubsystemId, node_id: NodeId) -> bool:
        return any(node.id == node_id for node in self.nodes_hosting(subsystem))

    def client_hosted_on(self, client: ClientId, node_id: NodeId) -> bool:
        """Whether ``client`` calls through ``node_id``.

        A subsystem is hosted where the configuration says; a member-level
        client is served by the nodes the member owns, as X-Road serves a
        security server's owner member.
        """
        if isinstance(client, MemberId):
            return node_id.member == client and node_id in self._nodes_by_id
        return self.is_hosted_on(client, node_id)

    def groups_of(self, client: ClientId) -> frozenset[GlobalGroupId]:
        if isinstance(client, MemberId):
            return frozenset()  # global groups list subsystems
        return self._groups_by_subsystem.get(client, frozenset())

    def member(self, member_id: MemberId) -> Member | None:
        return self._members_by_id.get(member_id)

    def has_subsystem(self, subsystem: SubsystemId) -> bool:
        return subsystem in self._subsystems

    def has_client(self, client: ClientId) -> bool:
        """A registered subsystem, or a member of the federation."""
        if isinstance(client, MemberId):
            return client in self._members_by_id
        return self.has_subsystem(client)

    def trust_roots(self) -> tuple[x509.Certificate, ...]:
        return tuple(ca.certificate for ca in self.trusted_cas)

    def is_expired(self, now: datetime) -> bool:
        """True from ``expires_at`` on: nodes fail closed with an expired configuration."""
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        return now >= self.expires_at


def _read_id(kind: type[_Id], value: object, where: str) -> _Id:
    if not isinstance(value, str):
        raise FormatError(f"{where} must be a string")
    try:
        return kind.parse(value)
    except IdentifierError as exc:
        raise FormatError(f"{where}: {exc}") from exc


def _read_subsystem(value: object, where: str) -> SubsystemId:
    return _read_id(SubsystemId, value, where)


def _read_names(value: object, where: str) -> dict[SubsystemId, str]:
    if not isinstance(value, dict):
        raise FormatError(f"{where} must be an object")
    return {
        _read_subsystem(key, f"{where} key"): read_str(name, f"{where}[{key}]")
        for key, name in value.items()
    }


def _read_fingerprint(value: object, where: str) -> str:
    if not is_fingerprint(value):
        raise FormatError(f"{where} must be 64 lowercase hex digits (SHA-256)")
    assert isinstance(value, str)
    return value

"""Federation identifiers, X-Road compatible (DESIGN §2).

One immutable type per kind of identifier, parsed once at the boundary and used
everywhere else. Parsing is strict: a part that contains anything outside the
allowed alphabet is rejected, never "cleaned".

    member     INSTANCE/CLASS/CODE                  (also a client, as in X-Road)
    subsystem  INSTANCE/CLASS/CODE/SUBSYSTEM        (an exchange's client)
    service    INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE
    node       INSTANCE/CLASS/CODE/NODE             (a security server)

The identifier types live in ``certs`` because certificates bind them: ``certs``
is the lowest layer and every other package imports from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

__all__ = [
    "ClientId",
    "GlobalGroupId",
    "IdentifierError",
    "MemberId",
    "NodeId",
    "ServiceId",
    "SubsystemId",
    "check_instance",
    "parse_client_id",
]

_PART = re.compile(r"[A-Za-z0-9'()+,\-.=?]{1,255}")


class IdentifierError(ValueError):
    """A string is not a well-formed identifier of the expected kind."""

    code = "client.invalid_identifier"


def _split(text: str, count: int, kind: str) -> list[str]:
    if not isinstance(text, str):
        raise IdentifierError(f"{kind} identifier must be a string")
    parts = text.split("/")
    if len(parts) != count:
        raise IdentifierError(
            f"{kind} identifier must have {count} parts separated by '/', got {len(parts)}"
        )
    for index, part in enumerate(parts):
        if not _PART.fullmatch(part):
            raise IdentifierError(
                f"{kind} identifier part {index + 1} is empty, longer than 255 characters "
                "or contains a character outside A-Z a-z 0-9 ' ( ) + , - . = ?"
            )
    return parts


def check_instance(text: str) -> None:
    """Raise :class:`IdentifierError` unless ``text`` is a well-formed instance code."""
    _split(text, 1, "instance")


@dataclass(frozen=True, slots=True, order=True)
class MemberId:
    """An organisation: ``INSTANCE/CLASS/CODE``."""

    instance: str
    member_class: str
    member_code: str

    kind: ClassVar[str] = "member"

    @classmethod
    def parse(cls, text: str) -> Self:
        return cls(*_split(text, 3, cls.kind))

    def __post_init__(self) -> None:
        _split(f"{self.instance}/{self.member_class}/{self.member_code}", 3, self.kind)

    def __str__(self) -> str:
        return f"{self.instance}/{self.member_class}/{self.member_code}"

    @property
    def member(self) -> MemberId:
        """The member itself, so that any :data:`ClientId` has a ``member``."""
        return self

    def subsystem(self, code: str) -> SubsystemId:
        return SubsystemId(self.instance, self.member_class, self.member_code, code)

    def node(self, code: str) -> NodeId:
        return NodeId(self.instance, self.member_class, self.member_code, code)


@dataclass(frozen=True, slots=True, order=True)
class SubsystemId:
    """A member's information system: ``INSTANCE/CLASS/CODE/SUBSYSTEM``."""

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str

    kind: ClassVar[str] = "subsystem"

    @classmethod
    def parse(cls, text: str) -> Self:
        return cls(*_split(text, 4, cls.kind))

    def __post_init__(self) -> None:
        _split(str(self), 4, self.kind)

    def __str__(self) -> str:
        return f"{self.instance}/{self.member_class}/{self.member_code}/{self.subsystem_code}"

    @property
    def member(self) -> MemberId:
        return MemberId(self.instance, self.member_class, self.member_code)

    def service(self, code: str) -> ServiceId:
        return ServiceId(
            self.instance, self.member_class, self.member_code, self.subsystem_code, code
        )


@dataclass(frozen=True, slots=True, order=True)
class ServiceId:
    """A service of a subsystem: ``INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE``."""

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str
    service_code: str

    kind: ClassVar[str] = "service"

    @classmethod
    def parse(cls, text: str) -> Self:
        return cls(*_split(text, 5, cls.kind))

    def __post_init__(self) -> None:
        _split(str(self), 5, self.kind)

    def __str__(self) -> str:
        return (
            f"{self.instance}/{self.member_class}/{self.member_code}/"
            f"{self.subsystem_code}/{self.service_code}"
        )

    @property
    def subsystem(self) -> SubsystemId:
        return SubsystemId(self.instance, self.member_class, self.member_code, self.subsystem_code)

    @property
    def member(self) -> MemberId:
        return MemberId(self.instance, self.member_class, self.member_code)


@dataclass(frozen=True, slots=True, order=True)
class NodeId:
    """A node (security server) of a member: ``INSTANCE/CLASS/CODE/NODE``."""

    instance: str
    member_class: str
    member_code: str
    node_code: str

    kind: ClassVar[str] = "node"

    @classmethod
    def parse(cls, text: str) -> Self:
        return cls(*_split(text, 4, cls.kind))

    def __post_init__(self) -> None:
        _split(str(self), 4, self.kind)

    def __str__(self) -> str:
        return f"{self.instance}/{self.member_class}/{self.member_code}/{self.node_code}"

    @property
    def member(self) -> MemberId:
        return MemberId(self.instance, self.member_class, self.member_code)


@dataclass(frozen=True, slots=True, order=True)
class GlobalGroupId:
    """A federation-wide group of subsystems: ``INSTANCE/GROUPCODE``."""

    instance: str
    group_code: str

    kind: ClassVar[str] = "global group"

    @classmethod
    def parse(cls, text: str) -> Self:
        return cls(*_split(text, 2, cls.kind))

    def __post_init__(self) -> None:
        _split(str(self), 2, self.kind)

    def __str__(self) -> str:
        return f"{self.instance}/{self.group_code}"


ClientId = MemberId | SubsystemId
"""An exchange's client: a subsystem, or a member itself (PR-REST §4.1: the
subsystem code is optional in ``X-Road-Client``)."""


def parse_client_id(text: str) -> ClientId:
    """``INSTANCE/CLASS/CODE`` (a member) or ``INSTANCE/CLASS/CODE/SUBSYSTEM``."""
    if isinstance(text, str) and text.count("/") == 2:
        return MemberId.parse(text)
    return SubsystemId.parse(text)

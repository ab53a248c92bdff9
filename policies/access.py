"""Access rights of a provider's services and the one question they answer.

``AccessPolicy.check_query(client, groups, service, method, path)`` is X-Road's
``isQueryAllowed``: it returns the right that allows the query or raises
:class:`AccessDenied`. Nothing is allowed unless a right says so; an empty policy denies
everything. A right names a grantee (a subsystem, a member calling as itself, a global
group, or a local group the provider defines), an HTTP method (or ``*``) and a path
pattern (see ``_pathpattern``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from certs.identifiers import (
    ClientId,
    GlobalGroupId,
    IdentifierError,
    MemberId,
    ServiceId,
    SubsystemId,
)
from policies._pathpattern import PathPattern, split_request_path
from policies.errors import AccessDenied, DeclarationError

__all__ = [
    "AccessPolicy",
    "AccessRight",
    "Grantee",
    "LocalGroupRef",
    "format_grantee",
    "parse_grantee",
]

_METHOD = re.compile(r"[A-Z]{1,20}")
_LOCAL_GROUP_CODE = re.compile(r"[A-Za-z0-9'()+,\-.=?_]{1,255}")
_LOCAL_PREFIX = "local:"


@dataclass(frozen=True, slots=True, order=True)
class LocalGroupRef:
    """A group of subsystems defined locally by one provider subsystem."""

    provider: SubsystemId
    code: str

    def __post_init__(self) -> None:
        if not _LOCAL_GROUP_CODE.fullmatch(self.code):
            raise DeclarationError(f"local group code {self.code!r} is malformed")

    def __str__(self) -> str:
        return f"{_LOCAL_PREFIX}{self.provider}/{self.code}"


Grantee = SubsystemId | MemberId | GlobalGroupId | LocalGroupRef


def parse_grantee(text: str) -> Grantee:
    """Parse ``I/C/M/S`` (subsystem), ``I/C/M`` (a member as a client itself),
    ``I/GROUP`` (global group) or ``local:I/C/M/S/CODE``."""
    try:
        if text.startswith(_LOCAL_PREFIX):
            provider, _, code = text[len(_LOCAL_PREFIX) :].rpartition("/")
            return LocalGroupRef(SubsystemId.parse(provider), code)
        if text.count("/") == 1:
            return GlobalGroupId.parse(text)
        if text.count("/") == 2:
            return MemberId.parse(text)
        return SubsystemId.parse(text)
    except IdentifierError as exc:
        raise DeclarationError(f"grantee {text!r} is malformed: {exc}") from exc


def format_grantee(grantee: Grantee) -> str:
    """The inverse of :func:`parse_grantee`."""
    return str(grantee)


@dataclass(frozen=True, slots=True)
class AccessRight:
    """Permission for a grantee to call a service (or one endpoint of it)."""

    service: ServiceId
    grantee: Grantee
    method: str = "*"
    path: str = "*"
    id: str | None = None
    granted_at: datetime | None = None
    pattern: PathPattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.method != "*" and not _METHOD.fullmatch(self.method):
            raise DeclarationError(
                f"method {self.method!r} must be '*' or an upper-case HTTP method"
            )
        if isinstance(self.grantee, LocalGroupRef) and (
            self.grantee.provider != self.service.subsystem
        ):
            raise DeclarationError(
                f"local group {self.grantee} belongs to another provider than {self.service}"
            )
        if self.granted_at is not None and self.granted_at.utcoffset() is None:
            raise DeclarationError("granted_at must be timezone-aware")
        # Compiled once here, so matching never parses patterns.
        object.__setattr__(self, "pattern", PathPattern.compile(self.path))

    def covers(self, method: str, segments: tuple[str, ...]) -> bool:
        return (self.method == "*" or self.method == method) and self.pattern.matches(segments)


class AccessPolicy:
    """An immutable snapshot of a provider's access rights and local groups."""

    def __init__(
        self,
        rights: Iterable[AccessRight],
        local_groups: Mapping[LocalGroupRef, frozenset[SubsystemId]],
    ) -> None:
        by_service: dict[ServiceId, list[AccessRight]] = {}
        for right in rights:
            by_service.setdefault(right.service, []).append(right)
        self._rights = {service: tuple(items) for service, items in by_service.items()}
        self._local_groups = {ref: frozenset(members) for ref, members in local_groups.items()}

    def _grants(
        self, right: AccessRight, client: ClientId, client_groups: frozenset[GlobalGroupId]
    ) -> bool:
        grantee = right.grantee
        if isinstance(grantee, (SubsystemId, MemberId)):
            # A right for a member is for the member as a client, not its subsystems.
            return grantee == client
        if isinstance(grantee, GlobalGroupId):
            return grantee in client_groups
        return client in self._local_groups.get(grantee, frozenset())

    def check_query(
        self,
        client: ClientId,
        client_groups: frozenset[GlobalGroupId],
        service: ServiceId,
        method: str,
        path: str,
        *,
        path_parameters: bool = False,
    ) -> AccessRight:
        """Return the right allowing ``method path`` on ``service``; raise AccessDenied.

        ``path`` is the raw request path after the service code, without the query
        (``""`` or ``/`` for the service root); its segments are percent-decoded one by
        one and a path that cannot be split unambiguously is denied. A ``;`` in a segment
        is denied unless the service declares ``path_parameters``; then rights are
        matched on the segments without their parameters, as the backend reads them.
        """
        segments = split_request_path(path, path_parameters=path_parameters)
        if segments is None:
            raise AccessDenied(f"path {path!r} of {service} cannot be matched safely")
        for right in self._rights.get(service, ()):
            if self._grants(right, client, client_groups) and right.covers(method, segments):
                return right
        raise AccessDenied(f"{client} is not allowed {method} {path or '/'} on {service}")

    def service_rights(self, service: ServiceId) -> tuple[AccessRight, ...]:
        """Every right granted on ``service``, to anyone (the endpoints it names)."""
        return self._rights.get(service, ())

    def allowed_rights(
        self,
        client: ClientId,
        client_groups: frozenset[GlobalGroupId],
        provider: SubsystemId,
    ) -> list[AccessRight]:
        """Every right of ``provider``'s services that applies to this client."""
        return [
            right
            for service, rights in sorted(self._rights.items())
            if service.subsystem == provider
            for right in rights
            if self._grants(right, client, client_groups)
        ]

    def allowed_services(
        self,
        client: SubsystemId,
        client_groups: frozenset[GlobalGroupId],
        provider: SubsystemId,
    ) -> list[ServiceId]:
        """The provider's services the client may call at least partly (``allowedMethods``)."""
        services = {right.service for right in self.allowed_rights(client, client_groups, provider)}
        return sorted(services)

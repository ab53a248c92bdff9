"""Declarative policy files (TOML) kept under version control.

    [[local_group]]  provider, code, description?, members = [subsystem, ...]
    [[service]]      id, media_types, fields, public_fields?, consent_governed?,
                     subject? = {header = NAME} | {path = TEMPLATE} | {query = NAME},
                     subject_fields?, impersonal?, response_headers?, description?
    [[access]]       service, grantee (I/C/M/S, I/GROUP or local:I/C/M/S/CODE),
                     method? ("*"), path? ("*")
    [[purpose]]      consumer, code, text

``load_policy_file`` validates everything and reports every problem, each naming the
file, the table and its index, and the key. ``apply_policy_file`` makes a store match the
file for what the file names; applying the same file twice changes nothing.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from certs.identifiers import IdentifierError, ServiceId, SubsystemId
from policies.access import AccessRight, LocalGroupRef, parse_grantee
from policies.declarations import PurposeDeclaration, ServiceDeclaration, SubjectLocator
from policies.errors import PolicyError, PolicyFileError
from policies.store import PolicyStore

__all__ = ["ApplyReport", "LocalGroup", "PolicyFile", "apply_policy_file", "load_policy_file"]

_T = TypeVar("_T")
_TABLES = {
    "local_group": ({"provider", "code", "members"}, {"description"}),
    "service": (
        {"id", "media_types", "fields"},
        {
            "public_fields",
            "consent_governed",
            "subject",
            "description",
            "subject_fields",
            "impersonal",
            "response_headers",
        },
    ),
    "access": ({"service", "grantee"}, {"method", "path"}),
    "purpose": ({"consumer", "code", "text"}, set()),
}


@dataclass(frozen=True, slots=True)
class LocalGroup:
    """A local group as a policy file defines it."""

    ref: LocalGroupRef
    members: frozenset[SubsystemId]
    description: str = ""


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """The validated content of one policy file."""

    path: Path
    local_groups: tuple[LocalGroup, ...] = ()
    services: tuple[ServiceDeclaration, ...] = ()
    access: tuple[AccessRight, ...] = ()
    purposes: tuple[PurposeDeclaration, ...] = ()

    @property
    def named_services(self) -> frozenset[ServiceId]:
        """Services whose access rights the file governs."""
        return frozenset(s.service for s in self.services) | {r.service for r in self.access}


@dataclass
class ApplyReport:
    """What :func:`apply_policy_file` changed."""

    granted: list[AccessRight] = field(default_factory=list)
    revoked: list[AccessRight] = field(default_factory=list)
    services: int = 0
    purposes: int = 0
    local_groups: int = 0


class _Reader:
    """Reads one table entry, recording errors instead of stopping at the first."""

    def __init__(self, errors: list[str], where: str, entry: Mapping[str, Any]) -> None:
        self.errors = errors
        self.where = where
        self.entry = entry

    def fail(self, key: str | None, message: str) -> None:
        self.errors.append(f"{self.where}{f', key {key!r}' if key else ''}: {message}")

    def get(self, key: str, kind: type[_T], default: _T | None = None) -> _T | None:
        if key not in self.entry:
            return default
        value = self.entry[key]
        if not isinstance(value, kind) or (kind is str and not value):
            self.fail(key, f"must be a {'non-empty string' if kind is str else kind.__name__}")
            return None
        return value

    def strings(self, key: str, *, required: bool = True) -> tuple[str, ...] | None:
        value = self.entry.get(key, None if required else [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "must be an array of strings")
            return None
        return tuple(value)

    def parse(self, key: str, parser: Callable[[str], _T]) -> _T | None:
        text = self.get(key, str)
        if text is None:
            return None
        try:
            return parser(text)
        except (IdentifierError, PolicyError) as exc:
            self.fail(key, str(exc))
            return None

    def build(self, make: Callable[[], _T]) -> _T | None:
        try:
            return make()
        except (IdentifierError, PolicyError) as exc:
            self.fail(None, str(exc))
            return None


def _subject(reader: _Reader) -> SubjectLocator | None:
    value = reader.entry.get("subject", {"header": "Renkei-Subject"})
    if not isinstance(value, dict) or len(value) != 1:
        reader.fail("subject", "must be one of {header = ...}, {path = ...}, {query = ...}")
        return None
    ((kind, name),) = value.items()
    if kind not in ("header", "path", "query") or not isinstance(name, str):
        reader.fail("subject", "must be one of {header = ...}, {path = ...}, {query = ...}")
        return None
    try:
        return SubjectLocator(kind, name)
    except PolicyError as exc:
        reader.fail("subject", str(exc))
        return None


def _local_group(reader: _Reader) -> LocalGroup | None:
    provider = reader.parse("provider", SubsystemId.parse)
    code = reader.get("code", str)
    members = reader.strings("members")
    description = reader.get("description", str, "") or ""
    parsed: list[SubsystemId] = []
    for member in members or ():
        try:
            parsed.append(SubsystemId.parse(member))
        except IdentifierError as exc:
            reader.fail("members", f"{member!r}: {exc}")
    if provider is None or code is None or members is None:
        return None
    ref = reader.build(lambda: LocalGroupRef(provider, code))
    return None if ref is None else LocalGroup(ref, frozenset(parsed), description)


def _service(reader: _Reader) -> ServiceDeclaration | None:
    service = reader.parse("id", ServiceId.parse)
    media_types = reader.strings("media_types")
    fields = reader.strings("fields")
    public_fields = reader.strings("public_fields", required=False)
    consent_governed = reader.get("consent_governed", bool, True)
    description = reader.get("description", str, "") or ""
    subject = _subject(reader)
    subject_fields = reader.strings("subject_fields", required=False)
    impersonal = reader.strings("impersonal", required=False)
    response_headers = reader.strings("response_headers", required=False)
    if (
        service is None
        or media_types is None
        or fields is None
        or public_fields is None
        or consent_governed is None
        or subject is None
        or subject_fields is None
        or impersonal is None
        or response_headers is None
    ):
        return None
    return reader.build(
        lambda: ServiceDeclaration(
            service,
            media_types,
            fields,
            public_fields,
            consent_governed,
            subject,
            description,
            subject_fields=subject_fields,
            impersonal=impersonal,
            response_headers=response_headers,
        )
    )


def _access(reader: _Reader) -> AccessRight | None:
    service = reader.parse("service", ServiceId.parse)
    grantee = reader.parse("grantee", parse_grantee)
    method = reader.get("method", str, "*")
    path = reader.get("path", str, "*")
    if service is None or grantee is None or method is None or path is None:
        return None
    return reader.build(lambda: AccessRight(service, grantee, method, path))


def _purpose(reader: _Reader) -> PurposeDeclaration | None:
    consumer = reader.parse("consumer", SubsystemId.parse)
    code = reader.get("code", str)
    text = reader.get("text", str)
    if consumer is None or code is None or text is None:
        return None
    return reader.build(lambda: PurposeDeclaration(consumer, code, text))


_BUILDERS: dict[str, Callable[[_Reader], Any]] = {
    "local_group": _local_group,
    "service": _service,
    "access": _access,
    "purpose": _purpose,
}


def _entries(document: Mapping[str, Any], name: str, errors: list[str], source: str) -> list[Any]:
    tables = document.get(name, [])
    if not isinstance(tables, list):
        errors.append(f"{source}: {name!r} must be an array of tables, written [[{name}]]")
        return []
    required, optional = _TABLES[name]
    built: list[Any] = []
    for index, entry in enumerate(tables, start=1):
        where = f"{source}: [[{name}]] #{index}"
        if not isinstance(entry, dict):
            errors.append(f"{where}: must be a table")
            continue
        reader = _Reader(errors, where, entry)
        for key in sorted(required - entry.keys()):
            reader.fail(key, "is required")
        for key in sorted(entry.keys() - required - optional):
            reader.fail(key, "is not a known key")
        if required - entry.keys():
            continue
        value = _BUILDERS[name](reader)
        if value is not None:
            built.append(value)
    return built


def _duplicates(errors: list[str], source: str, name: str, keys: list[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            errors.append(f"{source}: [[{name}]] {key} is defined more than once")
        seen.add(key)


def load_policy_file(path: Path | str) -> PolicyFile:
    """Read and validate a policy file; raise PolicyFileError listing every problem."""
    path = Path(path)
    source = str(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyFileError(f"{source}: cannot read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"{source}: not valid TOML: {exc}") from exc
    errors = [
        f"{source}: unknown top-level key {key!r} (expected {', '.join(sorted(_TABLES))})"
        for key in sorted(document.keys() - _TABLES.keys())
    ]
    groups: list[LocalGroup] = _entries(document, "local_group", errors, source)
    services: list[ServiceDeclaration] = _entries(document, "service", errors, source)
    access: list[AccessRight] = _entries(document, "access", errors, source)
    purposes: list[PurposeDeclaration] = _entries(document, "purpose", errors, source)
    _duplicates(errors, source, "local_group", [str(g.ref) for g in groups])
    _duplicates(errors, source, "service", [str(s.service) for s in services])
    _duplicates(
        errors, source, "access", [f"{r.service} {r.grantee} {r.method} {r.path}" for r in access]
    )
    _duplicates(errors, source, "purpose", [f"{p.consumer} {p.code}" for p in purposes])
    if errors:
        raise PolicyFileError(
            f"{source}: {len(errors)} error(s)\n" + "\n".join(errors), tuple(errors)
        )
    return PolicyFile(path, tuple(groups), tuple(services), tuple(access), tuple(purposes))


def _key(right: AccessRight) -> tuple[str, str, str, str]:
    return (str(right.service), str(right.grantee), right.method, right.path)


async def apply_policy_file(
    store: PolicyStore, policy_file: PolicyFile, *, now: datetime | None = None
) -> ApplyReport:
    """Make ``store`` match ``policy_file`` for the groups, services and purposes it names.

    Access rights of every service the file names become exactly the file's (missing
    ones granted, recorded as granted at ``now`` when given; others revoked); rights of
    other services are untouched.
    """
    report = ApplyReport()
    for group in policy_file.local_groups:
        await store.add_local_group(group.ref, group.description)
        await store.set_local_group_members(group.ref, group.members)
        report.local_groups += 1
    for declaration in policy_file.services:
        if await store.service_declaration(declaration.service) != declaration:
            await store.declare_service(declaration)
            report.services += 1
    for purpose in policy_file.purposes:
        if await store.purpose(purpose.consumer, purpose.code) != purpose:
            await store.declare_purpose(purpose)
            report.purposes += 1
    wanted = {_key(right): right for right in policy_file.access}
    for service in sorted(policy_file.named_services):
        for right in await store.list_access(service):
            if _key(right) not in wanted and right.id is not None:
                await store.revoke_access(right.id)
                report.revoked.append(right)
    existing = {_key(right) for right in await store.list_access()}
    for key, right in wanted.items():
        if key not in existing:
            report.granted.append(await store.grant_access(right, now=now))
    return report

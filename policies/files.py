"""Declarative policy files (TOML) kept under version control.

    [[local_group]]  provider, code, description?, members = [subsystem, ...]
    [[service]]      id, media_types, fields, public_fields?, consent_governed?,
                     subject? = {header = NAME} | {path = TEMPLATE} | {query = NAME},
                     subject_fields?, impersonal?, response_headers?, description?
    [[access]]       service, grantee (I/C/M/S, I/C/M, I/GROUP or local:I/C/M/S/CODE),
                     method? ("*"), path? ("*")
    [[purpose]]      consumer, code, text

``load_policy_file`` validates everything and reports every problem, each naming the
file, the table and its index, and the key. ``plan_policy_file`` lists what applying the
file would change (each change with its before and after: the dry run);
``apply_policy_file`` makes a store match the file for what the file names, in one
transaction; applying the same file twice changes nothing. A node applies a file only
when asked to (``renkei policy apply``), never on its own.
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

__all__ = [
    "ApplyReport",
    "LocalGroup",
    "PolicyChange",
    "PolicyFile",
    "apply_policy_file",
    "declaration_json",
    "load_policy_file",
    "parse_policy_text",
    "plan_policy_file",
]

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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyFileError(f"{path}: not valid TOML: {exc}") from exc
    return parse_policy_text(text, path)


def parse_policy_text(text: str, path: Path | str = "<policy>") -> PolicyFile:
    """Validate a policy file's text; ``path`` names it in every message."""
    path = Path(path)
    source = str(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
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


def declaration_json(declaration: ServiceDeclaration) -> dict[str, Any]:
    """A service declaration as JSON (the management API's and the plans' shape)."""
    return {
        "service": str(declaration.service),
        "media_types": list(declaration.media_types),
        "fields": list(declaration.fields),
        "public_fields": list(declaration.public_fields),
        "consent_governed": declaration.consent_governed,
        "subject": str(declaration.subject),
        "subject_fields": list(declaration.subject_fields),
        "impersonal": list(declaration.impersonal),
        "response_headers": list(declaration.response_headers),
        "description": declaration.description,
    }


def _right_json(right: AccessRight) -> dict[str, Any]:
    return {
        "service": str(right.service),
        "grantee": str(right.grantee),
        "method": right.method,
        "path": right.path,
        **({"id": right.id} if right.id is not None else {}),
    }


def _group_json(description: str, members: frozenset[SubsystemId]) -> dict[str, Any]:
    return {"description": description, "members": sorted(str(m) for m in members)}


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One difference between a store and a file: ``before`` None adds, ``after`` None removes."""

    kind: str  # "local_group", "service", "purpose" or "access"
    key: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def action(self) -> str:
        if self.before is None:
            return "add"
        return "remove" if self.after is None else "change"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "action": self.action,
            "before": self.before,
            "after": self.after,
        }


@dataclass
class ApplyReport:
    """What :func:`apply_policy_file` changed (or, for a dry run, would change)."""

    changes: list[PolicyChange] = field(default_factory=list)
    granted: list[AccessRight] = field(default_factory=list)
    revoked: list[AccessRight] = field(default_factory=list)
    applied: bool = False

    def _count(self, kind: str) -> int:
        return sum(1 for change in self.changes if change.kind == kind)

    @property
    def services(self) -> int:
        return self._count("service")

    @property
    def purposes(self) -> int:
        return self._count("purpose")

    @property
    def local_groups(self) -> int:
        return self._count("local_group")

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "changes": [c.to_json() for c in self.changes]}

    def trail_change(self) -> dict[str, Any]:
        """Before and after of every change, keyed by what changed (the operator trail's)."""
        return {
            "before": {f"{c.kind} {c.key}": c.before for c in self.changes},
            "after": {f"{c.kind} {c.key}": c.after for c in self.changes},
        }


async def plan_policy_file(store: PolicyStore, policy_file: PolicyFile) -> ApplyReport:
    """The changes applying ``policy_file`` would make to ``store``; nothing is written.

    Groups, services and purposes the file names become the file's; access rights of
    every service the file names become exactly the file's (missing ones granted,
    others revoked); everything else is untouched.
    """
    report = ApplyReport()
    groups = await store.list_local_groups()
    for group in policy_file.local_groups:
        description = await store.local_group_description(group.ref)
        after = _group_json(group.description, group.members)
        before = (
            None if description is None else _group_json(description, groups.get(group.ref,
                                                                                   frozenset()))
        )
        if before != after:
            report.changes.append(PolicyChange("local_group", str(group.ref), before, after))
    for declaration in policy_file.services:
        current = await store.service_declaration(declaration.service)
        if current != declaration:
            report.changes.append(
                PolicyChange(
                    "service",
                    str(declaration.service),
                    None if current is None else declaration_json(current),
                    declaration_json(declaration),
                )
            )
    for purpose in policy_file.purposes:
        existing = await store.purpose(purpose.consumer, purpose.code)
        if existing != purpose:
            report.changes.append(
                PolicyChange(
                    "purpose",
                    f"{purpose.consumer} {purpose.code}",
                    None if existing is None else {"text": existing.text},
                    {"text": purpose.text},
                )
            )
    wanted = {_key(right): right for right in policy_file.access}
    for service in sorted(policy_file.named_services):
        for right in await store.list_access(service):
            if _key(right) not in wanted and right.id is not None:
                report.revoked.append(right)
                report.changes.append(
                    PolicyChange("access", " ".join(_key(right)), _right_json(right), None)
                )
    existing_rights = {_key(right) for right in await store.list_access()}
    for key, right in wanted.items():
        if key not in existing_rights:
            report.granted.append(right)
            report.changes.append(PolicyChange("access", " ".join(key), None, _right_json(right)))
    return report


async def apply_policy_file(
    store: PolicyStore,
    policy_file: PolicyFile,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> ApplyReport:
    """Make ``store`` match ``policy_file`` (see :func:`plan_policy_file`) in one transaction.

    Granted rights are recorded as granted at ``now`` when given. Applying the same
    file twice changes nothing; with ``dry_run`` nothing is written.
    """
    if dry_run:
        return await plan_policy_file(store, policy_file)
    async with store.atomic() as bound:
        report = await plan_policy_file(bound, policy_file)
        by_ref = {group.ref: group for group in policy_file.local_groups}
        by_service = {s.service: s for s in policy_file.services}
        by_purpose = {(p.consumer, p.code): p for p in policy_file.purposes}
        for change in report.changes:
            if change.kind == "local_group":
                group = by_ref[_local_group_ref(change.key)]
                await bound.add_local_group(group.ref, group.description)
                await bound.set_local_group_members(group.ref, group.members)
            elif change.kind == "service":
                await bound.declare_service(by_service[ServiceId.parse(change.key)])
            elif change.kind == "purpose":
                consumer, _, code = change.key.partition(" ")
                await bound.declare_purpose(by_purpose[(SubsystemId.parse(consumer), code)])
        for right in report.revoked:
            assert right.id is not None
            await bound.revoke_access(right.id)
        report.granted = [await bound.grant_access(right, now=now) for right in report.granted]
    report.applied = True
    return report


def _local_group_ref(text: str) -> LocalGroupRef:
    grantee = parse_grantee(text)
    assert isinstance(grantee, LocalGroupRef)
    return grantee

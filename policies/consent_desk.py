"""What a consent desk may record: only consents that can apply.

A consent that names a consumer the federation does not know, a purpose that consumer never
declared, a period already over, or a field the service does not declare would sit in the
store and never release anything (or release something nobody meant); the desk refuses it
with a message that says what would be accepted. ``ALL_DECLARED`` (``*``) is the explicit
form for every field the service declares; it is expanded when the consent is recorded, so
fields declared later are not consented to.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from certs.identifiers import GlobalGroupId, SubsystemId
from policies.consent import Consumer
from policies.declarations import PurposeDeclaration, ServiceDeclaration
from policies.errors import ConsentError

__all__ = ["ALL_DECLARED", "ConsentRequest", "check_consent_request"]

ALL_DECLARED = "*"


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """A consent as the desk accepts it: its fields expanded, its purpose's text."""

    fields: tuple[str, ...]
    purpose_text: str


def check_consent_request(
    *,
    declaration: ServiceDeclaration,
    consumer: Consumer,
    purpose: str,
    fields: Sequence[str],
    valid_until: datetime | None,
    now: datetime,
    known_subsystem: Callable[[SubsystemId], bool],
    group_members: Callable[[GlobalGroupId], Collection[SubsystemId] | None],
    purposes: Collection[PurposeDeclaration],
) -> ConsentRequest:
    """Raise ConsentError unless the consent can apply; see the module docstring.

    ``known_subsystem`` and ``group_members`` answer from the current global
    configuration (``group_members`` gives None for an unknown group); ``purposes``
    are the purpose declarations this node holds.
    """
    if not declaration.consent_governed:
        raise ConsentError(f"service {declaration.service} is not consent-governed")
    if isinstance(consumer, GlobalGroupId):
        members = group_members(consumer)
        if members is None:
            raise ConsentError(
                f"consumer {consumer} is not a global group of the current global configuration"
            )
        declarers = set(members)
    elif not isinstance(consumer, SubsystemId):
        # A member or any consumer declares no purposes: only an imported rule may name one.
        raise ConsentError(
            f"the consent desk grants to a subsystem or a global group, not {consumer}"
        )
    else:
        if not known_subsystem(consumer):
            raise ConsentError(
                f"consumer {consumer} is not a subsystem of the current global configuration"
            )
        declarers = {consumer}
    texts = {p.text for p in purposes if p.consumer in declarers and p.code == purpose}
    if not texts:
        declared = sorted({p.code for p in purposes if p.consumer in declarers})
        raise ConsentError(
            f"{consumer} has not declared the purpose {purpose!r}; declared: "
            + (", ".join(declared) if declared else "none")
        )
    if valid_until is not None and valid_until <= now:
        raise ConsentError("the consent's period is entirely in the past")
    return ConsentRequest(_expand(declaration, fields), sorted(texts)[0])


def _expand(declaration: ServiceDeclaration, fields: Sequence[str]) -> tuple[str, ...]:
    if list(fields) == [ALL_DECLARED]:
        return tuple(declaration.fields)
    if ALL_DECLARED in fields:
        raise ConsentError(f"{ALL_DECLARED!r} (every declared field) stands alone")
    unknown = sorted(set(fields) - set(declaration.fields))
    if unknown:
        raise ConsentError(
            f"fields {', '.join(unknown)} are not declared by service {declaration.service}; "
            f"declared: {', '.join(declaration.fields)} (or {ALL_DECLARED!r} for all)"
        )
    return tuple(fields)

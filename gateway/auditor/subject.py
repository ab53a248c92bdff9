"""The data-subject report ("who looked at my data?", like Estonia's Data Tracker).

For one subject: every exchange that touched their data, when, which
consumer, which service, which fields were released (and withheld), for what
purpose. An exchange touched a person if the request named them, if data
about them was released (a Bundle may hold resources about several people;
the provider lists their subjects in the row's consent decision), or if data
about them was withheld because the request named someone else
(``relation``: ``named``, ``released``, ``withheld``). Only provider-side rows
count (the provider released the data); refusals are listed as such. Rows
hidden from the subject until a later date are left out until then. Works on
rows from a bundle or from a node database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

__all__ = ["SubjectEntry", "subject_report"]


@dataclass(frozen=True)
class SubjectEntry:
    when: str
    node: str
    consumer: str | None
    service: str | None
    purpose: str | None
    released: tuple[str, ...]
    withheld: tuple[str, ...]
    consent_ids: tuple[str, ...]
    outcome: str
    message_id: str
    relation: str = "named"
    # The deny rules overridden by a break-glass purpose; empty if none.
    break_glass: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for name in ("released", "withheld", "consent_ids", "break_glass"):
            document[name] = list(document[name])
        return document


def _consent(row: Mapping[str, Any]) -> dict[str, Any]:
    raw = row.get("consent")
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _relation(row: Mapping[str, Any], consent: Mapping[str, Any], subject: str) -> str | None:
    """How the exchange of ``row`` touched ``subject``, if it did."""
    if subject in _names(consent.get("subjects")):
        return "released"
    if row.get("subject") == subject:
        return "named"
    if subject in _names(consent.get("withheld_subjects")):
        return "withheld"
    return None


def _names(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def subject_report(
    rows: Iterable[Mapping[str, Any]],
    subject: str,
    *,
    now: datetime,
    hidden_until: Mapping[str, str] | None = None,
) -> list[SubjectEntry]:
    """The subject's entries, oldest first; ``hidden_until`` maps message ids to ISO times."""
    hidden = hidden_until or {}
    entries = []
    for row in rows:
        if row.get("role") != "provider":
            continue
        consent = _consent(row)
        relation = _relation(row, consent, subject)
        if relation is None:
            continue
        until = hidden.get(str(row.get("message_id")))
        if until is not None and datetime.fromisoformat(until) > now:
            continue
        error = row.get("error_code")
        withheld_only = relation == "withheld"
        entries.append(
            SubjectEntry(
                when=str(row.get("logged_at")),
                node=str(row.get("node_id")),
                consumer=row.get("client"),
                service=row.get("service"),
                purpose=row.get("purpose"),
                # Someone else's consent released someone else's fields: none of this
                # person's data left the node.
                released=() if withheld_only else tuple(consent.get("released", ())),
                withheld=() if withheld_only else tuple(consent.get("withheld", ())),
                consent_ids=() if withheld_only else tuple(consent.get("consent_ids", ())),
                outcome=(
                    f"refused ({error})"
                    if error
                    else "withheld (the request named another subject)"
                    if withheld_only
                    else f"answered under break-glass ({row.get('status')})"
                    if consent.get("break_glass")
                    else f"answered ({row.get('status')})"
                ),
                message_id=str(row.get("message_id")),
                relation=relation,
                break_glass=() if withheld_only else _names(consent.get("break_glass")),
            )
        )
    return sorted(entries, key=lambda e: e.when)

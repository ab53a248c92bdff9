"""The data-subject report ("who looked at my data?", like Estonia's Data Tracker).

For one subject: every exchange that touched their data, when, which
consumer, which service, which fields were released (and withheld), for what
purpose. Only provider-side rows count (the provider released the data);
refusals are listed as such. Rows hidden from the subject until a later date
are left out until then. Works on rows from a bundle or from a node database.
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

    def to_json_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for name in ("released", "withheld", "consent_ids"):
            document[name] = list(document[name])
        return document


def _consent(row: Mapping[str, Any]) -> dict[str, Any]:
    raw = row.get("consent")
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


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
        if row.get("subject") != subject or row.get("role") != "provider":
            continue
        until = hidden.get(str(row.get("message_id")))
        if until is not None and datetime.fromisoformat(until) > now:
            continue
        consent = _consent(row)
        error = row.get("error_code")
        entries.append(
            SubjectEntry(
                when=str(row.get("logged_at")),
                node=str(row.get("node_id")),
                consumer=row.get("client"),
                service=row.get("service"),
                purpose=row.get("purpose"),
                released=tuple(consent.get("released", ())),
                withheld=tuple(consent.get("withheld", ())),
                consent_ids=tuple(consent.get("consent_ids", ())),
                outcome=f"refused ({error})" if error else f"answered ({row.get('status')})",
                message_id=str(row.get("message_id")),
            )
        )
    return sorted(entries, key=lambda e: e.when)

"""The data-subject report finds every person an exchange touched: the subject the request
named, the subjects whose data was released (a Bundle about several people), and those
whose data was withheld because the request named someone else."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.audit.queries import subject_rows
from gateway.auditor.subject import subject_report
from tests.unit.gateway.audit.conftest import Federation


def _decision(subjects: list[str], withheld_subjects: list[str]) -> dict[str, object]:
    return {
        "released": ["Patient.name"],
        "withheld": ["Bundle.entry[*](Patient):other-subject"],
        "consent_ids": ["c1"],
        "purpose": "treatment",
        "subjects": subjects,
        "withheld_subjects": withheld_subjects,
    }


async def _report(federation: Federation, subject: str) -> list[tuple[str, str]]:
    rows, hidden = await subject_rows(federation.engine, federation.node_id, subject)
    entries = subject_report(rows, subject, now=datetime.now(UTC), hidden_until=hidden)
    return [(entry.message_id, entry.relation) for entry in entries]


async def test_every_person_touched_finds_the_exchange(federation: Federation) -> None:
    await federation.exchange(
        message_id="mixed", subject="pat2", consent=_decision(["pat2"], ["d1", "a_2%"])
    )
    await federation.exchange(message_id="other", subject="zed", consent=_decision([], []))
    assert await _report(federation, "pat2") == [("mixed", "released")]
    assert await _report(federation, "d1") == [("mixed", "withheld")]
    # LIKE wildcards in a subject match only themselves.
    assert await _report(federation, "a_2%") == [("mixed", "withheld")]
    assert await _report(federation, "a_2") == []
    assert await _report(federation, "a") == []
    assert await _report(federation, "zed") == [("other", "named")]


async def test_a_withheld_subject_sees_nothing_released(federation: Federation) -> None:
    await federation.exchange(message_id="m", subject="pat2", consent=_decision(["pat2"], ["d1"]))
    rows, _ = await subject_rows(federation.engine, federation.node_id, "d1")
    (entry,) = subject_report(rows, "d1", now=datetime.now(UTC))
    assert entry.released == ()
    assert entry.consent_ids == ()
    assert entry.outcome.startswith("withheld")


async def test_consumer_rows_do_not_count(federation: Federation) -> None:
    await federation.exchange(
        message_id="c", role="consumer", subject="pat2", consent=_decision(["pat2"], ["d1"])
    )
    assert await _report(federation, "pat2") == []
    assert await _report(federation, "d1") == []


async def test_a_break_glass_release_is_marked_in_the_report(federation: Federation) -> None:
    marked = {**_decision(["pat3"], ["d1"]), "break_glass": ["deny-1"]}
    await federation.exchange(message_id="glass", subject="pat3", consent=marked)
    await federation.exchange(message_id="plain", subject="pat3", consent=_decision(["pat3"], []))
    rows, _ = await subject_rows(federation.engine, federation.node_id, "pat3")
    entries = {e.message_id: e for e in subject_report(rows, "pat3", now=datetime.now(UTC))}
    assert entries["glass"].break_glass == ("deny-1",)
    assert entries["glass"].outcome.startswith("answered under break-glass")
    assert entries["glass"].to_json_dict()["break_glass"] == ["deny-1"]
    assert entries["plain"].break_glass == ()
    assert not entries["plain"].outcome.startswith("answered under break-glass")
    # A person whose data was withheld is not told of the override.
    rows, _ = await subject_rows(federation.engine, federation.node_id, "d1")
    (withheld,) = subject_report(rows, "d1", now=datetime.now(UTC))
    assert withheld.break_glass == ()

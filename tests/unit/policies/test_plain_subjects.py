"""A plain JSON response is one record: its subject is read at the declared field
paths and must be the request's subject, or nothing of it is released."""

from __future__ import annotations

import json

import pytest

from certs.identifiers import ServiceId
from policies.declarations import ServiceDeclaration
from policies.errors import ResourceWithheld
from policies.filter import filter_body

SERVICE = ServiceId.parse("EE/GOV/B/records/people")


def declaration(**changes: object) -> ServiceDeclaration:
    values: dict[str, object] = {
        "media_types": ("application/json",),
        "fields": ("name", "address", "visits[*].date"),
        "subject_fields": ("personId", "visits[*].personId"),
    }
    values.update(changes)
    return ServiceDeclaration(SERVICE, **values)  # type: ignore[arg-type]


def release(document: object, subject: str = "p1", **changes: object) -> object:
    result = filter_body(
        json.dumps(document).encode(),
        content_type="application/json",
        declaration=declaration(**changes),
        subject=subject,
        released_fields=("name",),
    )
    assert result.subjects == (() if changes.get("impersonal") else (subject,))
    return json.loads(result.body)


def test_the_named_subjects_record_is_filtered() -> None:
    record = {"personId": "p1", "name": "Ann", "address": "Tartu",
              "visits": [{"personId": "p1", "date": "2024"}]}
    assert release(record) == {"name": "Ann"}


@pytest.mark.parametrize(
    "record",
    [
        {"personId": "p2", "name": "Bob"},  # someone else
        {"personId": "p1", "name": "Ann", "visits": [{"personId": "p2"}]},  # and someone else
        {"name": "Ann"},  # nobody says whose
        {"personId": 1, "name": "Ann"},
        [{"personId": "p1"}],
    ],
)
def test_anything_else_is_withheld_whole(record: object) -> None:
    with pytest.raises(ResourceWithheld):
        release(record)


def test_without_subject_fields_nothing_is_released() -> None:
    with pytest.raises(ResourceWithheld, match="cannot be established"):
        release({"personId": "p1", "name": "Ann"}, subject_fields=())


def test_a_service_without_personal_data_needs_no_subject() -> None:
    assert release({"name": "Timetable"}, impersonal=("*",), subject_fields=()) == {
        "name": "Timetable"
    }

"""The OpenAPI conformance checks themselves: they catch what they are for."""

from __future__ import annotations

import copy

import pytest

from gateway.openapi import node_openapi
from tests.unit.openapi_conformance import Answer, assert_conform, bare_schemas

MAINTENANCE = {"enabled": True, "since": "2026-01-01T00:00:00Z", "reason": "x", "in_flight": 0}


def _answer(body: object, status: int = 200) -> Answer:
    return Answer("GET", "/api/maintenance", status, "application/json", body)


def test_a_conforming_body_passes() -> None:
    assert_conform(node_openapi(), [_answer(MAINTENANCE)])


@pytest.mark.parametrize(
    "body",
    [
        {**MAINTENANCE, "in_flight": "0"},  # a wrong type
        {k: v for k, v in MAINTENANCE.items() if k != "enabled"},  # a required key missing
        [MAINTENANCE],  # another shape
    ],
)
def test_a_drifted_body_fails(body: object) -> None:
    with pytest.raises(AssertionError):
        assert_conform(node_openapi(), [_answer(body)])


def test_an_undocumented_status_fails() -> None:
    with pytest.raises(AssertionError, match="201 undocumented"):
        assert_conform(node_openapi(), [_answer(MAINTENANCE, 201)])


@pytest.mark.parametrize(
    "schema",
    [{"type": "object"}, {"type": "array"}, {"type": "array", "items": {"type": "object"}}],
)
def test_a_bare_2xx_schema_is_reported(schema: dict[str, object]) -> None:
    document = copy.deepcopy(node_openapi())
    ok = document["paths"]["/api/maintenance"]["get"]["responses"]["200"]
    ok["content"]["application/json"]["schema"] = schema
    assert bare_schemas(document) == ["GET /api/maintenance 200 application/json"]

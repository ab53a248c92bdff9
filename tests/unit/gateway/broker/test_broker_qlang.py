"""The q language (clause 4.9) over stored entities."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.broker.errors import BadRequestData, TooComplexQuery
from gateway.broker.ldcontext import NGSI_LD, ContextCache
from gateway.broker.qlang import parse_q

D = NGSI_LD + "default-context/"
ENTITY: dict[str, Any] = {
    "attrs": {
        D + "level": {
            "type": "Property",
            "value": 3.2,
            "observedAt": "2026-01-01T00:00:00Z",
            D + "quality": {"type": "Property", "value": "good"},
        },
        D + "name": {"type": "Property", "value": "Tama"},
        D + "tags": {"type": "Property", "value": ["river", "gauge"]},
        D + "address": {"type": "Property", "value": {"city": "Tokyo", "ward": "Ota"}},
        D + "river": {"type": "Relationship", "object": "urn:ngsi-ld:River:1"},
    }
}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("level>3", True),
        ("level>3.2", False),
        ("level>=3.2", True),
        ("level<=3", False),
        ("level==1..4", True),
        ("level==4..5", False),
        ("level!=3.2", False),
        ('name=="Tama"', True),
        ('name=="A","Tama"', True),
        ('name!="A","B"', True),
        ("name~=^Ta", True),
        ("name!~=^Ta", False),
        ('tags=="gauge"', True),
        ("level;name", True),
        ("missing", False),
        ("!missing", True),
        ('level>5|name=="Tama"', True),
        ('(level>5|level<4);name=="X"', False),
        ("level.observedAt>2025-12-31T00:00:00Z", True),
        ('level.quality=="good"', True),
        ('address[city]=="Tokyo"', True),
        ('address[ward]=="Chuo"', False),
        ("river==urn:ngsi-ld:River:1", True),
        ("name>3", False),
    ],
)
def test_terms(q: str, expected: bool) -> None:
    assert parse_q(q, ContextCache().core())(ENTITY) is expected


@pytest.mark.parametrize(
    "q",
    [
        "",
        "level>",
        "level>>1",
        "(level>1",
        "level>1)",
        "a b",
        "name~=(",
        "level>1..2",
        "!level>1",
        'level=="unterminated',
    ],
)
def test_malformed_q_is_bad_request_data(q: str) -> None:
    with pytest.raises(BadRequestData):
        parse_q(q, ContextCache().core())


def test_too_many_terms() -> None:
    with pytest.raises(TooComplexQuery):
        parse_q(";".join(["level>1"] * 65), ContextCache().core())

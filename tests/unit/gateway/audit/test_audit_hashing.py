"""The chain's hashing rule: RFC 8785 over strings, integers and nulls, which is byte for
byte the form existing rows were hashed in, so their hashes still verify."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.hashing import GENESIS_HASH, entry_hash
from gateway.audit.models import HASHED_FIELDS


def legacy_entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The rule as first written (json.dumps, sorted keys, compact, non-ASCII kept)."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev_hash.encode() + b"\x00" + body.encode("utf-8")).hexdigest()


values = st.none() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text().filter(
    lambda text: not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
)


@given(st.fixed_dictionaries({name: values for name in HASHED_FIELDS}))
def test_existing_rows_hash_as_they_did(fields: dict[str, Any]) -> None:
    assert entry_hash(GENESIS_HASH, fields) == legacy_entry_hash(GENESIS_HASH, fields)


def test_a_row_with_every_kind_of_character_hashes_as_it_did() -> None:
    fields: dict[str, Any] = dict.fromkeys(HASHED_FIELDS)
    fields.update(seq=7, status=200, subject="Jos\u00e9 \u5c71\u7530 \U0001f600",
                  path='/a"b\\c\u2028\x00\x1f\x7f', consent='{"released":["name"]}')
    assert entry_hash("ab" * 32, fields) == legacy_entry_hash("ab" * 32, fields)


@pytest.mark.parametrize("value", [1.5, True, {"a": 1}, ["x"], b"x"])
def test_a_field_of_another_type_is_refused(value: object) -> None:
    fields: dict[str, Any] = dict.fromkeys(HASHED_FIELDS)
    fields["status"] = value
    with pytest.raises(ValueError, match="status"):
        entry_hash(GENESIS_HASH, fields)

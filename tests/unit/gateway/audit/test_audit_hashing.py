"""The chain's hashing rules: RFC 8785 over strings, integers and nulls, which is byte for
byte the form existing rows were hashed in, so their hashes still verify; the row's
format names the rule, and verifiers dispatch on it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.chain import ChainBroken, verify_chain
from gateway.audit.hashing import GENESIS_HASH, ROW_FORMAT, UnknownRowFormat, entry_hash
from gateway.audit.models import HASHED_FIELDS

FORMAT_1_FIELDS = tuple(name for name in HASHED_FIELDS if name != "format")


def legacy_entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The rule as first written (json.dumps, sorted keys, compact, non-ASCII kept)."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev_hash.encode() + b"\x00" + body.encode("utf-8")).hexdigest()


values = st.none() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text().filter(
    lambda text: not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
)


@given(st.fixed_dictionaries({name: values for name in FORMAT_1_FIELDS}))
def test_existing_rows_hash_as_they_did(fields: dict[str, Any]) -> None:
    # Rows written before rows carried a format: read back with format NULL, or
    # exported without the key.
    assert entry_hash(GENESIS_HASH, fields) == legacy_entry_hash(GENESIS_HASH, fields)
    assert entry_hash(GENESIS_HASH, {**fields, "format": None}) == legacy_entry_hash(
        GENESIS_HASH, fields
    )


def test_a_row_with_every_kind_of_character_hashes_as_it_did() -> None:
    fields: dict[str, Any] = dict.fromkeys(FORMAT_1_FIELDS)
    fields.update(seq=7, status=200, subject="Jos\u00e9 \u5c71\u7530 \U0001f600",
                  path='/a"b\\c\u2028\x00\x1f\x7f', consent='{"released":["name"]}')
    assert entry_hash("ab" * 32, fields) == legacy_entry_hash("ab" * 32, fields)


@pytest.mark.parametrize("value", [1.5, True, {"a": 1}, ["x"], b"x"])
def test_a_field_of_another_type_is_refused(value: object) -> None:
    fields: dict[str, Any] = dict.fromkeys(FORMAT_1_FIELDS)
    fields["status"] = value
    with pytest.raises(ValueError, match="status"):
        entry_hash(GENESIS_HASH, fields)


def _chain(formats: list[int | None]) -> list[dict[str, Any]]:
    rows, previous = [], GENESIS_HASH
    for seq, row_format in enumerate(formats, start=1):
        row: dict[str, Any] = dict.fromkeys(HASHED_FIELDS)
        row.update(node_id="EE/GOV/1/n", seq=seq, logged_at=f"t{seq}", role="provider",
                   message_id=f"m{seq}", prev_hash=previous, format=row_format)
        row["entry_hash"] = entry_hash(previous, row)
        rows.append(row)
        previous = row["entry_hash"]
    return rows


def test_format_2_hashes_its_format_and_format_1_does_not() -> None:
    fields: dict[str, Any] = dict.fromkeys(FORMAT_1_FIELDS)
    fields.update(seq=1, prev_hash=GENESIS_HASH)
    legacy = legacy_entry_hash(GENESIS_HASH, fields)
    assert ROW_FORMAT == 2
    assert entry_hash(GENESIS_HASH, {**fields, "format": 2}) == legacy_entry_hash(
        GENESIS_HASH, {**fields, "format": 2}
    ) != legacy


def test_a_chain_written_across_an_upgrade_verifies() -> None:
    assert verify_chain(_chain([None, None, 2, 2]), first_seq=1) == 4


@pytest.mark.parametrize("forged", [None, 3, 1, "2", True])
def test_a_rows_format_cannot_be_changed_or_unknown(forged: object) -> None:
    # Rewriting a format-2 row as format 1 (or naming a rule nobody has) breaks it.
    rows = _chain([None, 2, 2])
    rows[1]["format"] = forged
    with pytest.raises(ChainBroken) as info:
        verify_chain(rows, first_seq=1)
    assert info.value.seq == 2


@pytest.mark.parametrize("unknown", [3, 1, 0, "2", True, 2.0])
def test_an_unknown_format_is_refused_not_guessed(unknown: object) -> None:
    fields: dict[str, Any] = dict.fromkeys(FORMAT_1_FIELDS)
    with pytest.raises(UnknownRowFormat):
        entry_hash(GENESIS_HASH, {**fields, "format": unknown})

"""RFC 8785 canonical JSON and the strict reader, against the RFC's own examples."""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certs.jws import JsonRefused, canonical_json, loads_strict

# RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript serialisation.
NUMBERS = [
    (0x0000000000000000, "0"),
    (0x8000000000000000, "0"),
    (0x0000000000000001, "5e-324"),
    (0x8000000000000001, "-5e-324"),
    (0x7FEFFFFFFFFFFFFF, "1.7976931348623157e+308"),
    (0xFFEFFFFFFFFFFFFF, "-1.7976931348623157e+308"),
    (0x4340000000000000, "9007199254740992"),
    (0xC340000000000000, "-9007199254740992"),
    (0x4430000000000000, "295147905179352830000"),
    (0x44B52D02C7E14AF5, "9.999999999999997e+22"),
    (0x44B52D02C7E14AF6, "1e+23"),
    (0x44B52D02C7E14AF7, "1.0000000000000001e+23"),
    (0x444B1AE4D6E2EF4E, "999999999999999700000"),
    (0x444B1AE4D6E2EF4F, "999999999999999900000"),
    (0x444B1AE4D6E2EF50, "1e+21"),
    (0x3EB0C6F7A0B5ED8C, "9.999999999999997e-7"),
    (0x3EB0C6F7A0B5ED8D, "0.000001"),
    (0x41B3DE4355555553, "333333333.3333332"),
    (0x41B3DE4355555554, "333333333.33333325"),
    (0x41B3DE4355555555, "333333333.3333333"),
    (0x41B3DE4355555556, "333333333.3333334"),
    (0x41B3DE4355555557, "333333333.33333343"),
    (0xBECBF647612F3696, "-0.0000033333333333333333"),
    (0x43143FF3C1CB0959, "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), NUMBERS)
def test_numbers_follow_rfc_8785_appendix_b(bits: int, expected: str) -> None:
    value = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
    assert canonical_json([value]) == f"[{expected}]".encode()


def test_rfc_8785_section_3_2_2_example() -> None:
    document = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    assert canonical_json(document) == (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()


def test_keys_sort_by_utf16_code_units() -> None:
    # RFC 8785 §3.2.3: the emoji (a surrogate pair, D83D) sorts before U+FB33.
    document = {
        "\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "\u00f6": 7,
    }  # fmt: skip
    assert list(json.loads(canonical_json(document))) == [
        "\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, 2**53, -(2**53), {1: "x"}, b"bytes", "\ud800", {"set": {1}}],
)
def test_what_has_no_canonical_form_is_refused(value: object) -> None:
    with pytest.raises(JsonRefused):
        canonical_json(value)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=20,
    )
)
def test_without_floats_it_is_python_sorted_compact_utf8(value: object) -> None:
    # Keys of BMP characters sort the same by code point and by UTF-16 unit; strings
    # are json.dumps(ensure_ascii=False). This is the form existing audit rows and
    # descriptions were hashed and compared in, so they keep their bytes.
    try:
        legacy = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates: refused by both
    if any(ord(c) > 0xFFFF for c in json.dumps(value, ensure_ascii=False)):
        return  # astral characters may sort differently in keys
    assert canonical_json(value) == legacy
    assert loads_strict(canonical_json(value)) == json.loads(legacy)


@pytest.mark.parametrize(
    "text",
    [
        b'{"method":"GET","method":"DELETE"}',
        b'{"a":{"status":200,"status":500}}',
        b'[{"x":1,"x":1}]',
        b'{"n":NaN}',
        b'{"n":-Infinity}',
        b'{"a":1',
        '{"a":"\u00e9"}'.encode("utf-16"),
        b'{"a":"\xff"}',
    ],
)
def test_the_strict_reader_refuses(text: bytes) -> None:
    with pytest.raises(JsonRefused):
        loads_strict(text)


def test_the_strict_reader_reads_what_is_plain() -> None:
    assert loads_strict('{"a":[1,2.5,"\u00e9",null]}'.encode()) == {"a": [1, 2.5, "\u00e9", None]}

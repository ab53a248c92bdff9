from __future__ import annotations

import json
from typing import Any

import pytest

from certs.identifiers import ServiceId
from policies.declarations import ServiceDeclaration
from policies.errors import (
    BodyInvalid,
    BodyTooDeep,
    BodyTooLarge,
    FilterError,
    UnsupportedCharset,
    UnsupportedMediaType,
)
from policies.filter import FieldPath, FilterLimits, filter_body, filter_json

SERVICE = ServiceId.parse("EE/GOV/B/records/people")
DECLARATION = ServiceDeclaration(
    SERVICE,
    media_types=("application/json", "application/vnd.people+json", "text/csv"),
    fields=("name", "telecom[*]", "address", "entry[*].resource.code"),
    public_fields=("name",),
    impersonal=("*",),  # these tests are about the walk; subjects: test_plain_subjects.py
)


def paths(*texts: str) -> list[FieldPath]:
    return [FieldPath.parse(text) for text in texts]


def test_allow_list_keeps_only_covered_fields() -> None:
    document = {"name": "Ann", "address": {"city": "Tartu"}, "telecom": [{"value": "1"}]}
    outcome = filter_json(document, paths("name"))
    assert outcome.document == {"name": "Ann"}
    assert outcome.released == ("name",)
    assert outcome.withheld == ("address", "telecom")


def test_a_path_covers_everything_beneath_it() -> None:
    document = {"address": {"city": "Tartu", "lines": [["a", "b"], {"x": 1}]}}
    assert filter_json(document, paths("address")).document == document


def test_nested_arrays_and_objects() -> None:
    document: dict[str, Any] = {
        "entry": [
            {"resource": {"code": "A", "telecom": ["1"]}, "fullUrl": "u1"},
            {"resource": {"code": "B", "secret": 1}},
            "scalar",
        ],
        "other": 1,
    }
    outcome = filter_json(document, paths("entry[*].resource.code"))
    assert outcome.document == {"entry": [{"resource": {"code": "A"}}, {"resource": {"code": "B"}}]}
    assert outcome.withheld == (
        "entry[*]",
        "entry[*].fullUrl",
        "entry[*].resource.secret",
        "entry[*].resource.telecom",
        "other",
    )


def test_arrays_of_arrays() -> None:
    document = {"a": {"b": [[{"c": 1, "d": 2}], [{"c": 3}, 4]]}}
    outcome = filter_json(document, paths("a.b[*][*].c"))
    assert outcome.document == {"a": {"b": [[{"c": 1}], [{"c": 3}]]}}
    assert outcome.withheld == ("a.b[*][*]", "a.b[*][*].d")


def test_path_expecting_an_object_does_not_cover_an_array() -> None:
    # "a.b" is not "a[*].b": strict paths never guess.
    outcome = filter_json({"a": [{"b": 1}]}, paths("a.b"))
    assert outcome.document == {}
    assert outcome.withheld == ("a",)


def test_telecom_items_path() -> None:
    outcome = filter_json({"telecom": [{"v": 1}, {"v": 2}], "x": 1}, paths("telecom[*]"))
    assert outcome.document == {"telecom": [{"v": 1}, {"v": 2}]}
    assert outcome.released == ("telecom[*]",)


def test_star_releases_everything_and_empty_set_nothing() -> None:
    document = {"a": [1, {"b": 2}]}
    assert filter_json(document, paths("*")).document == document
    outcome = filter_json(document, [])
    assert outcome.document == {}
    assert outcome.withheld == ("a",)
    assert filter_json([1, 2], []).document == []
    assert filter_json("text", []).document is None


def test_odd_keys_are_reported_quoted() -> None:
    outcome = filter_json({"a,b\n": 1, "ok": 2}, paths("ok"))
    assert outcome.withheld == ('["a,b\\n"]',)


def test_input_is_not_modified() -> None:
    document = {"name": "Ann", "address": "x"}
    filter_json(document, paths("name"))
    assert document == {"name": "Ann", "address": "x"}


def _body(document: object) -> bytes:
    return json.dumps(document).encode()


def test_filter_body_filters_and_reserialises() -> None:
    result = filter_body(
        _body({"name": "Ann", "address": "Tartu", "telecom": ["1"]}),
        content_type="application/json; charset=UTF-8",
        declaration=DECLARATION,
        subject="s",
        released_fields=("name", "telecom[*]"),
    )
    assert json.loads(result.body) == {"name": "Ann", "telecom": ["1"]}
    assert result.content_type == "application/json; charset=UTF-8"
    assert result.withheld == ("address",)
    assert result.released == ("name", "telecom[*]")


def test_filter_body_accepts_declared_structured_json_type() -> None:
    result = filter_body(
        b'{"name": "\xc3\xa4", "x": 1}',
        content_type="Application/VND.people+JSON",
        declaration=DECLARATION,
        subject="s",
        released_fields=("name",),
    )
    assert result.body == '{"name":"ä"}'.encode()


def unfilterable(body: bytes, content_type: str = "application/json", **limits: int) -> FilterError:
    with pytest.raises(FilterError) as info:
        filter_body(
            body,
            content_type=content_type,
            declaration=DECLARATION,
            subject="s",
            released_fields=("name",),
            limits=FilterLimits(**limits),
        )
    return info.value


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "text/csv", "application/problem+json", "", "application"],
)
def test_undeclared_or_non_json_media_type_is_refused(content_type: str) -> None:
    error = unfilterable(b"{}", content_type)
    assert isinstance(error, UnsupportedMediaType)
    assert error.code == "policies.unsupported_media_type"


@pytest.mark.parametrize("charset", ["iso-8859-1", "utf-16", '"latin1"', ""])
def test_charset_other_than_utf8_is_refused(charset: str) -> None:
    error = unfilterable(b"{}", f"application/json; charset={charset}")
    assert isinstance(error, UnsupportedCharset)
    assert error.code == "policies.unsupported_charset"


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": 1, "name": 2}',
        b'{"a": {"name": 1, "b": 2, "name": 3}}',
        b'[{"x": 1, "x": 1}]',
        b'{"name": "a"',
        b"",
        b"\xef\xbb\xbf{}",
        b'{"name": "\xff"}',
        '{"name": 1}'.encode("utf-16"),
        b'{"name": NaN}',
        b'{"name": Infinity}',
        b'{"name": "\\ud800"}',
        b"{} {}",
    ],
)
def test_invalid_bodies_are_refused(body: bytes) -> None:
    error = unfilterable(body)
    assert isinstance(error, BodyInvalid)
    assert error.code == "policies.body_invalid"


def test_body_above_size_limit_is_refused() -> None:
    error = unfilterable(b'{"name": "' + b"a" * 100 + b'"}', max_bytes=50)
    assert isinstance(error, BodyTooLarge)
    assert error.code == "policies.body_too_large"


@pytest.mark.parametrize("number", [b"1" * 65, b"1e999", b"-1e999", b"0." + b"1" * 70])
def test_numbers_beyond_limits_are_refused(number: bytes) -> None:
    assert isinstance(unfilterable(b'{"name": ' + number + b"}"), BodyTooLarge)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 65 + b"]" * 65,
        b'{"a":' * 65 + b"1" + b"}" * 65,
        b"[" * 100_000 + b"]" * 100_000,
        b"[" * 40 + b'{"a":' * 25 + b"1" + b"}" * 25 + b"]" * 40,
    ],
)
def test_too_deep_bodies_are_refused(body: bytes) -> None:
    error = unfilterable(body)
    assert isinstance(error, BodyTooDeep)
    assert error.code == "policies.body_too_deep"


def test_depth_limit_is_inclusive_and_ignores_brackets_in_strings() -> None:
    deep = b'{"name": ' + b"[" * 63 + b'"]]]\\"[[[{{"' + b"]" * 63 + b"}"
    result = filter_body(
        deep,
        content_type="application/json",
        declaration=DECLARATION,
        subject="s",
        released_fields=("name",),
    )
    assert json.loads(result.body) == json.loads(deep)
    assert isinstance(unfilterable(b"[" * 3 + b"]" * 3, max_depth=2), BodyTooDeep)


def test_filter_errors_share_the_parent_code_family() -> None:
    assert FilterError.code == "server.serverproxy.response_unfilterable"

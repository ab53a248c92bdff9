# ruff: noqa: PT017  (both outcomes are valid; the error is checked in except)
"""Property tests: every parser of outside input answers with a documented error, never a crash.

Covers identifiers, the r1 request line, path and headers, signed envelopes
(message signatures and the global configuration), and the consent
filter's body input (content coding and strict JSON).
"""

from __future__ import annotations

import gzip
import string
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs.identifiers import IdentifierError, MemberId, ServiceId, SubsystemId
from gateway.errors import GatewayError
from gateway.protocol import parse_exchange_request
from gateway.signing import REQUEST_TYP, CertificateCache, SignatureError, verify_message
from member_registry.errors import GlobalConfError
from member_registry.globalconf import GlobalConf
from policies import FilterLimits, decode_content
from policies.errors import FilterError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ID_CHARS = string.ascii_letters + string.digits + "'()+,-.=?/%:; \t\x00é"
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)
id_text = st.text(alphabet=ID_CHARS, max_size=60)


@FAST
@given(id_text)
def test_identifiers_parse_or_raise_identifier_error(value: str) -> None:
    for kind in (MemberId, SubsystemId, ServiceId):
        try:
            parsed = kind.parse(value)
        except IdentifierError as exc:
            assert exc.code
        else:
            assert str(parsed) == value


segment = st.one_of(
    id_text,
    st.sampled_from(["..", ".", "%2e%2e", "%2F", "%5c", "%00", "%", "%zz", "", "a?b", "#"]),
)
header_name = st.sampled_from(
    ["X-Road-Client", "X-Road-Id", "X-Road-UserId", "Renkei-Purpose", "Renkei-Subject",
     "X-Road-Security-Server", "X-Road-Request-Hash", "Renkei-Signature", "Connection",
     "Transfer-Encoding", "Content-Type", "X-Other"]
)


@FAST
@given(
    method=st.one_of(st.sampled_from(["GET", "POST", "get", "", "G E T"]), text),
    segments=st.lists(segment, max_size=9),
    query=st.one_of(st.just(""), text),
    headers=st.lists(st.tuples(header_name, st.one_of(id_text, text)), max_size=6),
)
def test_r1_requests_parse_or_raise_a_client_error(
    method: str, segments: list[str], query: str, headers: list[tuple[str, str]]
) -> None:
    target = "/r1/" + "/".join(segments) + (f"?{query}" if query else "")
    try:
        parsed = parse_exchange_request(method, target, headers)
    except GatewayError as exc:
        assert exc.code.startswith("client.")
        assert exc.status == 400
    else:
        assert parsed.message_id
        assert str(parsed.service).count("/") == 4


jws_part = st.text(alphabet=string.ascii_letters + string.digits + "-_=+/", max_size=60)


@FAST
@given(st.one_of(text, st.builds(lambda a, b, c: f"{a}.{b}.{c}", jws_part, jws_part, jws_part)))
def test_signed_messages_verify_or_raise_signature_error(token: str) -> None:
    try:
        verify_message(
            token, typ=REQUEST_TYP, expected_member=MemberId.parse("I/C/M"), trust_roots=(),
            roots_key=0, now=NOW, cache=CertificateCache(),
        )
    except SignatureError as exc:
        assert exc.code.startswith("server.")
    else:
        raise AssertionError("a token verified without any trust root")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)


@FAST
@given(json_values)
def test_global_configuration_documents_load_or_raise_a_conf_error(document: object) -> None:
    try:
        GlobalConf.from_json_dict(document)
    except GlobalConfError as exc:
        assert exc.code


@FAST
@given(
    body=st.one_of(st.binary(max_size=200), st.builds(gzip.compress, st.binary(max_size=200))),
    encoding=st.sampled_from([None, "identity", "gzip", "deflate", "br", "gzip, gzip", "x"]),
)
def test_filter_input_decodes_or_raises_a_filter_error(body: bytes, encoding: str | None) -> None:
    try:
        decode_content(body, encoding, FilterLimits())
    except FilterError as exc:
        assert exc.code


def test_a_compression_bomb_is_refused() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    with pytest.raises(FilterError) as caught:
        decode_content(bomb, "gzip", FilterLimits())
    assert caught.value.code == "policies.body_too_large"

"""The consumer's check of a signed response: every mutation is refused."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from certs import jws
from certs.ca import CertificateAuthority
from certs.identifiers import MemberId
from certs.keys import generate_key
from certs.profiles import make_csr
from gateway.consumer import (
    ArrivedRefusal,
    ArrivedResponse,
    ExpectedResponse,
    SignedResponse,
    check_response_description,
    verify_refusal,
    verify_response,
)
from gateway.descriptions import response_description
from gateway.errors import RemoteError, ResponseInvalid
from gateway.relay import response_headers_from
from gateway.signing import (
    REQUEST_TYP,
    RESPONSE_TYP,
    CertificateCache,
    MessageSigner,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PROVIDER = MemberId.parse("RENKEI/GOV/HOSP-B")
CONSUMER = MemberId.parse("RENKEI/GOV/HOSP-A")
SKEW_S = 30
BODY = b'{"name": "Ada"}'
HEADERS = (("content-type", "application/json"), ("etag", '"1"'))


def _sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(
        tmp_path_factory.mktemp("ca") / "ca", instance="RENKEI", now=NOW - timedelta(days=1)
    )


def _signer(ca: CertificateAuthority, member: MemberId) -> MessageSigner:
    key = generate_key("ec-p256")
    cert = ca.issue(make_csr(key, member, "sign"), profile="sign", now=NOW - timedelta(hours=1))
    return MessageSigner(member=member, key=key, chain=(cert,))


@pytest.fixture(scope="module")
def provider(ca: CertificateAuthority) -> MessageSigner:
    return _signer(ca, PROVIDER)


@pytest.fixture(scope="module")
def other_member(ca: CertificateAuthority) -> MessageSigner:
    return _signer(ca, CONSUMER)


EXPECTED = ExpectedResponse(
    member=PROVIDER,
    request_id=str(uuid.UUID(int=1)),
    request_hash="cmVxdWVzdC1oYXNo",
    request_issued_at=int(NOW.timestamp()) - 1,
)
ARRIVED = ArrivedResponse(
    status=200,
    headers=HEADERS,
    body_sha256=_sha256(BODY),
    body_length=len(BODY),
    withheld_headers=("telecom[*]",),
    consent_headers=("c-1,c-2",),
)


def _description(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "request_id": EXPECTED.request_id,
        "request_hash": EXPECTED.request_hash,
        "status": 200,
        "headers": HEADERS,
        "body_sha256": _sha256(BODY),
        "body_length": len(BODY),
        "issued_at": int(NOW.timestamp()),
        "error": None,
        "withheld": ("telecom[*]",),
        "consent_ids": ("c-1", "c-2"),
    }
    arguments.update(overrides)
    return response_description(**arguments)


def _verify(
    ca: CertificateAuthority,
    token: str,
    arrived: ArrivedResponse = ARRIVED,
    expected: ExpectedResponse = EXPECTED,
    now: datetime = NOW,
) -> SignedResponse:
    return verify_response(
        token,
        arrived,
        expected,
        trust_roots=(ca.certificate,),
        roots_key=1,
        now=now,
        clock_skew_s=SKEW_S,
        cache=CertificateCache(),
    )


def test_an_untouched_response_verifies(
    ca: CertificateAuthority, provider: MessageSigner
) -> None:
    token = provider.sign(_description(), typ=RESPONSE_TYP)
    assert _verify(ca, token) == SignedResponse(("telecom[*]",), ("c-1", "c-2"))


@pytest.mark.parametrize(
    "arrived",
    [
        dataclasses.replace(ARRIVED, status=201),
        dataclasses.replace(ARRIVED, headers=(*HEADERS, ("x-extra", "1"))),
        dataclasses.replace(ARRIVED, headers=HEADERS[:1]),
        dataclasses.replace(ARRIVED, headers=(("content-type", "text/plain"), HEADERS[1])),
        dataclasses.replace(ARRIVED, headers=tuple(reversed(HEADERS))),
        dataclasses.replace(ARRIVED, body_sha256=_sha256(b'{"name": "Eve"}')),
        dataclasses.replace(ARRIVED, body_length=len(BODY) + 1),
        dataclasses.replace(ARRIVED, withheld_headers=()),
        dataclasses.replace(ARRIVED, withheld_headers=("telecom[*],name",)),
        dataclasses.replace(ARRIVED, consent_headers=("c-1",)),
        dataclasses.replace(ARRIVED, consent_headers=("c-1,c-2", "c-3")),
    ],
    ids=[
        "status", "header_added", "header_removed", "header_changed", "headers_reordered",
        "body", "body_length", "withheld_header_dropped", "withheld_header_extended",
        "consent_header_changed", "consent_header_duplicated",
    ],
)
def test_a_response_changed_after_signing_is_refused(
    ca: CertificateAuthority, provider: MessageSigner, arrived: ArrivedResponse
) -> None:
    token = provider.sign(_description(), typ=RESPONSE_TYP)
    with pytest.raises(ResponseInvalid) as caught:
        _verify(ca, token, arrived=arrived)
    assert caught.value.code == "server.clientproxy.response_invalid"


@pytest.mark.parametrize(
    "expected",
    [
        dataclasses.replace(EXPECTED, request_hash="b3RoZXItcmVxdWVzdA"),
        dataclasses.replace(EXPECTED, request_id=str(uuid.UUID(int=2))),
    ],
    ids=["request_hash", "request_id"],
)
def test_a_response_to_another_request_is_refused(
    ca: CertificateAuthority, provider: MessageSigner, expected: ExpectedResponse
) -> None:
    token = provider.sign(_description(), typ=RESPONSE_TYP)
    with pytest.raises(ResponseInvalid, match="differs"):
        _verify(ca, token, expected=expected)


@pytest.mark.parametrize(
    "signed",
    [
        {"withheld": ("name",)},
        {"withheld": ()},
        {"consent_ids": ("c-9",)},
        {"error": "server.serverproxy.access_denied"},
    ],
    ids=["withheld_other", "withheld_none", "consent_other", "error_set"],
)
def test_signed_lists_that_do_not_match_what_arrived_are_refused(
    ca: CertificateAuthority, provider: MessageSigner, signed: dict[str, Any]
) -> None:
    token = provider.sign(_description(**signed), typ=RESPONSE_TYP)
    with pytest.raises(ResponseInvalid):
        _verify(ca, token)


def test_a_tampered_signature_or_payload_is_refused(
    ca: CertificateAuthority, provider: MessageSigner
) -> None:
    token = provider.sign(_description(), typ=RESPONSE_TYP)
    header, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["status"] = 201
    forged_payload = base64.urlsafe_b64encode(jws.canonical_json(forged)).rstrip(b"=").decode()
    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    for bad in (f"{header}.{forged_payload}.{signature}", f"{header}.{payload}.{flipped}"):
        with pytest.raises(ResponseInvalid, match="signature refused"):
            _verify(ca, bad, arrived=dataclasses.replace(ARRIVED, status=201))


def test_a_response_signed_by_another_member_is_refused(
    ca: CertificateAuthority, other_member: MessageSigner
) -> None:
    token = other_member.sign(_description(), typ=RESPONSE_TYP)
    with pytest.raises(ResponseInvalid, match="signature refused"):
        _verify(ca, token)


def test_a_request_token_is_not_a_response(
    ca: CertificateAuthority, provider: MessageSigner
) -> None:
    token = provider.sign(_description(), typ=REQUEST_TYP)
    with pytest.raises(ResponseInvalid, match="signature refused"):
        _verify(ca, token)


@pytest.mark.parametrize(
    ("offset_s", "accepted"),
    [
        (0, True),
        (SKEW_S, True),  # the provider's clock ahead, within tolerance
        (SKEW_S + 1, False),  # dated in the future beyond it
        (-1 - SKEW_S, True),  # before the request, within tolerance
        (-2 - SKEW_S, False),  # older than its own request beyond it
    ],
)
def test_the_response_issue_time_is_bounded_by_the_clock_skew(
    ca: CertificateAuthority, provider: MessageSigner, offset_s: int, accepted: bool
) -> None:
    issued_at = int(NOW.timestamp()) + offset_s
    token = provider.sign(_description(issued_at=issued_at), typ=RESPONSE_TYP)
    if accepted:
        _verify(ca, token)
        return
    with pytest.raises(ResponseInvalid) as caught:
        _verify(ca, token)
    assert caught.value.code == "server.clientproxy.clock_skew"


@pytest.mark.parametrize(
    "signed",
    [
        [],
        "text",
        {**_description(), "issued_at": "1"},
        {**_description(), "issued_at": True},
        {**_description(), "withheld": "telecom[*]"},
        {**_description(), "consent_ids": [1]},
        {**_description(), "extra": 1},
        {**_description(), "v": 2},
        {**_description(), "kind": "request"},
    ],
)
def test_malformed_signed_descriptions_are_refused(signed: Any) -> None:
    with pytest.raises(ResponseInvalid):
        check_response_description(signed, ARRIVED, EXPECTED, now=NOW, clock_skew_s=SKEW_S)


def test_a_response_description_with_a_second_status_is_refused(
    ca: CertificateAuthority, provider: MessageSigner
) -> None:
    # Genuinely signed by the provider's key: a reader keeping the first key would see a
    # 500, Python's json keeps the last (200, which matches what arrived).
    payload = b'{"status":500,' + jws.canonical_json(_description())[1:]
    token = jwt.api_jws.encode(
        payload, provider.key, algorithm="ES256",
        headers={"typ": RESPONSE_TYP, "x5c": [jws.certificate_der_base64(provider.chain[0])]},
    )
    with pytest.raises(ResponseInvalid, match="duplicate key 'status'"):
        _verify(ca, token)


def test_a_cookie_signed_by_a_provider_node_is_refused(
    ca: CertificateAuthority, provider: MessageSigner
) -> None:
    """Set-Cookie never crosses the federation: an honest provider node drops it from its
    backend's answer; a provider node that signs one anyway gets its response refused,
    because the consumer node drops it from what arrived before it compares."""
    token = provider.sign(_description(headers=(*HEADERS, ("set-cookie", "s=1"))), typ=RESPONSE_TYP)
    arrived = dataclasses.replace(
        ARRIVED, headers=response_headers_from([*HEADERS, ("Set-Cookie", "s=1")])
    )
    assert ("set-cookie", "s=1") not in arrived.headers
    with pytest.raises(ResponseInvalid):
        _verify(ca, token, arrived=arrived)


REFUSAL_BODY = b'{"type": "server.serverproxy.access_denied", "message": "no access right"}'
REFUSAL = ArrivedRefusal(
    status=500,
    error_code="server.serverproxy.access_denied",
    content_type="application/json",
    body=REFUSAL_BODY,
    request_hash=EXPECTED.request_hash,
    signature=None,
)


def _refusal_description(**overrides: Any) -> dict[str, Any]:
    return _description(
        **{
            "status": 500,
            "headers": (("content-type", "application/json"),),
            "body_sha256": _sha256(REFUSAL_BODY),
            "body_length": len(REFUSAL_BODY),
            "error": "server.serverproxy.access_denied",
            "withheld": (),
            "consent_ids": (),
            **overrides,
        }
    )


def _verify_refusal(ca: CertificateAuthority, refusal: ArrivedRefusal) -> RemoteError:
    return verify_refusal(
        refusal, EXPECTED, trust_roots=(ca.certificate,), roots_key=1, now=NOW,
        clock_skew_s=SKEW_S, cache=CertificateCache(),
    )  # fmt: skip


def test_a_signed_refusal_is_relayed_with_its_signature(
    ca: CertificateAuthority, provider: MessageSigner
) -> None:
    token = provider.sign(_refusal_description(), typ=RESPONSE_TYP)
    relayed = _verify_refusal(ca, dataclasses.replace(REFUSAL, signature=token))
    assert (relayed.code, relayed.status, relayed.message) == (
        "server.serverproxy.access_denied", 500, "no access right",
    )
    assert relayed.signature == token
    assert relayed.body_sha256 == _sha256(REFUSAL_BODY)


def test_an_unsigned_refusal_is_not_relayed(ca: CertificateAuthority) -> None:
    with pytest.raises(ResponseInvalid) as caught:
        _verify_refusal(ca, REFUSAL)
    assert caught.value.code == "server.clientproxy.refusal_unsigned"


@pytest.mark.parametrize(
    ("signed", "arrived"),
    [
        ({}, {"error_code": "client.bad_request"}),  # another code than signed
        ({}, {"status": 400}),
        ({}, {"body": REFUSAL_BODY.replace(b"no access", b"any access")}),
        ({}, {"content_type": "application/xml"}),
        ({}, {"request_hash": "b3RoZXItcmVxdWVzdA"}),
        ({"request_id": str(uuid.UUID(int=2))}, {}),
        ({"error": None}, {}),  # a success signature does not cover a refusal
    ],
    ids=["code", "status", "body", "content_type", "request_hash", "request_id", "no_error"],
)
def test_a_refusal_changed_after_signing_is_refused(
    ca: CertificateAuthority,
    provider: MessageSigner,
    signed: dict[str, Any],
    arrived: dict[str, Any],
) -> None:
    token = provider.sign(_refusal_description(**signed), typ=RESPONSE_TYP)
    with pytest.raises(ResponseInvalid) as caught:
        _verify_refusal(ca, dataclasses.replace(REFUSAL, signature=token, **arrived))
    assert caught.value.code == "server.clientproxy.response_invalid"


def test_a_refusal_signed_by_another_member_is_refused(
    ca: CertificateAuthority, other_member: MessageSigner
) -> None:
    token = other_member.sign(_refusal_description(), typ=RESPONSE_TYP)
    with pytest.raises(ResponseInvalid):
        _verify_refusal(ca, dataclasses.replace(REFUSAL, signature=token))


def test_the_subject_the_provider_signed_is_what_the_consumer_logs(
    ca: CertificateAuthority, provider: MessageSigner
) -> None:
    token = provider.sign(_description(subject="example"), typ=RESPONSE_TYP)
    assert _verify(ca, token).subject == "example"
    assert _verify(ca, provider.sign(_description(), typ=RESPONSE_TYP)).subject is None


def test_a_malformed_signed_subject_is_refused(
    ca: CertificateAuthority, provider: MessageSigner
) -> None:
    description = {**_description(), "subject": None}  # present, but no subject
    with pytest.raises(ResponseInvalid):
        _verify(ca, provider.sign(description, typ=RESPONSE_TYP))
    with pytest.raises(ResponseInvalid, match="subject"):
        _verify(ca, provider.sign({**_description(), "subject": ["a"]}, typ=RESPONSE_TYP))


def test_a_break_glass_release_is_relayed_only_as_signed(
    ca: CertificateAuthority, provider: MessageSigner
) -> None:
    marked = dataclasses.replace(ARRIVED, break_glass_headers=("d-1",))
    token = provider.sign(_description(break_glass=("d-1",)), typ=RESPONSE_TYP)
    assert _verify(ca, token, arrived=marked).break_glass == ("d-1",)
    # The mark removed on the way, added to an unmarked response, or another rule's id.
    with pytest.raises(ResponseInvalid, match="break-glass"):
        _verify(ca, token)
    unmarked = provider.sign(_description(), typ=RESPONSE_TYP)
    with pytest.raises(ResponseInvalid, match="break-glass"):
        _verify(ca, unmarked, arrived=marked)
    with pytest.raises(ResponseInvalid, match="break-glass"):
        _verify(ca, token, arrived=dataclasses.replace(ARRIVED, break_glass_headers=("d-2",)))
    malformed = provider.sign({**_description(), "break_glass": "d-1"}, typ=RESPONSE_TYP)
    with pytest.raises(ResponseInvalid, match="break-glass list is malformed"):
        _verify(ca, malformed, arrived=marked)

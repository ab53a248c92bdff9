"""``X-Road-Request-Hash``: PR-REST §4.3's formula over a head a client can rebuild."""

from __future__ import annotations

import base64
import hashlib

from gateway.protocol import parse_exchange_request
from gateway.request_hash import request_head, xroad_request_hash

REQUEST_ID = "f92591a3-6bf0-49b1-987b-0dd78c034cc3"


def _b64_sha512(data: bytes) -> str:
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_the_head_is_written_as_documented() -> None:
    request = parse_exchange_request(
        "PUT",
        "/r1/DEV/COM/222/TESTSERVICE/petstore/v2/pets/5657082955040009?a=1",
        [
            ("Host", "ss.example"),
            ("Renkei-Purpose", "billing"),
            ("accept", "application/json"),
            ("X-Road-Client", "DEV/COM/222/TEST%43LIENT"),
            ("User-Agent", "curl/8"),
            ("X-Road-Issue", "MT324223MSD"),
            ("Content-Type", "application/json"),
            ("X-Road-UserId", "EE12345678901"),
            ("Connection", "keep-alive"),
            ("Content-Length", "11"),
            ("X-Road-Id", "fa2e18a5-c2cb-4d09-b994-f57727f7c3fb"),
        ],
    )
    assert request_head(request, REQUEST_ID) == (
        b"PUT\r\n"
        b"/r1/DEV/COM/222/TESTSERVICE/petstore/v2/pets/5657082955040009?a=1\r\n"
        b"accept:application/json\r\n"
        b"content-type:application/json\r\n"
        b"x-road-client:DEV/COM/222/TESTCLIENT\r\n"
        b"x-road-id:fa2e18a5-c2cb-4d09-b994-f57727f7c3fb\r\n"
        b"x-road-userid:EE12345678901\r\n"
        b"x-road-issue:MT324223MSD\r\n"
        b"renkei-purpose:billing\r\n"
        b"x-road-request-id:f92591a3-6bf0-49b1-987b-0dd78c034cc3\r\n"
    )


def test_a_generated_message_id_is_part_of_the_head() -> None:
    request = parse_exchange_request(
        "GET", "/r1/DEV/COM/222/TESTSERVICE/petstore", [("X-Road-Client", "DEV/COM/222/C")],
        instance="DEV",
    )
    assert f"x-road-id:{request.message_id}\r\n".encode() in request_head(request, REQUEST_ID)


def test_without_a_body_the_hash_is_sha512_of_the_head() -> None:
    head = b"GET\r\n/r1/A/B/C/D/E\r\nx-road-client:A/B/C/D\r\n"
    assert xroad_request_hash(head, None) == _b64_sha512(head)


def test_with_a_body_the_hash_is_sha512_of_both_digests() -> None:
    head, body = b"POST\r\n/r1/A/B/C/D/E\r\n", b'{"name": "doggie"}'
    expected = base64.b64encode(
        hashlib.sha512(hashlib.sha512(head).digest() + hashlib.sha512(body).digest()).digest()
    ).decode()
    value = xroad_request_hash(head, hashlib.sha512(body).digest())
    assert value == expected
    assert len(value) == 88  # as the spec's examples: base64 of 64 bytes
    assert value != xroad_request_hash(head, None)
    assert value != xroad_request_hash(head, hashlib.sha512(body + b" ").digest())


def test_every_part_of_the_request_changes_the_hash() -> None:
    def value(method: str = "GET", target: str = "/r1/A/B/C/D/E/x",
              extra: tuple[tuple[str, str], ...] = ()) -> str:
        request = parse_exchange_request(
            method, target, [("X-Road-Client", "A/B/C/D"), ("X-Road-Id", "m"), *extra]
        )
        return xroad_request_hash(request_head(request, REQUEST_ID), None)

    base = value()
    assert value("DELETE") != base
    assert value(target="/r1/A/B/C/D/E/y") != base
    assert value(target="/r1/A/B/C/D/E/x?q=1") != base
    assert value(extra=(("X-Custom", "1"),)) != base
    assert value(extra=(("X-Road-UserId", "u"),)) != base
    # Headers the node drops do not count.
    assert value(extra=(("User-Agent", "other"), ("X-Road-Request-Hash", "forged"))) == base

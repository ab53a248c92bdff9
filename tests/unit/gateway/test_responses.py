"""Error responses: the Accept matrix of X-Road's client proxy and its status rule."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from gateway.responses import error_body, error_media_type, error_response, r1_status


# X-Road's ClientRestMessageHandler.decideErrorResponseContentType: the first of
# text/xml, application/xml, text/* named in Accept wins (text/* as text/xml);
# anything else, or nothing, gets JSON.
@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("text/plain", "application/json"),
        ("text/html, image/png", "application/json"),
        ("text/xml", "text/xml"),
        ("TEXT/XML; charset=utf-8", "text/xml"),
        ("application/xml", "application/xml"),
        ("text/*", "text/xml"),
        ("application/json, application/xml", "application/xml"),
        ("text/html, text/xml;q=0.5, application/xml", "text/xml"),
        ("application/xml;q=0.1, application/json", "application/xml"),
        ("image/png,text/*;q=0.8", "text/xml"),
        ("application/soap+xml", "application/json"),
        # The one refinement: q=0 says "not acceptable", so that type is skipped.
        ("application/xml;q=0, text/xml", "text/xml"),
        ("text/xml; q=0", "application/json"),
    ],
)
def test_the_error_media_type_follows_x_roads_accept_matrix(
    accept: str | None, media: str
) -> None:
    assert error_media_type(accept) == media


def test_the_xml_body_keeps_code_message_and_detail() -> None:
    body, content_type = error_body("server.serverproxy.access_denied", "a < b & c", "d-1",
                                    xml="text/xml")
    assert content_type == "text/xml; charset=utf-8"
    root = ElementTree.fromstring(body)
    assert [(child.tag, child.text) for child in root] == [
        ("type", "server.serverproxy.access_denied"),
        ("message", "a < b & c"),
        ("detail", "d-1"),
    ]


def test_error_response_answers_in_the_chosen_type() -> None:
    xml = error_response("client.bad_request", "m", 400, accept="text/xml", detail="d")
    assert xml.content_type == "text/xml"
    assert xml.headers["X-Road-Error"] == "client.bad_request"
    plain = error_response("client.bad_request", "m", 400, accept=None, detail="d")
    assert plain.content_type == "application/json"
    assert plain.body is not None
    assert json.loads(bytes(plain.body)) == {  # type: ignore[arg-type]
        "type": "client.bad_request", "message": "m", "detail": "d"
    }


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "client.bad_request", 400),
        (409, "client.duplicate_message_id", 400),
        (405, "client.method_not_allowed", 400),
        (500, "server.serverproxy.access_denied", 500),
        (503, "server.clientproxy.network_error", 500),
        (504, "server.clientproxy.timeout", 500),
        (504, "server.serverproxy.service_timeout", 500),
        (503, "server.database_unavailable", 500),
        # Deliberate differences (docs/protocol.md).
        (401, "client.authentication_failed", 401),
        (408, "client.request_timeout", 408),
        (413, "client.body_too_large", 413),
        (429, "client.too_many_requests", 429),
    ],
)
def test_r1_statuses_follow_x_road_with_documented_exceptions(
    status: int, code: str, expected: int
) -> None:
    assert r1_status(status, code) == expected

"""End-to-end exchanges through real node processes of a sandbox federation."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.functional.sandbox_helpers import client_headers, node

CONSUMER = "RENKEI/GOV/HOSP-A/EHR"
OUTSIDER = "RENKEI/COM/INSURER/CLAIMS"
ECHO = "RENKEI/GOV/HOSP-B/EHR/echo"
PATIENTS = "RENKEI/GOV/HOSP-B/EHR/patients"
HOSP_A = "RENKEI/GOV/HOSP-A/ss1"
HOSP_B = "RENKEI/GOV/HOSP-B/ss1"


def client_url(federation: dict[str, Any], node_id: str = HOSP_A) -> str:
    return str(node(federation, node_id)["client_url"])


async def audit_rows(
    session: aiohttp.ClientSession, federation: dict[str, Any], node_id: str, message_id: str
) -> list[dict[str, Any]]:
    entry = node(federation, node_id)
    async with session.get(
        f"{entry['management_url']}/api/audit/rows",
        params={"message_id": message_id},
        headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
    ) as response:
        assert response.status == 200
        return list((await response.json())["rows"])


async def test_get_with_query_and_user_headers_passes_unchanged(
    federation: dict[str, Any],
) -> None:
    message_id = str(uuid.uuid4())
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            URL(f"{client_url(federation)}/r1/{ECHO}/some/path%20x?b=2&a=1&a=%2F", encoded=True),
            headers={
                **client_headers(federation, CONSUMER),
                "X-Road-Id": message_id,
                "X-Custom-Header": "kept as is",
                "Accept": "application/json",
            },
        ) as response,
    ):
        assert response.status == 200, await response.text()
        echoed = await response.json()
        assert response.headers["X-Road-Id"] == message_id
        assert response.headers["X-Road-Client"] == CONSUMER
        assert response.headers["X-Road-Service"] == ECHO
        assert uuid.UUID(response.headers["X-Road-Request-Id"])
        assert len(response.headers["X-Road-Request-Hash"]) == 88  # base64 SHA-512
        assert response.headers["X-Echo"] == "yes"
    assert echoed["method"] == "GET"
    assert echoed["path"] == "/echo/some/path%20x"
    assert echoed["query"] == "b=2&a=1&a=%2F"
    headers = {name.lower(): value for name, value in echoed["headers"]}
    assert headers["x-custom-header"] == "kept as is"
    assert headers["x-road-client"] == CONSUMER
    assert "renkei-signature" not in headers


async def test_post_with_a_body(federation: dict[str, Any]) -> None:
    body = json.dumps({"note": "äöü", "n": list(range(2000))}).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{client_url(federation)}/r1/{ECHO}/notes",
            data=body,
            headers={**client_headers(federation, CONSUMER), "Content-Type": "application/json"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        echoed = await response.json()
    assert echoed["method"] == "POST"
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert echoed["body_length"] == len(body)


async def test_large_body_is_spooled_and_arrives_intact(federation: dict[str, Any]) -> None:
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB, beyond the in-memory limit
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            f"{client_url(federation)}/r1/{ECHO}/blob",
            data=body,
            headers={
                **client_headers(federation, CONSUMER),
                "Content-Type": "application/octet-stream",
            },
        ) as response,
    ):
        assert response.status == 200, await response.text()
        echoed = await response.json()
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()


async def test_access_denied_is_refused_and_logged(federation: dict[str, Any]) -> None:
    message_id = str(uuid.uuid4())
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{client_url(federation)}/r1/{ECHO}/x",
            headers={**client_headers(federation, OUTSIDER), "X-Road-Id": message_id},
        ) as response:
            assert response.status == 500
            assert response.headers["X-Road-Error"] == "server.serverproxy.access_denied"
            document = await response.json()
            assert document["type"] == "server.serverproxy.access_denied"
            assert uuid.UUID(document["detail"])
        provider_rows = await audit_rows(session, federation, HOSP_B, message_id)
        consumer_rows = await audit_rows(session, federation, HOSP_A, message_id)
    assert [r["error_code"] for r in provider_rows] == ["server.serverproxy.access_denied"]
    assert [r["error_code"] for r in consumer_rows] == ["server.serverproxy.access_denied"]


async def test_unknown_service(federation: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{client_url(federation)}/r1/RENKEI/GOV/HOSP-B/EHR/nosuchservice",
            headers=client_headers(federation, CONSUMER),
        ) as response,
    ):
        assert response.headers["X-Road-Error"] == "server.serverproxy.unknown_service"


async def test_unknown_provider_subsystem(federation: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{client_url(federation)}/r1/RENKEI/GOV/NOBODY/EHR/x",
            headers=client_headers(federation, CONSUMER),
        ) as response,
    ):
        assert response.headers["X-Road-Error"] == "server.clientproxy.unknown_subsystem"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ([], "client.bad_request"),
        ([("X-Road-Client", CONSUMER), ("X-Road-Client", CONSUMER)], "client.bad_request"),
        ([("X-Road-Client", "RENKEI/GOV")], "client.invalid_client_identifier"),
        ([("X-Road-Client", "RENKEI/GOV/HOSP-B/EHR")], "client.unknown_client"),
    ],
)
async def test_client_header_errors(
    federation: dict[str, Any], headers: list[tuple[str, str]], code: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{client_url(federation)}/r1/{ECHO}", headers=aiohttp.typedefs.CIMultiDict(headers)
        ) as response,
    ):
        assert response.status == 400
        assert response.headers["X-Road-Error"] == code
        assert (await response.json())["type"] == code


async def test_a_member_level_client_must_prove_itself_on_a_shared_node(
    federation: dict[str, Any],
) -> None:
    # HOSP-A's node also hosts the insurer, so its client port proves every caller;
    # a member-level client has no credential of its own there, and a subsystem's
    # token does not prove its member.
    token = client_headers(federation, CONSUMER).get("Renkei-Client-Token")
    for extra in ({}, {"Renkei-Client-Token": token} if token else {}):
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{client_url(federation)}/r1/{ECHO}",
                headers={"X-Road-Client": "RENKEI/GOV/HOSP-A", **extra},
            ) as response,
        ):
            assert response.status == 401
            assert response.headers["X-Road-Error"] == "client.authentication_failed"


async def test_errors_in_xml_when_asked(federation: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{client_url(federation)}/r1/{ECHO}", headers={"Accept": "application/xml"}
        ) as response,
    ):
        assert response.status == 400
        text = await response.text()
        assert response.content_type == "application/xml"
        assert "<type>client.bad_request</type>" in text


async def test_fhir_record_and_audit_rows_on_both_sides(federation: dict[str, Any]) -> None:
    message_id = str(uuid.uuid4())
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{client_url(federation)}/r1/{PATIENTS}/Patient/pat2",
            headers={
                **client_headers(federation, CONSUMER),
                "X-Road-Id": message_id,
                "Renkei-Purpose": "treatment",
                "Renkei-Subject": "pat2",
            },
        ) as response:
            assert response.status == 200, await response.text()
            request_hash = response.headers["X-Road-Request-Hash"]
        consumer = await audit_rows(session, federation, HOSP_A, message_id)
        provider = await audit_rows(session, federation, HOSP_B, message_id)
        assert len(consumer) == len(provider) == 1
        # Both rows name the signed request by its SHA-512 (what the response's
        # signature binds); the client's X-Road-Request-Hash is PR-REST §4.3's
        # hash of the request as sent (test_xroad_rest_conformance.py).
        signed = hashlib.sha512(consumer[0]["request_signature"].encode()).digest()
        assert request_hash != base64.b64encode(signed).decode()
        for row in (consumer[0], provider[0]):
            assert row["request_hash"] == base64.b64encode(signed).decode()
            assert row["status"] == 200
            assert row["client"] == CONSUMER
            assert row["service"] == PATIENTS
            assert row["purpose"] == "treatment"
            assert row["subject"] == "pat2"
            assert row["request_signature"]
            assert row["response_signature"]
        assert consumer[0]["role"] == "consumer"
        assert provider[0]["role"] == "provider"
        assert consumer[0]["response_body_sha256"] == provider[0]["response_body_sha256"]
        for node_id in (HOSP_A, HOSP_B):
            entry = node(federation, node_id)
            async with session.get(
                f"{entry['management_url']}/api/audit/verify",
                headers={"Authorization": f"Bearer {entry['tokens']['auditor']}"},
            ) as response:
                result = await response.json()
                assert response.status == 200, result
                assert result["ok"] is True
                assert result["rows"] >= 1


async def test_gtfs_feed_to_a_global_group_member(federation: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{client_url(federation)}/r1/RENKEI/COM/TRANSIT/TIMETABLE/gtfs/feed.zip",
            headers=client_headers(federation, CONSUMER),
        ) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "application/zip"
        assert (await response.read())[:2] == b"PK"


async def test_management_api_requires_a_token(federation: dict[str, Any]) -> None:
    entry = node(federation, HOSP_B)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{entry['management_url']}/api/audit/rows") as response:
            assert response.status == 401
        async with session.get(
            f"{entry['management_url']}/api/audit/rows",
            headers={"Authorization": f"Bearer {node(federation, HOSP_A)['tokens']['auditor']}"},
        ) as response:
            assert response.status == 401  # another node's token: wrong audience
        async with session.get(
            f"{entry['management_url']}/api/audit/rows",
            headers={"Authorization": f"Bearer {entry['tokens']['consent']}"},
        ) as response:
            assert response.status == 403
        async with session.get(f"{entry['management_url']}/readyz") as response:
            assert response.status == 200
            assert (await response.json())["ready"] is True

"""The console over HTTP: headers, sessions, CSRF, roles, citizen isolation, the trail.

Runs the node's real management application (with its operations and the
console mounted as on a node) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import insert

from certs.identifiers import ServiceId, SubsystemId
from certs.keys import generate_key
from gateway.app import client_app, management_app, peer_app
from gateway.audit.integrity import ChainCheck
from gateway.audit.models import AuditRow
from gateway.console.app import install_console
from gateway.console.auth_views import safe_next
from gateway.console.links import CitizenLinks
from gateway.console.security import CSP
from gateway.console.sessions import COOKIE, SessionStore
from gateway.ops_api import NodeOps, install_ops
from gateway.rejections import MANAGEMENT_BEARER, RejectionLog
from gateway.schema import upgrade_node_schema
from gateway.tokens import TokenIssuer
from policies.declarations import PurposeDeclaration, ServiceDeclaration
from policies.store import PolicyStore
from tests.unit.gateway.db_fixtures import EngineFactory, engines  # noqa: F401 - fixture

NOW = datetime.now(UTC).replace(microsecond=0)  # the token checks use the real clock
NODE = "RENKEI/GOV/HOSP-B/ss1"
SERVICE = ServiceId.parse("RENKEI/GOV/HOSP-B/EHR/patients")
CONSUMER = SubsystemId.parse("RENKEI/GOV/HOSP-A/EHR")
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]

# Every console route and the roles it admits (None: no login needed).
PAGES = {
    "/console/overview": {"admin"},
    "/console/trail": {"admin"},
    "/console/audit": {"admin", "auditor"},
    "/console/audit/rows/1": {"admin", "auditor"},
    "/console/audit/chain": {"admin", "auditor"},
    "/console/citizen": {"citizen"},
}
ACTIONS = {"/console/maintenance": {"admin"}, "/console/citizen/consents/{id}/revoke": {"citizen"}}


class Node:
    def __init__(self, ctx: Any, key: Any, sessions: SessionStore) -> None:
        self.ctx, self.sessions = ctx, sessions
        self.issuer = TokenIssuer(key, audience=NODE)
        self.links = CitizenLinks(key, NODE)
        self.ops = NodeOps()

    def app(self) -> web.Application:
        management = management_app(self.ctx, self.issuer)
        install_ops(self.ctx, self.ops, client=client_app(self.ctx), peer=peer_app(self.ctx),
                    management=management)  # fmt: skip
        install_console(management, maintenance=self.ops.maintenance, links=self.links,
                        sessions=self.sessions)  # fmt: skip
        return management

    def token(self, role: str, subject: str = "alice") -> str:
        return self.issuer.issue(role=role, subject=subject, now=NOW, ttl=timedelta(hours=1))

    def link(self, subject: str, ttl: timedelta = timedelta(hours=1)) -> str:
        return self.links.issue(subject, now=NOW, ttl=ttl)[0]


@pytest.fixture
async def node(engines: EngineFactory) -> AsyncIterator[Node]:  # noqa: F811 - fixture
    engine = engines()
    await upgrade_node_schema(engine)
    policy = PolicyStore(engine)
    await policy.declare_service(ServiceDeclaration(
        SERVICE, media_types=("application/fhir+json",),
        fields=("Patient.name", "Patient.telecom", "Patient.address"), public_fields=(),
    ))  # fmt: skip
    await policy.declare_purpose(PurposeDeclaration(CONSUMER, "treatment", "Medical treatment"))
    certificate = SimpleNamespace(
        not_valid_after_utc=NOW + timedelta(days=30),
        subject=SimpleNamespace(rfc4514_string=lambda: "CN=hosp-b"),
    )
    member = SimpleNamespace(
        id="RENKEI/GOV/HOSP-A", name="Hospital A", subsystems=(CONSUMER,),
        subsystem_names={CONSUMER: "Electronic health records"},
    )  # fmt: skip
    conf = SimpleNamespace(
        version=7, generated_at=NOW, expires_at=NOW + timedelta(hours=1), members=(member,),
        has_subsystem=lambda subsystem: subsystem == CONSUMER, global_groups=(),
        member=lambda member_id: None,
    )
    ctx = SimpleNamespace(
        engine=engine, policy=policy, clock=lambda: NOW, node_id=NODE,
        conf=SimpleNamespace(latest=lambda: conf, current=lambda now: conf),
        auth_certificate=certificate,
        signers={"RENKEI/GOV/HOSP-B": SimpleNamespace(chain=(certificate,))},
        audit=SimpleNamespace(queue_depth=0),
        settings=SimpleNamespace(max_body_bytes=1024, receipt_controller={}),
        rejections=RejectionLog(), chain_check=ChainCheck(), ngsi_ld=None,
        timestamping=lambda now: {"ok": True},
        certificate_status=lambda: SimpleNamespace(readiness=lambda now: {
            "auth": {"ok": True}, "RENKEI/GOV/HOSP-B": {"ok": False}}),
    )  # fmt: skip
    return Node(ctx, generate_key(), SessionStore())


async def grant(node: Node, subject: str) -> str:
    consent = await node.ctx.policy.grant_consent(
        subject=subject, consumer=CONSUMER, service=SERVICE, purpose="treatment",
        fields=["Patient.name"], valid_from=NOW - timedelta(minutes=1), valid_until=None,
        now=NOW - timedelta(minutes=1),
    )  # fmt: skip
    return str(consent.id)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def login(client: TestClient[Any, Any], token: str) -> str:
    """Log in through the form; the CSRF token of the new session."""
    form = await client.get("/console/login")
    response = await client.post(
        "/console/login", data={"csrf": csrf_of(await form.text()), "token": token},
        allow_redirects=False,
    )  # fmt: skip
    assert response.status == 303, await response.text()
    page = await client.get(response.headers["Location"])
    return csrf_of(await page.text())


async def enter(client: TestClient[Any, Any], link: str) -> str:
    response = await client.get("/console/citizen/enter", params={"t": link})
    assert response.status == 200, await response.text()
    assert response.url.path == "/console/citizen"
    return csrf_of(await response.text())


def session_cookie(client: TestClient[Any, Any]) -> str | None:
    for cookie in client.session.cookie_jar:
        if cookie.key == COOKIE:
            return cookie.value
    return None


async def test_every_page_sends_a_strict_policy(node: Node, aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(node.app())
    assert "unsafe-inline" not in CSP
    assert "script-src" not in CSP
    for path in ["/console/login", "/console/overview", "/console/lang/ja?next=/console/login",
                 "/console/citizen/enter?t=x", "/console/static/console.css"]:  # fmt: skip
        response = await client.get(path, allow_redirects=False)
        assert response.headers["Content-Security-Policy"] == CSP, path
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
    missing = await client.get("/console/no-such-page")
    assert missing.status == 404
    assert missing.headers["Content-Security-Policy"] == CSP
    assert "console.not_found" in await missing.text()
    html = await (await client.get("/console/login")).text()
    assert "<script" not in html
    assert " style=" not in html
    assert "onclick" not in html


async def test_cookie_is_httponly_strict_and_changes_at_login(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(node.app())
    response = await client.get("/console/login")
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header
    assert "SameSite=Strict" in header
    assert "Path=/console/" in header
    assert "Secure" not in header  # plain HTTP here; under TLS request.secure adds it
    before = session_cookie(client)
    await login(client, node.token("auditor"))
    after = session_cookie(client)
    assert before
    assert after
    assert before != after
    assert node.sessions.get(before, now=NOW) is None  # the pre-login id is dead


async def test_a_bad_token_is_refused_and_no_session_given(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(node.app())
    form = await client.get("/console/login")
    csrf = csrf_of(await form.text())
    foreign = TokenIssuer(generate_key(), audience=NODE).issue(
        role="admin", subject="mallory", now=NOW, ttl=timedelta(hours=1)
    )
    expired = node.issuer.issue(role="admin", subject="a", now=NOW - timedelta(hours=2),
                                ttl=timedelta(hours=1))  # fmt: skip
    for token in ["", "not-a-token", foreign, expired, node.link("mom")]:
        response = await client.post("/console/login", data={"csrf": csrf, "token": token})
        assert response.status == 401, token
        assert (await client.get("/console/overview")).status == 401
    # Counted with the API's refused tokens, by reason.
    counted = node.ctx.rejections.counts()
    assert sum(n for (kind, _), n in counted.items() if kind == MANAGEMENT_BEARER) == 5


async def test_the_session_cookie_is_secure_under_tls(node: Node) -> None:
    from aiohttp.test_utils import make_mocked_request

    from gateway.console.security import STORE, new_session, sessions_and_csrf

    app = web.Application()
    app[STORE] = node.sessions

    async def handler(request: web.Request) -> web.Response:
        new_session(request, node.sessions.start(now=NOW))
        return web.Response(text="ok")

    check = sessions_and_csrf(lambda: NOW)
    for scheme, secure in (("https", True), ("http", False)):
        request = make_mocked_request("GET", "/console/login", app=app).clone(scheme=scheme)
        response = await check(request, handler)
        cookie = response.cookies[COOKIE]
        assert bool(cookie["secure"]) is secure
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Strict"


@pytest.mark.parametrize("path", [*PAGES])
async def test_pages_need_a_login(node: Node, aiohttp_client: ClientFactory, path: str) -> None:
    client = await aiohttp_client(node.app())
    response = await client.get(path)
    assert response.status == 401
    assert "console.login_required" in await response.text()


@pytest.mark.parametrize("role", ["admin", "auditor", "consent", "citizen"])
async def test_every_page_checks_the_role(
    node: Node, aiohttp_client: ClientFactory, role: str
) -> None:
    client = await aiohttp_client(node.app())
    if role == "citizen":
        await enter(client, node.link("mom"))
    else:
        await login(client, node.token(role))
    for path, roles in PAGES.items():
        response = await client.get(path)
        if role in roles:
            assert response.status in (200, 404), (role, path)  # row 1 does not exist here
        else:
            assert response.status == 403, (role, path)
            assert "console.forbidden" in await response.text()


@pytest.mark.parametrize("role", ["auditor", "consent", "citizen"])
async def test_maintenance_is_for_admins_only(
    node: Node, aiohttp_client: ClientFactory, role: str
) -> None:
    client = await aiohttp_client(node.app())
    if role == "citizen":
        csrf = await enter(client, node.link("mom"))
    else:
        csrf = await login(client, node.token(role))
    response = await client.post("/console/maintenance", data={"csrf": csrf, "enabled": "true"})
    assert response.status == 403
    assert node.ops.maintenance.enabled is False


async def test_maintenance_switch_needs_csrf_and_is_in_the_trail(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(node.app())
    api = await client.put("/api/maintenance", json={"enabled": False},
                           headers={"Authorization": f"Bearer {node.token('admin')}"})  # fmt: skip
    assert api.status == 200
    csrf = await login(client, node.token("admin", "operator-1"))
    for data in [{}, {"csrf": ""}, {"csrf": csrf[:-1]}, {"csrf": "x" * len(csrf)}]:
        refused = await client.post("/console/maintenance", data={**data, "enabled": "true"})
        assert refused.status == 403
        assert "console.csrf" in await refused.text()
    assert node.ops.maintenance.enabled is False
    # Another session's token is no good either.
    other = node.sessions.start(now=NOW, role="admin", subject="operator-2")
    crossed = await client.post("/console/maintenance",
                                data={"csrf": other.csrf, "enabled": "true"})  # fmt: skip
    assert crossed.status == 403
    done = await client.post(
        "/console/maintenance", data={"csrf": csrf, "enabled": "true", "reason": "upgrade"}
    )
    assert done.status == 200
    assert "upgrade" in await done.text()
    assert node.ops.maintenance.enabled is True
    assert (await client.get("/readyz")).status == 503
    trail = await client.get("/console/trail")
    text = await trail.text()
    assert "operator-1" in text
    assert text.index("console maintenance") < text.index("/api/maintenance")  # newest first
    assert "console maintenance" in text
    entries = await node_trail(client, node)
    assert entries[-1]["actor"] == "operator-1"
    assert json.loads(entries[-1]["change"])["after"]["enabled"] is True


async def node_trail(client: TestClient[Any, Any], node: Node) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/operator-log", headers={"Authorization": f"Bearer {node.token('admin')}"}
    )
    return list((await response.json())["entries"])


async def test_logout_needs_csrf_and_ends_the_session(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(node.app())
    csrf = await login(client, node.token("auditor"))
    cookie = session_cookie(client)
    assert (await client.post("/console/logout", data={})).status == 403
    assert (await client.get("/console/audit")).status == 200
    response = await client.post("/console/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    assert node.sessions.get(cookie, now=NOW) is None
    # Replaying the old cookie gets nothing.
    client.session.cookie_jar.update_cookies({COOKIE: cookie or ""})
    assert (await client.get("/console/audit")).status == 401


async def test_the_login_form_itself_needs_its_csrf(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(node.app())
    # No session at all (a cross-site form post): refused before the token is looked at.
    response = await client.post("/console/login", data={"token": node.token("admin")})
    assert response.status == 403
    await client.get("/console/login")
    response = await client.post("/console/login", data={"token": node.token("admin")})
    assert response.status == 403


async def test_citizen_sees_only_their_own_and_revokes_only_their_own(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    mine, theirs = await grant(node, "mom"), await grant(node, "dad")
    async with node.ctx.engine.begin() as conn:
        for seq, subject in ((1, "mom"), (2, "dad")):
            await conn.execute(insert(AuditRow).values(
                node_id=NODE, seq=seq, logged_at=NOW.isoformat(), role="provider",
                message_id=f"m{seq}", client=str(CONSUMER), service=str(SERVICE),
                purpose="treatment", subject=subject, status=200, prev_hash="0" * 64,
                entry_hash=f"{seq}" * 64,
                consent=json.dumps({"released": [f"Patient.name-{subject}"],
                                    "withheld": ["Patient.address"], "subjects": [subject]}),
            ))  # fmt: skip
    client = await aiohttp_client(node.app())
    csrf = await enter(client, node.link("mom"))
    text = await (await client.get("/console/citizen")).text()
    assert "Hospital A (Electronic health records)" in text
    assert "Medical treatment" in text  # the purpose in words
    assert "Patient.name-mom" in text
    assert "Patient.name-dad" not in text
    assert mine in text
    assert theirs not in text
    # Another subject's consent: "not found", and it stays in force.
    other = await client.post(f"/console/citizen/consents/{theirs}/revoke", data={"csrf": csrf})
    assert other.status == 404
    assert (await node.ctx.policy.consent(theirs)).revoked_at is None
    for bogus in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        gone = await client.post(f"/console/citizen/consents/{bogus}/revoke",
                                 data={"csrf": csrf})  # fmt: skip
        assert gone.status == 404
    # Without CSRF: refused.
    refused = await client.post(f"/console/citizen/consents/{mine}/revoke", data={})
    assert refused.status == 403
    assert (await node.ctx.policy.consent(mine)).revoked_at is None
    done = await client.post(f"/console/citizen/consents/{mine}/revoke", data={"csrf": csrf})
    assert done.status == 200
    assert (await node.ctx.policy.consent(mine)).revoked_at is not None
    entries = await node_trail(client, node)
    assert entries[-1]["role"] == "citizen"
    assert entries[-1]["action"] == "console revoke consent"
    # No subject parameter anywhere changes whose page it is.
    text = await (await client.get("/console/citizen?subject=dad")).text()
    assert "Patient.name-dad" not in text


async def test_tampered_expired_and_foreign_links_are_refused(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(node.app())
    good = node.link("mom")
    expired = node.links.issue("mom", now=NOW - timedelta(hours=2), ttl=timedelta(hours=1))[0]
    foreign = CitizenLinks(generate_key(), NODE).issue("mom", now=NOW, ttl=timedelta(hours=1))[0]
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    for link in ["", tampered, expired, foreign, node.token("admin", "mom")]:
        response = await client.get("/console/citizen/enter", params={"t": link})
        assert response.status == 401, link
        assert "console.link_invalid" in await response.text()
        assert (await client.get("/console/citizen")).status == 401


async def test_the_consent_desk_issues_links_by_api(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(node.app())

    async def issue(role: str, body: Any) -> Any:
        bearer = {"Authorization": f"Bearer {node.token(role)}"}
        return await client.post("/api/citizen-links", json=body, headers=bearer)

    assert (await issue("auditor", {"subject": "mom"})).status == 403
    assert (await client.post("/api/citizen-links", json={"subject": "mom"})).status == 401
    bad_bodies: list[Any] = [
        {}, {"subject": 5}, {"subject": "mom", "ttl_s": 0}, {"subject": "mom", "ttl_s": 10**9},
        {"subject": "mom", "ttl_s": True}, [],
    ]  # fmt: skip
    for bad in bad_bodies:
        assert (await issue("consent", bad)).status == 400, bad
    response = await issue("consent", {"subject": "mom", "ttl_s": 600})
    assert response.status == 201
    document = await response.json()
    assert document["path"].startswith("/console/citizen/enter?t=")
    page = await client.get(document["path"])
    assert page.status == 200
    assert page.url.path == "/console/citizen"
    entries = await node_trail(client, node)
    last = entries[-1]
    assert last["action"] == "/api/citizen-links"
    assert last["actor"] == "alice"
    assert document["token"] not in json.dumps(entries)  # the trail never holds the link


async def test_auditor_search_filters_and_detail(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    async with node.ctx.engine.begin() as conn:
        for seq, status, error in ((1, 200, None), (2, 403, "policies.consent_required")):
            await conn.execute(insert(AuditRow).values(
                node_id=NODE, seq=seq, logged_at=NOW.isoformat(), role="provider",
                message_id=f"msg-{seq}", client=str(CONSUMER), service=str(SERVICE),
                subject="mom", status=status, error_code=error, prev_hash="0" * 64,
                entry_hash=f"{seq}" * 64, request_signature=f"REQSIG-{seq}",
                response_signature=f"RESPSIG-{seq}",
                consent=json.dumps({"consent_ids": ["c-1"], "released": ["Patient.name"],
                                    "withheld": ["Patient.address"]}),
            ))  # fmt: skip
    client = await aiohttp_client(node.app())
    await login(client, node.token("auditor"))
    text = await (await client.get("/console/audit")).text()
    assert "msg-1" in text
    assert "msg-2" in text
    text = await (await client.get("/console/audit", params={"status": "403"})).text()
    assert "msg-2" in text
    assert "msg-1" not in text
    text = await (await client.get(
        "/console/audit", params={"error_code": "policies.consent_required"})).text()
    assert "msg-2" in text
    assert "msg-1" not in text
    text = await (await client.get("/console/audit", params={"message_id": "msg-1"})).text()
    assert "msg-1" in text
    assert "msg-2" not in text
    later = (NOW + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    text = await (await client.get("/console/audit", params={"from": later})).text()
    assert "msg-1" not in text
    for bad in ({"status": "abc"}, {"status": "99"}, {"from": "yesterday"}):
        assert (await client.get("/console/audit", params=bad)).status == 400
    detail = await (await client.get("/console/audit/rows/2")).text()
    assert "REQSIG-2" in detail
    assert "RESPSIG-2" in detail
    assert "Patient.address" in detail
    for missing in ("3", "0", "-1", "x", str(2**63)):
        assert (await client.get(f"/console/audit/rows/{missing}")).status == 404


async def test_japanese_from_the_browser_or_the_switch(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(node.app())
    text = await (await client.get("/console/login", headers={"Accept-Language": "ja"})).text()
    assert '<html lang="ja">' in text
    assert "ログイン" in text
    text = await (await client.get("/console/login")).text()
    assert '<html lang="en">' in text
    assert "Log in" in text
    switched = await client.get("/console/lang/ja?next=/console/login")
    assert "ログイン" in await switched.text()
    back = await client.get("/console/lang/en?next=/console/login",
                            headers={"Accept-Language": "ja"})  # fmt: skip
    assert "Log in" in await back.text()


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/console/", "/\\evil.example", "/api/audit/rows",
     "/console/\\\\evil", "/console/\r\nSet-Cookie: x=y", None, ""],
)
def test_the_language_switch_goes_back_only_into_the_console(target: str | None) -> None:
    assert safe_next(target) == "/console/"


def test_the_language_switch_keeps_console_paths() -> None:
    assert safe_next("/console/audit?client=x") == "/console/audit?client=x"


async def test_the_consent_desk_grants_with_validation_revokes_and_issues_links(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(node.app())
    csrf = await login(client, node.token("consent", "desk-1"))
    form = {"csrf": csrf, "subject": "mom", "consumer": str(CONSUMER), "service": str(SERVICE),
            "purpose": "treatment", "fields": "Patient.name, Patient.telecom"}  # fmt: skip
    # The API's validation: undeclared fields, purposes and unknown consumers are refused.
    for change, words in (({"fields": "Patient.secret"}, "Patient.secret"),
                          ({"purpose": "marketing"}, "marketing"),
                          ({"consumer": "RENKEI/GOV/NOBODY/X"}, "NOBODY"),
                          ({"subject": ""}, "subject")):  # fmt: skip
        refused = await client.post("/console/consents", data={**form, **change})
        assert refused.status == 400, change
        assert words in await refused.text()
    assert await node.ctx.policy.list_consents(subject="mom", now=NOW) == []
    granted = await client.post("/console/consents", data=form)
    assert granted.status == 200
    assert granted.url.path == "/console/consents"
    [consent] = await node.ctx.policy.list_consents(subject="mom", now=NOW)
    assert consent.fields == ("Patient.name", "Patient.telecom")
    assert str(consent.id) in await granted.text()
    # Without CSRF nothing changes; with it the consent is revoked.
    assert (await client.post(f"/console/consents/{consent.id}/revoke", data={})).status == 403
    assert (await node.ctx.policy.consent(consent.id)).revoked_at is None
    revoked = await client.post(f"/console/consents/{consent.id}/revoke", data={"csrf": csrf})
    assert revoked.status == 200
    assert (await node.ctx.policy.consent(consent.id)).revoked_at is not None
    # A link for the resident, that opens their page.
    issued = await client.post("/console/consents/link", data={"csrf": csrf, "subject": "mom"})
    page = await issued.text()
    found = re.search(r'id="citizen-link">[^<]*?(/console/citizen/enter\?t=[^<]+)<', page)
    assert found
    entries = await node_trail(client, node)
    actions = [(e["actor"], e["action"]) for e in entries]
    assert ("desk-1", "console grant consent") in actions
    assert ("desk-1", "console revoke consent") in actions
    assert ("desk-1", "console citizen link") in actions
    assert found.group(1).split("t=")[1] not in json.dumps(entries)  # never the link itself
    entered = await client.get(found.group(1))  # the resident's browser
    assert entered.url.path == "/console/citizen"
    assert "Revoked" in await entered.text()  # the consent the desk just revoked


@pytest.mark.parametrize("role", ["auditor", "citizen"])
async def test_only_the_desk_and_admins_change_consents(
    node: Node, aiohttp_client: ClientFactory, role: str
) -> None:
    consent_id = await grant(node, "mom")
    client = await aiohttp_client(node.app())
    csrf = await (enter(client, node.link("mom")) if role == "citizen"
                  else login(client, node.token(role)))  # fmt: skip
    for path, data in ((f"/console/consents/{consent_id}/revoke", {}),
                       ("/console/consents/link", {"subject": "dad"}),
                       ("/console/consents", {"subject": "mom", "consumer": str(CONSUMER),
                                              "service": str(SERVICE), "purpose": "treatment",
                                              "fields": "Patient.name"})):  # fmt: skip
        response = await client.post(path, data={"csrf": csrf, **data})
        assert response.status == 403, path
    assert (await node.ctx.policy.consent(consent_id)).revoked_at is None


async def test_markup_in_logged_values_is_shown_as_text(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    attack = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    async with node.ctx.engine.begin() as conn:
        await conn.execute(insert(AuditRow).values(
            node_id=NODE, seq=1, logged_at=NOW.isoformat(), role="provider", message_id=attack,
            client=attack, service=attack, subject=attack, status=200, prev_hash="0" * 64,
            entry_hash="1" * 64, request_signature=attack,
            consent=json.dumps({"released": [attack], "withheld": [], "consent_ids": []}),
        ))  # fmt: skip
    client = await aiohttp_client(node.app())
    await login(client, node.token("auditor"))
    for path in ("/console/audit", "/console/audit/rows/1"):
        text = await (await client.get(path)).text()
        assert "<script>alert" not in text
        assert "<img src=x" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_break_glass_accesses_are_marked_for_the_citizen_and_the_auditor(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    async with node.ctx.engine.begin() as conn:
        await conn.execute(insert(AuditRow).values(
            node_id=NODE, seq=1, logged_at=NOW.isoformat(), role="provider", message_id="bg-1",
            client=str(CONSUMER), service=str(SERVICE), purpose="treatment", subject="mom",
            status=200, prev_hash="0" * 64, entry_hash="1" * 64,
            consent=json.dumps({"released": ["Patient.name"], "withheld": [],
                                "subjects": ["mom"], "break_glass": ["deny-telecom"]}),
        ))  # fmt: skip
    client = await aiohttp_client(node.app())
    await enter(client, node.link("mom"))
    text = await (await client.get("/console/citizen", headers={"Accept-Language": "ja"})).text()
    assert "緊急アクセス" in text
    await login(client, node.token("auditor"))
    detail = await (await client.get("/console/audit/rows/1")).text()
    assert "Emergency access (break-glass)" in detail
    assert "deny-telecom" in detail


async def test_the_overview_shows_each_certificates_ocsp_state(
    node: Node, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(node.app())
    await login(client, node.token("admin"))
    text = await (await client.get("/console/overview")).text()
    rows = re.findall(r"<tr><td>(auth|sign:[^<]+)</td>.*?</tr>", text, flags=re.S)
    assert rows == ["auth", "sign:RENKEI/GOV/HOSP-B"]
    auth_row = re.search(r"<tr><td>auth</td>.*?</tr>", text, flags=re.S)
    sign_row = re.search(r"<tr><td>sign:RENKEI/GOV/HOSP-B</td>.*?</tr>", text, flags=re.S)
    assert auth_row
    assert ">good<" in auth_row.group(0)
    assert sign_row
    assert ">not good<" in sign_row.group(0)
    assert "Not ready" in text  # a failing OCSP state fails readiness

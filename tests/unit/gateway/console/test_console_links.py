"""Citizen links: one subject, signed, expiring, and no other token in their place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certs.keys import generate_key
from gateway.console.links import CitizenLinkInvalid, CitizenLinks
from gateway.tokens import ClientTokens, TokenError, TokenIssuer

NOW = datetime.now(UTC).replace(microsecond=0)
NODE = "RENKEI/GOV/HOSP-B/ss1"


@pytest.fixture
def key():  # type: ignore[no-untyped-def]
    return generate_key()


def test_a_link_names_its_subject_and_expires(key) -> None:  # type: ignore[no-untyped-def]
    links = CitizenLinks(key, NODE)
    token, claims = links.issue("mom", now=NOW, ttl=timedelta(hours=1))
    assert claims.subject == "mom"
    assert claims.role == "citizen"
    assert links.verify(token, now=NOW + timedelta(minutes=59)).subject == "mom"
    with pytest.raises(CitizenLinkInvalid):
        links.verify(token, now=NOW + timedelta(hours=1, minutes=1))


def test_a_tampered_link_is_refused(key) -> None:  # type: ignore[no-untyped-def]
    links = CitizenLinks(key, NODE)
    token, _ = links.issue("mom", now=NOW, ttl=timedelta(hours=1))
    header, payload, signature = token.split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(CitizenLinkInvalid):
        links.verify(f"{header}.{forged}.{signature}", now=NOW)
    with pytest.raises(CitizenLinkInvalid):
        links.verify(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), now=NOW)
    with pytest.raises(CitizenLinkInvalid):
        links.verify("", now=NOW)


def test_another_nodes_or_keys_link_is_refused(key) -> None:  # type: ignore[no-untyped-def]
    token, _ = CitizenLinks(key, "RENKEI/GOV/HOSP-A/ss1").issue(
        "mom", now=NOW, ttl=timedelta(hours=1)
    )
    with pytest.raises(CitizenLinkInvalid):
        CitizenLinks(key, NODE).verify(token, now=NOW)
    other, _ = CitizenLinks(generate_key(), NODE).issue("mom", now=NOW, ttl=timedelta(hours=1))
    with pytest.raises(CitizenLinkInvalid):
        CitizenLinks(key, NODE).verify(other, now=NOW)


def test_management_and_client_tokens_are_not_links_and_back(key) -> None:  # type: ignore[no-untyped-def]
    links = CitizenLinks(key, NODE)
    management = TokenIssuer(key, audience=NODE)
    admin = management.issue(role="admin", subject="mom", now=NOW, ttl=timedelta(hours=1))
    client, _ = ClientTokens(key, NODE).issue(client="mom", now=NOW, ttl=timedelta(hours=1))
    for token in (admin, client):
        with pytest.raises(CitizenLinkInvalid):
            links.verify(token, now=NOW)
    link, _ = links.issue("mom", now=NOW, ttl=timedelta(hours=1))
    with pytest.raises(TokenError):
        management.verify(link, now=NOW)


@pytest.mark.parametrize(
    ("subject", "ttl"),
    [("", timedelta(hours=1)), ("x" * 256, timedelta(hours=1)), ("mom", timedelta(0)),
     ("mom", timedelta(days=31)), ("mom", timedelta(seconds=-1))],
)  # fmt: skip
def test_issuing_checks_subject_and_lifetime(key, subject: str, ttl: timedelta) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CitizenLinkInvalid):
        CitizenLinks(key, NODE).issue(subject, now=NOW, ttl=ttl)

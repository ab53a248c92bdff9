"""Client-port authentication: each connection type, each way of failing it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from certs.identifiers import ClientId, SubsystemId
from gateway.client_auth import (
    CallerCredentials,
    ClientAuthSnapshot,
    ConnectionType,
    authenticate_client,
)
from gateway.errors import ClientAuthenticationFailed
from gateway.tokens import ClientTokens, TokenError, TokenIssuer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NODE = "RENKEI/GOV/HOSP-A/ss1"
HOSPITAL = SubsystemId.parse("RENKEI/GOV/HOSP-A/EHR")
INSURER = SubsystemId.parse("RENKEI/COM/INSURER/CLAIMS")
HOSPITAL_CERT = "aa" * 32
INSURER_CERT = "bb" * 32
UNREGISTERED_CERT = "cc" * 32

KEY = ec.generate_private_key(ec.SECP256R1())
TOKENS = ClientTokens(KEY, NODE)
HOUR = timedelta(hours=1)
HOSPITAL_TOKEN, HOSPITAL_CLAIMS = TOKENS.issue(client=str(HOSPITAL), now=NOW, ttl=HOUR)
INSURER_TOKEN, INSURER_CLAIMS = TOKENS.issue(client=str(INSURER), now=NOW, ttl=HOUR)
SNAPSHOT = ClientAuthSnapshot(
    version=1,
    connection_types={str(HOSPITAL): ConnectionType.HTTPS, str(INSURER): ConnectionType.TOKEN},
    certificates={
        HOSPITAL_CERT: frozenset({str(HOSPITAL)}),
        INSURER_CERT: frozenset({str(INSURER)}),
    },
    tokens={HOSPITAL_CLAIMS.token_id: str(HOSPITAL), INSURER_CLAIMS.token_id: str(INSURER)},
)

TLS = CallerCredentials(tls=True, loopback=False)
PLAIN_LOCAL = CallerCredentials(tls=False, loopback=True)
PLAIN_REMOTE = CallerCredentials(tls=False, loopback=False)


def _check(
    client: ClientId,
    credentials: CallerCredentials,
    *,
    snapshot: ClientAuthSnapshot = SNAPSHOT,
    default: ConnectionType = ConnectionType.HTTPS,
    at: datetime = NOW,
) -> str:
    return authenticate_client(
        client,
        credentials,
        snapshot=snapshot,
        default=default,
        verify_token=lambda token: TOKENS.verify(token, now=at),
    )


def _with(base: CallerCredentials, **changes: object) -> CallerCredentials:
    values = {
        "tls": base.tls,
        "loopback": base.loopback,
        "certificate_sha256": base.certificate_sha256,
        "token": base.token,
    }
    values.update(changes)
    return CallerCredentials(**values)  # type: ignore[arg-type]


def test_a_registered_certificate_over_tls_proves_its_subsystem() -> None:
    assert _check(HOSPITAL, _with(TLS, certificate_sha256=HOSPITAL_CERT)) == "certificate"


def test_a_token_over_tls_proves_its_subsystem() -> None:
    assert _check(HOSPITAL, _with(TLS, token=HOSPITAL_TOKEN)) == "token"


def test_a_token_over_plain_http_from_the_node_host_satisfies_token() -> None:
    assert _check(INSURER, _with(PLAIN_LOCAL, token=INSURER_TOKEN)) == "token"


def test_plain_http_passes_only_where_the_type_allows_it() -> None:
    open_types = ClientAuthSnapshot(connection_types={str(HOSPITAL): ConnectionType.HTTP})
    assert _check(HOSPITAL, PLAIN_REMOTE, snapshot=open_types) == "none"
    # A subsystem without a row gets the node's default.
    assert _check(INSURER, PLAIN_LOCAL, snapshot=open_types, default=ConnectionType.HTTP) == (
        "none"
    )


def _refused(client: ClientId, credentials: CallerCredentials, **kwargs: object) -> str:
    with pytest.raises(ClientAuthenticationFailed) as caught:
        _check(client, credentials, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == "client.authentication_failed"
    assert caught.value.status == 401
    return caught.value.message


def test_missing_credentials_are_refused() -> None:
    assert "must prove" in _refused(HOSPITAL, TLS)
    assert "must prove" in _refused(INSURER, PLAIN_LOCAL)


def test_the_default_for_an_unconfigured_subsystem_fails_closed() -> None:
    stranger = SubsystemId.parse("RENKEI/GOV/HOSP-A/OTHER")
    assert "must prove" in _refused(stranger, TLS)


def test_plain_http_when_tls_is_required_is_refused() -> None:
    assert "HTTPS" in _refused(HOSPITAL, _with(PLAIN_LOCAL, token=HOSPITAL_TOKEN))
    no_auth = ClientAuthSnapshot(connection_types={str(HOSPITAL): ConnectionType.HTTPS_NO_AUTH})
    assert "HTTPS" in _refused(HOSPITAL, PLAIN_LOCAL, snapshot=no_auth)
    assert _check(HOSPITAL, TLS, snapshot=no_auth) == "none"


def test_an_unregistered_certificate_is_refused() -> None:
    message = _refused(HOSPITAL, _with(TLS, certificate_sha256=UNREGISTERED_CERT))
    assert "not registered" in message


def test_the_certificate_of_another_subsystem_is_refused() -> None:
    message = _refused(HOSPITAL, _with(TLS, certificate_sha256=INSURER_CERT))
    assert "another client" in message
    # Even where the claimed subsystem needs no proof at all.
    open_types = ClientAuthSnapshot(
        connection_types={str(HOSPITAL): ConnectionType.HTTP},
        certificates={INSURER_CERT: frozenset({str(INSURER)})},
    )
    _refused(HOSPITAL, _with(TLS, certificate_sha256=INSURER_CERT), snapshot=open_types)


def test_a_certificate_registered_for_two_subsystems_proves_either() -> None:
    shared = ClientAuthSnapshot(
        connection_types={},
        certificates={HOSPITAL_CERT: frozenset({str(HOSPITAL), str(INSURER)})},
    )
    for client in (HOSPITAL, INSURER):
        assert _check(client, _with(TLS, certificate_sha256=HOSPITAL_CERT), snapshot=shared) == (
            "certificate"
        )


def test_the_token_of_another_subsystem_is_refused() -> None:
    assert "issued for" in _refused(HOSPITAL, _with(TLS, token=INSURER_TOKEN))
    open_types = ClientAuthSnapshot(
        connection_types={str(HOSPITAL): ConnectionType.HTTP}, tokens=SNAPSHOT.tokens
    )
    _refused(HOSPITAL, _with(PLAIN_LOCAL, token=INSURER_TOKEN), snapshot=open_types)


def test_a_subsystems_credentials_do_not_prove_its_member() -> None:
    # A member-level X-Road-Client (PR-REST §4.1) is another client than its
    # subsystems: their token or certificate is refused for it, and with no
    # credential of its own it passes only where the node proves nobody.
    member = HOSPITAL.member
    assert "issued for" in _refused(member, _with(TLS, token=HOSPITAL_TOKEN))
    assert "another client" in _refused(member, _with(TLS, certificate_sha256=HOSPITAL_CERT))
    assert "must prove" in _refused(member, TLS)
    assert _check(member, PLAIN_LOCAL, default=ConnectionType.HTTP) == "none"


def test_an_expired_token_is_refused() -> None:
    message = _refused(HOSPITAL, _with(TLS, token=HOSPITAL_TOKEN), at=NOW + timedelta(hours=2))
    assert "not valid" in message


def test_a_revoked_or_unrecorded_token_is_refused() -> None:
    revoked = ClientAuthSnapshot(
        connection_types=SNAPSHOT.connection_types, tokens={INSURER_CLAIMS.token_id: str(INSURER)}
    )
    assert "revoked" in _refused(HOSPITAL, _with(TLS, token=HOSPITAL_TOKEN), snapshot=revoked)


def test_a_token_in_clear_from_another_host_is_refused() -> None:
    message = _refused(INSURER, _with(PLAIN_REMOTE, token=INSURER_TOKEN))
    assert "only over TLS" in message


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": f"client-port:{NODE}",
        "aud": f"client-port:{NODE}",
        "sub": str(HOSPITAL),
        "role": "client",
        "jti": HOSPITAL_CLAIMS.token_id,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    }
    claims.update(overrides)
    return claims


def test_alg_none_is_refused() -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    token = f"{header}.{_b64(json.dumps(_claims()).encode())}."
    assert "not valid" in _refused(HOSPITAL, _with(TLS, token=token))


def test_a_token_signed_by_another_key_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(), other, algorithm="ES256", headers={"typ": "at+jwt"})
    _refused(HOSPITAL, _with(TLS, token=token))


def test_a_management_token_is_not_a_client_token() -> None:
    management = TokenIssuer(KEY, NODE).issue(
        role="admin", subject=str(HOSPITAL), now=NOW, ttl=timedelta(minutes=5)
    )
    _refused(HOSPITAL, _with(TLS, token=management))
    # ... nor a client token a management token.
    with pytest.raises(TokenError, match="bearer token"):
        TokenIssuer(KEY, NODE).verify(HOSPITAL_TOKEN, now=NOW)


def test_a_token_for_another_node_is_refused() -> None:
    other_node = ClientTokens(KEY, "RENKEI/GOV/HOSP-B/ss1")
    token, claims = other_node.issue(client=str(HOSPITAL), now=NOW, ttl=timedelta(minutes=5))
    snapshot = ClientAuthSnapshot(
        connection_types=SNAPSHOT.connection_types, tokens={claims.token_id: str(HOSPITAL)}
    )
    _refused(HOSPITAL, _with(TLS, token=token), snapshot=snapshot)

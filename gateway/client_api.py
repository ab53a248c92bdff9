"""Management API for client-port authentication (role ``admin``; ``auditor`` reads).

A client subsystem is named by four path segments,
``/api/clients/{instance}/{member_class}/{member_code}/{subsystem}``, and must
belong to a member this node holds a sign key for (the only clients it can
serve). Changes apply to the next request in this process and within a
second in the node's other processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from certs.errors import CertificateError
from certs.identifiers import IdentifierError, SubsystemId
from certs.keys import parse_certificate_pem
from gateway.client_auth import (
    ClientPortUnprotected,
    ConnectionType,
    check_connection_type_allowed,
)
from gateway.client_auth_store import ClientAuthError, ClientAuthStore, ClientSummary
from gateway.context import NodeContext

__all__ = ["DEFAULT_TOKEN_TTL", "MAX_TOKEN_TTL", "add_client_routes", "client_json"]

RoleCheck = Callable[..., None]

DEFAULT_TOKEN_TTL = timedelta(days=30)
MAX_TOKEN_TTL = timedelta(days=366)
_CLIENT = "/api/clients/{instance}/{member_class}/{member_code}/{subsystem}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def client_json(summary: ClientSummary, default: ConnectionType) -> dict[str, Any]:
    return {
        "client": summary.subsystem,
        "connection_type": (summary.connection_type or default).value,
        "connection_type_set": summary.connection_type is not None,
        "certificates": [
            {
                "sha256": cert.sha256,
                "subject": cert.subject,
                "not_after": _iso(cert.not_after),
                "added_at": _iso(cert.added_at),
            }
            for cert in summary.certificates
        ],
        "tokens": [
            {
                "token_id": token.token_id,
                "issued_at": _iso(token.issued_at),
                "expires_at": _iso(token.expires_at),
                "revoked_at": _iso(token.revoked_at),
            }
            for token in summary.tokens
        ],
    }


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return document


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as one JSON object; duplicate keys are refused, not resolved."""
    try:
        document = json.loads(await request.text(), object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        raise ClientAuthError(f"the body must be a JSON object: {exc}") from exc
    if not isinstance(document, dict):
        raise ClientAuthError("the body must be a JSON object")
    return document


def _problem(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"type": code, "message": message}, status=status)


def add_client_routes(app: web.Application, ctx: NodeContext, require_role: RoleCheck) -> None:
    def store() -> ClientAuthStore:
        if ctx.client_auth is None:
            raise ClientAuthError("client authentication is not available on this node")
        return ctx.client_auth.store

    def client_of(request: web.Request) -> SubsystemId:
        info = request.match_info
        try:
            client = SubsystemId(
                info["instance"], info["member_class"], info["member_code"], info["subsystem"]
            )
        except IdentifierError as exc:
            raise ClientAuthError(f"invalid client subsystem: {exc}") from exc
        if client.member not in {entry.member for entry in ctx.settings.sign_keys}:
            raise ClientAuthError(f"{client} is not a client this node can serve")
        return client

    async def applied() -> None:
        if ctx.client_auth is not None:
            await ctx.client_auth.reload()

    @web.middleware
    async def translate(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except ClientAuthError as exc:
            return _problem(exc.status, exc.code, exc.message)
        except ClientPortUnprotected as exc:
            return _problem(409, "client_auth.unprotected", str(exc))
        return response

    app.middlewares.append(translate)

    async def list_clients(request: web.Request) -> web.Response:
        require_role(request, "admin", "auditor")
        summaries = await store().clients()
        return web.json_response(
            {"clients": [client_json(summary, ctx.client_default) for summary in summaries],
             "default_connection_type": ctx.client_default.value}
        )

    async def set_connection_type(request: web.Request) -> web.Response:
        require_role(request, "admin")
        client = client_of(request)
        body = await read_json_object(request)
        try:
            kind = ConnectionType(str(body.get("connection_type")))
        except ValueError as exc:
            choices = ", ".join(kind.value for kind in ConnectionType)
            raise ClientAuthError(f"connection_type must be one of {choices}") from exc
        check_connection_type_allowed(ctx.settings, kind)
        await store().set_connection_type(client, kind, now=ctx.clock())
        await applied()
        return web.json_response({"client": str(client), "connection_type": kind.value})

    async def add_certificate(request: web.Request) -> web.Response:
        require_role(request, "admin")
        client = client_of(request)
        body = await read_json_object(request)
        try:
            certificate = parse_certificate_pem(str(body.get("certificate", "")))
        except CertificateError as exc:
            raise ClientAuthError(f"certificate: {exc}") from exc
        sha256 = await store().add_certificate(client, certificate, now=ctx.clock())
        await applied()
        return web.json_response({"client": str(client), "sha256": sha256}, status=201)

    async def remove_certificate(request: web.Request) -> web.Response:
        require_role(request, "admin")
        client = client_of(request)
        sha256 = request.match_info["sha256"]
        await store().remove_certificate(client, sha256)
        await applied()
        return web.json_response({"client": str(client), "removed": sha256.lower()})

    async def issue_token(request: web.Request) -> web.Response:
        require_role(request, "admin")
        client = client_of(request)
        body = await read_json_object(request) if request.body_exists else {}
        ttl_s = body.get("ttl_s", int(DEFAULT_TOKEN_TTL.total_seconds()))
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s <= 0:
            raise ClientAuthError("ttl_s must be a positive number of seconds")
        if timedelta(seconds=ttl_s) > MAX_TOKEN_TTL:
            raise ClientAuthError(f"ttl_s may be at most {int(MAX_TOKEN_TTL.total_seconds())}")
        if ctx.client_tokens is None:
            raise ClientAuthError("client tokens are not available on this node")
        now = ctx.clock()
        token, claims = ctx.client_tokens.issue(
            client=str(client), now=now, ttl=timedelta(seconds=ttl_s)
        )
        await store().record_token(client, claims, now=now)
        await applied()
        return web.json_response(
            {
                "client": str(client),
                "token": token,
                "token_id": claims.token_id,
                "expires_at": _iso(claims.expires_at),
            },
            status=201,
        )

    async def revoke_token(request: web.Request) -> web.Response:
        require_role(request, "admin")
        client = client_of(request)
        token_id = request.match_info["token_id"]
        await store().revoke_token(client, token_id, now=ctx.clock())
        await applied()
        return web.json_response({"client": str(client), "revoked": token_id})

    app.router.add_get("/api/clients", list_clients)
    app.router.add_put(f"{_CLIENT}/connection-type", set_connection_type)
    app.router.add_post(f"{_CLIENT}/certificates", add_certificate)
    app.router.add_delete(f"{_CLIENT}/certificates/{{sha256}}", remove_certificate)
    app.router.add_post(f"{_CLIENT}/tokens", issue_token)
    app.router.add_delete(f"{_CLIENT}/tokens/{{token_id}}", revoke_token)

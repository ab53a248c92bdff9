"""What a node signs: canonical descriptions of a request and of its response.

The signed payload is the description itself (canonical JSON). The receiving
node rebuilds the description from what actually arrived and requires it to
be equal, so a change to any covered part (method, service, path, query,
identity headers, forwarded headers, body, ids, destination) is refused.
"""

from __future__ import annotations

from typing import Any

from certs.identifiers import NodeId
from gateway.protocol import ExchangeRequest

__all__ = ["VERSION", "request_description", "response_description"]

VERSION = 1


def request_description(
    request: ExchangeRequest,
    *,
    request_id: str,
    body_sha256: str,
    body_length: int,
    issued_at: int,
    origin: NodeId,
    destination: NodeId,
) -> dict[str, Any]:
    return {
        "v": VERSION,
        "kind": "request",
        "request_id": request_id,
        "message_id": request.message_id,
        "client": str(request.client),
        "service": str(request.service),
        "method": request.method,
        "path": request.service_path,
        "query": request.query,
        "user_id": request.user_id,
        "issue": request.issue,
        "represented_party": request.represented_party,
        "purpose": request.purpose,
        "subject": request.subject,
        "security_server": str(request.security_server) if request.security_server else None,
        "headers": [list(pair) for pair in request.headers],
        "body_sha256": body_sha256,
        "body_length": body_length,
        "issued_at": issued_at,
        "origin": str(origin),
        "destination": str(destination),
    }


def response_description(
    *,
    request_id: str,
    request_hash: str,
    status: int,
    headers: tuple[tuple[str, str], ...],
    body_sha256: str,
    body_length: int,
    issued_at: int,
    error: str | None,
    withheld: tuple[str, ...] = (),
    consent_ids: tuple[str, ...] = (),
    subject: str | None = None,
    break_glass: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``subject``: the data subject the provider decided the exchange was about
    (named in the request, or located by its path or query); present only when
    there is one, so both nodes log the same subject. ``break_glass``: the deny rules an
    emergency purpose overrode; present only when there are some."""
    described: dict[str, Any] = {
        "v": VERSION,
        "kind": "response",
        "request_id": request_id,
        "request_hash": request_hash,
        "status": status,
        "headers": [list(pair) for pair in headers],
        "body_sha256": body_sha256,
        "body_length": body_length,
        "issued_at": issued_at,
        "error": error,
        "withheld": list(withheld),
        "consent_ids": list(consent_ids),
    }
    if subject is not None:
        described["subject"] = subject
    if break_glass:
        described["break_glass"] = list(break_glass)
    return described

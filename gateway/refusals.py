"""Refusals made by the HTTP guard, written to the node's audit log.

A refusal at the HTTP level has no parsed exchange behind it, so the row
carries what the guard saw: the port (as the role), method, target, the
client and message id as sent (truncated), the status and the code.
"""

from __future__ import annotations

import structlog

from gateway.audit.models import AuditEntry
from gateway.context import NodeContext
from gateway.errors import DatabaseUnavailable
from gateway.guard import Port, Refusal, RefusalSink

__all__ = ["ROLE_OF_PORT", "audit_sink"]

log = structlog.get_logger(__name__)

# The audit role of each port; the management port logs as its own role.
ROLE_OF_PORT: dict[Port, str] = {
    "client": "consumer",
    "peer": "provider",
    "management": "management",
}


def audit_sink(ctx: NodeContext, port: Port) -> RefusalSink:
    async def record(refusal: Refusal) -> None:
        entry = AuditEntry(
            role=ROLE_OF_PORT[port],
            message_id=(refusal.message_id or "-")[:255],
            logged_at=ctx.clock(),
            client=refusal.client[:255] if refusal.client else None,
            method=refusal.method[:16],
            path=refusal.path[:2048],
            status=refusal.status,
            error_code=refusal.code,
        )
        log.info(
            "http_refused", port=port, code=refusal.code, remote=refusal.remote,
            error=refusal.message,
        )
        try:
            await ctx.audit.append(entry)
        except DatabaseUnavailable:
            # The refusal stands either way; the log line above keeps a trace.
            log.warning("http_refusal_not_logged", port=port, code=refusal.code)

    return record

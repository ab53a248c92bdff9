"""What every console view needs from the node, held on the console application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.console.links import CitizenLinks
from gateway.context import NodeContext
from gateway.maintenance import Maintenance
from gateway.tokens import TokenIssuer
from member_registry.operator_log import OperatorAction, OperatorLog

__all__ = ["CONSOLE", "Console"]


@dataclass
class Console:
    ctx: NodeContext
    tokens: TokenIssuer
    links: CitizenLinks
    maintenance: Maintenance
    trail: OperatorLog

    async def record(
        self, request: web.Request, *, actor: str, role: str, action: str, status: int,
        change: dict[str, object] | None,
    ) -> None:  # fmt: skip
        """A console change in the node's operator trail, like any management API change."""
        # Unavailable trail: the error page says so, like a failed API change would.
        await self.trail.record(OperatorAction(
            at=self.ctx.clock(), actor=actor, role=role, token_id=None,
            method=request.method, action=action, target=request.path, status=status,
            source=request.remote, change=change,
        ))  # fmt: skip


CONSOLE = web.AppKey("console", Console)

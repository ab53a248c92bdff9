"""The node's operator trail: its table, and how a handler says what it changed.

The logic (the hash chain, verification) lives in ``member_registry.operator_log``,
shared with the registry. A management handler that changes state calls
:func:`note_change` with the state before and after; the trail middleware
(gateway/ops_api.py) records it. A handler that does not is recorded with
the request it was given (``{"request": ...}``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.db import Base
from member_registry.operator_log import OperatorAction, OperatorLog, operator_log_table

__all__ = ["CHANGE", "NODE_OPERATOR_LOG", "OperatorAction", "OperatorLog", "note_change"]

NODE_OPERATOR_LOG = operator_log_table(Base.metadata, "node_operator_log")

CHANGE = web.RequestKey("operator_change", dict[str, Any])


def note_change(request: web.Request, *, before: Any, after: Any) -> None:
    """Tell the operator trail what this request changed (JSON-able values)."""
    request[CHANGE] = {"before": before, "after": after}

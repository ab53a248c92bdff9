"""The node's operator trail table (the logic lives in ``member_registry.operator_log``)."""

from __future__ import annotations

from gateway.db import Base
from member_registry.operator_log import OperatorAction, OperatorLog, operator_log_table

__all__ = ["NODE_OPERATOR_LOG", "OperatorAction", "OperatorLog"]

NODE_OPERATOR_LOG = operator_log_table(Base.metadata, "node_operator_log")

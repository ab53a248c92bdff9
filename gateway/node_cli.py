"""``renkei node ...`` and ``renkei sandbox ...`` sub-commands."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: "argparse._SubParsersAction[Any]") -> None:
    """Add the gateway's sub-commands to the ``renkei`` parser."""

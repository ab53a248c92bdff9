"""Command-line interface of this package (registered into ``renkei``)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add this package's sub-commands to the ``renkei`` parser."""

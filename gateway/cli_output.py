"""How ``renkei`` commands answer: a table or one line for people, JSON for scripts.

Every command that prints a result takes ``--json``; without it, lists are
tables and actions one-line summaries (rich renders them; it is imported only
when something is printed, so ``renkei --help`` stays fast). Progress and
errors go to stderr, results to stdout, so ``renkei ... --json | jq`` sees
only the document.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "add_json_option",
    "error",
    "print_document",
    "print_json",
    "print_summary",
    "print_table",
    "progress",
]


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON (for scripts)"
    )


def _console(stderr: bool = False) -> Console:
    from rich.console import Console  # lazy: keeps --help fast

    # soft_wrap: a summary line is never broken where a script or a pipe reads it.
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False), flush=True)


def print_summary(line: str) -> None:
    """One line saying what a command did."""
    _console().print(line, markup=False)


def print_table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str
) -> None:
    from rich.table import Table

    materialised = [["" if cell is None else str(cell) for cell in row] for row in rows]
    console = _console()
    if not materialised:
        console.print(empty, markup=False)
        return
    table = Table(title=title, show_edge=False, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in materialised:
        table.add_row(*row)
    console.print(table)


def print_document(
    args: argparse.Namespace, document: Any, human: Callable[[Any], None]
) -> None:
    """``document`` as JSON with ``--json``, else as ``human`` renders it."""
    if getattr(args, "json", False):
        print_json(document)
    else:
        human(document)


def error(message: str) -> None:
    print(f"renkei: error: {message}", file=sys.stderr, flush=True)


def progress(message: str) -> None:
    """A progress line on stderr (never on stdout, which carries the result)."""
    print(message, file=sys.stderr, flush=True)

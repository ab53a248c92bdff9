"""Writing converted entities: JSON Lines, all or nothing."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from gateway.broker.convert.models import Entity

__all__ = ["dump_jsonl", "write_jsonl"]


def dump_jsonl(entities: Iterable[Entity], stream: TextIO) -> int:
    """One entity per line; returns how many were written."""
    written = 0
    for item in entities:
        stream.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
        stream.write("\n")
        written += 1
    return written


def write_jsonl(entities: Iterable[Entity], path: Path) -> int:
    """Write ``entities`` to ``path`` atomically: a failure leaves no file behind.

    The lines go to a temporary file beside ``path``, which replaces ``path`` only
    once the last entity is written and flushed to disk.
    """
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".part"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            written = dump_jsonl(entities, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return written

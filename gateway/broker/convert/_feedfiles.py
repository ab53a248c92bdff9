"""The text files of a GTFS feed, read row by row from a zip archive or a directory.

Each row knows its file and line, and its typed getters raise ``FeedError`` naming
both and the field, so every refusal points at the exact place in the feed. Rows are
read one at a time: memory does not grow with the size of a file.
"""

from __future__ import annotations

import csv
import math
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from gateway.broker.convert.errors import FeedError

__all__ = ["DEFAULT_MAX_FEED_BYTES", "FeedFiles", "Row"]

# The uncompressed size a feed may have (all its text files together): bounds the
# time a hostile archive can cost, far above real city feeds (tens of MB).
DEFAULT_MAX_FEED_BYTES = 2 * 1024**3
# One record's line: far beyond any real one, small enough to hold.
_MAX_LINE_BYTES = 1024 * 1024


class FeedFiles:
    """The files of one feed; ``rows(name)`` can be walked as often as needed."""

    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_FEED_BYTES) -> None:
        self._path = path
        self._is_zip = path.is_file()
        if self._is_zip:
            if not zipfile.is_zipfile(path):
                raise FeedError("neither a zip archive nor a directory", source=str(path))
            with zipfile.ZipFile(path) as archive:
                sizes = {
                    info.filename: info.file_size
                    for info in archive.infolist()
                    if "/" not in info.filename and info.filename.endswith(".txt")
                }
        elif path.is_dir():
            sizes = {
                entry.name: entry.stat().st_size
                for entry in path.iterdir()
                if entry.name.endswith(".txt") and entry.is_file()
            }
        else:
            raise FeedError("no such file or directory", source=str(path))
        if sum(sizes.values()) > max_bytes:
            raise FeedError(
                f"the feed's text files hold more than {max_bytes} bytes", source=str(path)
            )
        self._names = frozenset(sizes)

    @property
    def names(self) -> frozenset[str]:
        return self._names

    def has(self, name: str) -> bool:
        return name in self._names

    @contextmanager
    def _open(self, name: str) -> Iterator[IO[bytes]]:
        if self._is_zip:
            with zipfile.ZipFile(self._path) as archive, archive.open(name) as member:
                yield member
        else:
            with (self._path / name).open("rb") as file:
                yield file

    def rows(self, name: str, required: tuple[str, ...] = ()) -> Iterator[Row]:
        """The rows of ``name`` (header first checked for ``required`` columns)."""
        with self._open(name) as raw:
            reader = csv.reader(_decoded_lines(raw, name), strict=True)
            try:
                header = [column.strip() for column in next(reader, [])]
                if not header:
                    raise FeedError("the file has no header line", source=name, line=1)
                if len(set(header)) != len(header):
                    raise FeedError("a column name appears twice", source=name, line=1)
                for column in required:
                    if column not in header:
                        raise FeedError("required column missing", source=name, line=1,
                                        field=column)
                for values in reader:
                    if not values or values == [""]:
                        continue  # blank line
                    if len(values) != len(header):
                        raise FeedError(
                            f"{len(values)} fields where the header has {len(header)}",
                            source=name, line=reader.line_num,
                        )
                    yield Row(name, reader.line_num, dict(zip(header, values, strict=True)))
            except csv.Error as exc:
                raise FeedError(f"malformed CSV: {exc}", source=name,
                                line=reader.line_num) from exc


def _decoded_lines(raw: IO[bytes], name: str) -> Iterator[str]:
    """The file's lines as text, each decoded on its own so a fault has its line."""
    number = 0
    while chunk := raw.readline(_MAX_LINE_BYTES + 1):
        number += 1
        if len(chunk) > _MAX_LINE_BYTES:
            raise FeedError(f"a line longer than {_MAX_LINE_BYTES} bytes", source=name,
                            line=number)
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise FeedError("not UTF-8 text", source=name, line=number) from None
        # GTFS files often start with a byte order mark.
        yield text.removeprefix("\ufeff") if number == 1 else text


class Row:
    """One record of a feed file, with getters that check and convert its fields."""

    __slots__ = ("file", "line", "values")

    def __init__(self, file: str, line: int, values: dict[str, str]) -> None:
        self.file = file
        self.line = line
        self.values = values

    def error(self, field: str | None, problem: str) -> FeedError:
        return FeedError(problem, source=self.file, line=self.line, field=field)

    def text(self, field: str) -> str | None:
        """The field's value with surrounding blanks removed, or None when empty."""
        value = self.values.get(field, "").strip()
        return value or None

    def required(self, field: str) -> str:
        value = self.text(field)
        if value is None:
            raise self.error(field, "a value is required")
        return value

    def integer(self, field: str, *, low: int = 0, high: int | None = None) -> int | None:
        value = self.text(field)
        if value is None:
            return None
        if not value.isascii() or not value.lstrip("-").isdigit():
            raise self.error(field, f"not an integer: {value!r}")
        number = int(value)
        if number < low or (high is not None and number > high):
            bounds = f"{low}..{high}" if high is not None else f"at least {low}"
            raise self.error(field, f"{number} is outside {bounds}")
        return number

    def choice(self, field: str, allowed: range) -> int | None:
        return self.integer(field, low=allowed.start, high=allowed.stop - 1)

    def number(self, field: str, *, low: float | None = None,
               high: float | None = None) -> float | None:
        value = self.text(field)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise self.error(field, f"not a number: {value!r}") from None
        if not math.isfinite(number):
            raise self.error(field, f"not a finite number: {value!r}")
        if (low is not None and number < low) or (high is not None and number > high):
            raise self.error(field, f"{number} is outside {low}..{high}")
        return number

    def day(self, field: str) -> str | None:
        """A GTFS date (YYYYMMDD) as ISO 8601 (YYYY-MM-DD)."""
        value = self.text(field)
        if value is None:
            return None
        try:
            if len(value) != 8 or not value.isdigit():
                raise ValueError
            return date.fromisoformat(f"{value[:4]}-{value[4:6]}-{value[6:]}").isoformat()
        except ValueError:
            raise self.error(field, f"not a date (YYYYMMDD): {value!r}") from None

    def clock(self, field: str) -> str | None:
        """A GTFS time (H:MM:SS, past 24:00 for trips after midnight) as HH:MM:SS."""
        value = self.text(field)
        if value is None:
            return None
        parts = value.split(":")
        if (
            len(parts) != 3
            or not all(p.isascii() and p.isdigit() for p in parts)
            or not 1 <= len(parts[0]) <= 2
            or len(parts[1]) != 2
            or len(parts[2]) != 2
            or int(parts[1]) > 59
            or int(parts[2]) > 59
        ):
            raise self.error(field, f"not a time (H:MM:SS): {value!r}")
        return f"{int(parts[0]):02d}:{parts[1]}:{parts[2]}"

    def url(self, field: str) -> str | None:
        value = self.text(field)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.error(field, f"not an http(s) URL: {value!r}")
        return value

    def color(self, field: str) -> str | None:
        value = self.text(field)
        if value is None:
            return None
        if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise self.error(field, f"not a colour (six hex digits): {value!r}")
        return value.upper()



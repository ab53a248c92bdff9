"""Building test feeds from the sample: copies, single-cell edits, larger feeds."""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

SAMPLE_FEED = Path(__file__).parents[4] / "data" / "gtfs" / "sample_feed"


def copy_sample(directory: Path) -> Path:
    feed = directory / "feed"
    shutil.copytree(SAMPLE_FEED, feed)
    for file in feed.iterdir():
        file.chmod(0o644)
    return feed


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    return rows[0], [row for row in rows[1:] if row]


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def set_cell(feed: Path, name: str, row: int, column: str, value: str) -> int:
    """Set ``column`` of data row ``row`` (0-based) of ``name``; returns its line number."""
    header, rows = read_table(feed / name)
    if column not in header:
        header.append(column)
        rows = [[*r, ""] for r in rows]
    rows[row][header.index(column)] = value
    write_table(feed / name, header, rows)
    return row + 2


def zip_feed(feed: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for file in sorted(feed.iterdir()):
            out.write(file, file.name)
    return archive


def scaled_feed(directory: Path, copies: int) -> Path:
    """The sample ``copies`` times over, every identifier suffixed with the copy number."""
    feed = directory / f"scaled_{copies}"
    feed.mkdir()
    id_columns = {"stop_id", "route_id", "trip_id", "service_id", "from_stop_id",
                  "to_stop_id", "from_trip_id", "to_trip_id", "from_route_id",
                  "to_route_id", "parent_station", "shape_id", "block_id"}
    for source in SAMPLE_FEED.iterdir():
        if source.name in ("agency.txt", "feed_info.txt", "translations.txt"):
            shutil.copy(source, feed / source.name)
            continue
        header, rows = read_table(source)
        scaled = []
        for copy in range(copies):
            for row in rows:
                scaled.append([
                    f"{value}~{copy}" if column in id_columns and value else value
                    for column, value in zip(header, row, strict=True)
                ])
        write_table(feed / source.name, header, scaled)
    return feed

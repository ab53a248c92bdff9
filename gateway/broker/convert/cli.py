"""``renkei broker convert ...``: source data into NGSI-LD entities, as JSON Lines.

The converters are imported when a command runs, so ``renkei --help`` does not
load protobuf or parse anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def register(broker_commands: Any) -> None:
    """Add ``convert`` to the sub-commands of ``renkei broker``."""
    convert = broker_commands.add_parser(
        "convert",
        help="convert GTFS, GTFS-Realtime or mapped sensor data into NGSI-LD entities",
        description="Convert source data into NGSI-LD normalized entities, one JSON "
        "object a line. The whole input is checked first: on any fault nothing is "
        "written and the error names the file, line and field.",
    )
    kinds = convert.add_subparsers(dest="convert_kind", required=True, metavar="KIND")

    gtfs = kinds.add_parser("gtfs", help="a GTFS static feed (zip or directory)")
    gtfs.add_argument("feed", type=Path, help="the feed: a .zip archive or a directory")
    gtfs.add_argument("--feed-id", help="the feed's name inside entity ids "
                      "(default: the file or directory name without extension)")
    gtfs.add_argument("--source", help="the feed's URL, for the agencies' source attribute")
    _output(gtfs)
    gtfs.set_defaults(handler=_gtfs)

    realtime = kinds.add_parser("gtfs-rt", help="GTFS-Realtime vehicle positions "
                                "(a protobuf FeedMessage)")
    realtime.add_argument("message", type=Path, help="the FeedMessage file")
    realtime.add_argument("--feed-id", required=True,
                          help="the static feed's name, to which trips and routes refer")
    realtime.add_argument("--vehicle-type", default="bus",
                          help="the Smart Data Models vehicleType (default: bus)")
    _output(realtime)
    realtime.set_defaults(handler=_realtime)

    mapped = kinds.add_parser("mapped", help="a CSV or JSON sensor payload, as a TOML "
                              "mapping says")
    mapped.add_argument("mapping", type=Path, help="the mapping file (TOML)")
    mapped.add_argument("payload", type=Path, help="the payload file")
    _output(mapped)
    mapped.set_defaults(handler=_mapped)


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True,
                        help="the JSON Lines file to write, or - for standard output")


def _emit(args: argparse.Namespace, entities: Iterator[dict[str, Any]],
          counts: Mapping[str, int], extra: Mapping[str, Any] | None = None) -> int:
    from gateway.broker.convert.output import dump_jsonl, write_jsonl

    if args.out == "-":
        dump_jsonl(entities, sys.stdout)
    else:
        write_jsonl(entities, Path(args.out))
    summary = {"entities": sum(counts.values()), "by_type": dict(counts), **(extra or {})}
    print(json.dumps(summary, sort_keys=True), file=sys.stderr)
    return 0


def _guarded(run: Handler, args: argparse.Namespace) -> int:
    from gateway.broker.convert.errors import ConvertError

    try:
        return run(args)
    except ConvertError as exc:
        print(f"renkei: error: [{exc.code}] {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"renkei: error: {exc}", file=sys.stderr)
        return 1


def _gtfs(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        from gateway.broker.convert.gtfs import convert_gtfs

        feed: Path = args.feed
        feed_id = args.feed_id or (feed.stem if feed.is_file() else feed.name)
        conversion = convert_gtfs(feed, feed_id, source=args.source)
        return _emit(args, conversion.entities(), conversion.counts,
                     {"feed_id": conversion.feed_id,
                      "ignored_files": list(conversion.ignored_files)})

    return _guarded(run, args)


def _realtime(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        from gateway.broker.convert.realtime import convert_vehicle_positions

        message = Path(args.message).read_bytes()
        entities = convert_vehicle_positions(message, args.feed_id,
                                             vehicle_type=args.vehicle_type)
        counts = {"Vehicle": len(entities)} if entities else {}
        return _emit(args, iter(entities), counts)

    return _guarded(run, args)


def _mapped(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        from gateway.broker.convert.mapping import load_mapping
        from gateway.broker.convert.payloads import convert_payload

        mapping = load_mapping(Path(args.mapping))
        payload: Path = args.payload
        entities = convert_payload(mapping, payload.read_bytes(), source=payload.name)
        counts = {mapping.entity_type: len(entities)} if entities else {}
        return _emit(args, iter(entities), counts)

    return _guarded(run, args)

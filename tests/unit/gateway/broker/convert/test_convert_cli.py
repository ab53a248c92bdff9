"""``renkei broker convert``: all or nothing on disk, faults named on stderr."""

from __future__ import annotations

import json
import subprocess
import sys

from gateway.cli import main
from tests.unit.gateway.broker.convert.gtfs_helpers import SAMPLE_FEED, copy_sample, set_cell


def test_gtfs_writes_one_entity_a_line_and_a_summary(tmp_path, capsys) -> None:
    out = tmp_path / "stops.jsonl"
    assert main(["broker", "convert", "gtfs", str(SAMPLE_FEED), "--feed-id", "demo",
                 "--out", str(out)]) == 0
    entities = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    summary = json.loads(capsys.readouterr().err)
    assert summary["entities"] == len(entities) == 74
    assert summary["by_type"]["GtfsStop"] == 9
    assert summary["ignored_files"] == ["fare_attributes.txt", "fare_rules.txt",
                                        "feed_info.txt", "translations.txt"]
    assert entities[0]["id"] == "urn:ngsi-ld:GtfsAgency:demo:DTA"


def test_the_feed_id_defaults_to_the_feed_name(tmp_path, capsys) -> None:
    out = tmp_path / "out.jsonl"
    assert main(["broker", "convert", "gtfs", str(SAMPLE_FEED), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().err)["feed_id"] == "sample_feed"


def test_a_bad_feed_writes_nothing_and_names_the_fault(tmp_path, capsys) -> None:
    feed = copy_sample(tmp_path)
    set_cell(feed, "stop_times.txt", 20, "stop_id", "NOWHERE")
    out = tmp_path / "out.jsonl"
    out.write_text("previous content\n", encoding="utf-8")
    assert main(["broker", "convert", "gtfs", str(feed), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "[broker.convert.bad_feed] stop_times.txt, line 22, field 'stop_id'" in error
    assert out.read_text(encoding="utf-8") == "previous content\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_the_command_line_loads_no_converter_until_one_runs() -> None:
    probe = (
        "import sys; from gateway.cli import build_parser; build_parser(); "
        "print([m for m in sys.modules if m.startswith(('gateway.broker.convert.gtfs', "
        "'google.protobuf', 'gateway.broker.convert.payloads'))])"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.strip() == "[]"

"""The bench harness still runs: every scenario answers a few hundred requests.

No timing is asserted; ``make bench`` measures. This only keeps the harness
(backend, bare chain, bench federation, load generator, CPU accounting and
the results table) from rotting.
"""

from __future__ import annotations

from pathlib import Path

from bench.loadgen import parse_wrk, python_load
from bench.report import markdown_table, replace_section
from bench.run import measure
from bench.stack import running_stack

_WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:1/doc
  2 threads and 16 connections
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    2.00ms
     99%    5.10ms
  4000 requests in 1.00s, 4.90MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   4000.00
"""


def test_wrk_output_is_parsed() -> None:
    result = parse_wrk(_WRK_OUTPUT, 16)
    assert result.requests == 4000
    assert result.failures == 3
    assert abs(result.p50_ms - 0.812) < 1e-9
    assert result.p99_ms == 5.1


def test_every_scenario_serves_a_few_hundred_requests(tmp_path: Path) -> None:
    with running_stack(tmp_path / "stack") as stack:
        results = []
        for scenario in stack.scenarios():
            load = python_load(
                scenario.url, scenario.headers, connections=8, duration_s=30, max_requests=200
            )
            assert load.requests >= 200, scenario.name
            assert load.failures == 0, scenario.name
            results.append(measure(scenario, 4, 0.3, "python"))
    assert all(m.load.failures == 0 for m in results)
    assert {role for m in results for role, _ in m.cpu_ms} >= {"node A", "node B", "hop 1"}
    page = tmp_path / "page.md"
    page.write_text("# x\n<!-- bench:results:start -->\nold\n<!-- bench:results:end -->\n")
    assert replace_section(page, markdown_table(results))
    assert "renkei, FHIR consent" in page.read_text()

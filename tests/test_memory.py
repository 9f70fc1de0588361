"""Allocation profiling (--alloc) against functions of known behaviour, within 10%."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp_client import call, url
from support import FIXTURES, RunningProgram, clean_env, free_port, hotpath, mentions_own_code

MB = 2**20


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Any:
    output = tmp_path_factory.mktemp("alloc") / "report.json"
    result = hotpath(
        "run",
        "--alloc",
        "--no-mcp",
        "--report",
        "none",
        "--output",
        str(output),
        "alloc.py",
        env=clean_env(HOTPATH_THREADS_INTERVAL_MS="100"),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(output.read_text())
    data["oracle"] = json.loads(result.stdout.splitlines()[-1])
    return data


def functions(report: Any) -> dict[str, Any]:
    return {row["name"]: row for row in report["functions_alloc"]["functions"]}


def near(value: float, expected: float, tolerance: float = 0.10) -> bool:
    return abs(value - expected) <= tolerance * expected


def test_a_function_that_keeps_10_mb(report: Any) -> None:
    row = functions(report)["alloc.keep_10mb"]
    assert near(row["allocated_bytes"], 10 * MB)
    assert near(row["retained_bytes"], 10 * MB)
    assert near(row["peak_bytes_max"], 10 * MB)


def test_a_function_that_frees_50_mb_before_returning(report: Any) -> None:
    row = functions(report)["alloc.churn_50mb"]
    assert near(row["peak_bytes_max"], 50 * MB)
    assert abs(row["retained_bytes"]) < 0.01 * MB


def test_100000_small_objects(report: Any) -> None:
    row = functions(report)["alloc.make_small_objects"]
    expected = report["oracle"]["small_objects_bytes"]  # sys.getsizeof of the list and each
    assert near(row["allocated_bytes"], expected)
    assert near(row["retained_bytes"], expected)


def test_recursion_is_counted_once(report: Any) -> None:
    row = functions(report)["alloc.build_tree"]
    assert row["calls"] == 31
    # 31 nodes of 100 kB, held by the outermost call: not summed over every level.
    assert near(row["allocated_bytes"], 31 * 100_000)
    assert near(row["self_allocated_bytes"], 31 * 100_000)


def test_nested_pair_self_versus_cumulative(report: Any) -> None:
    rows = functions(report)
    outer, inner = rows["alloc.outer"], rows["alloc.inner"]
    assert near(outer["allocated_bytes"], 6 * MB)
    assert near(outer["self_allocated_bytes"], 1 * MB)
    assert near(inner["allocated_bytes"], 5 * MB)
    assert near(inner["self_allocated_bytes"], 5 * MB)


def test_generator_allocations_span_its_suspensions(report: Any) -> None:
    row = functions(report)["alloc.chunks"]
    assert row["calls"] == 1
    assert near(row["allocated_bytes"], 5 * MB)
    assert near(row["retained_bytes"], 5 * MB)


def test_the_thread_that_keeps_what_it_allocates_stands_out(report: Any) -> None:
    threads = report["threads"]
    rows = {row["name"]: row for row in threads["threads"] + threads["ended_threads"]}
    keeper, churner = rows["keeper"], rows["churner"]
    assert near(keeper["net_bytes"], 10 * MB)
    assert near(keeper["allocated_bytes"], 10 * MB)
    assert abs(churner["net_bytes"]) < 0.05 * MB
    per_call = functions(report)["alloc.keep_chunk"]
    assert per_call["calls"] == 20 and near(per_call["avg_allocated_bytes"], 512 * 1024)


def test_attribution_leaves_little_unattributed(report: Any) -> None:
    section = report["functions_alloc"]
    assert section["unattributed_allocated_bytes"] < 0.02 * section["attributed_allocated_bytes"]


def test_live_memory_sites_point_at_the_allocating_lines(report: Any) -> None:
    live = report["functions_alloc"]["live_memory"]
    sites: dict[str, Any] = {}
    for row in live["sites"]:  # largest first: keep each function's largest site
        if row["function"]:
            sites.setdefault(row["function"], row)
    assert near(sites["alloc.keep_10mb"]["live_bytes"], 10 * MB)
    source = (FIXTURES / "alloc.py").read_text().splitlines()
    line = source.index("    kept.append(bytes(10 * MB))") + 1
    assert sites["alloc.keep_10mb"]["site"] == f"{FIXTURES / 'alloc.py'}:{line}"
    assert near(sites["alloc.keep_chunk"]["live_bytes"], 10 * MB)
    # hotpath's own allocations are not among the sites.
    assert not any(mentions_own_code(row["site"]) for row in live["sites"])


def test_without_alloc_the_tools_say_how_to_turn_it_on(tmp_path: Path) -> None:
    output = tmp_path / "r.json"
    hotpath("run", "--no-mcp", "--report", "none", "--output", str(output), "calls.py", "0")
    section = json.loads(output.read_text())["functions_alloc"]
    assert section["recorded"] is False and "--alloc" in section["note"]


def test_alloc_tools_over_mcp_while_the_program_runs() -> None:
    port = free_port()
    program = RunningProgram(
        "--alloc",
        "--mcp-port",
        str(port),
        "service.py",
        "50",
        "60",
        env=clean_env(HOTPATH_ALLOC_SNAPSHOT_MS="200"),
    )
    try:
        program.wait_for("ready 5")
        program.wait_for(f"MCP server on {url(port)}", stream="stderr")
        summary = call(port, "functions_alloc", limit=50).structured_content
        rows = {row["name"]: row for row in summary["functions"]}
        assert rows["service.parse"]["calls"] == 45
        assert rows["service.Handler.process_request"]["calls"] == 50
        logs = call(port, "function_alloc_logs", function_name="parse", limit=3).structured_content
        assert len(logs["logs"]) == 3
        assert all(
            entry["allocated_bytes"] >= 0 and entry["peak_bytes"] >= 0 for entry in logs["logs"]
        )
        assert logs["logs"][0]["timestamp"] >= logs["logs"][-1]["timestamp"]
    finally:
        assert program.stop() == 0

"""Allocations (--alloc) against functions of known behaviour, and live memory by site.

Counts and bytes come from the compiled recorder's allocator hooks: exact where the oracle is
(N ``bytearray(n)`` calls), within 2% of sys.getsizeof sums elsewhere. The Python recorder
cannot count (no allocator hook in Python): there --alloc says so and traces sites instead.
"""

from __future__ import annotations

import json
import os
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from mcp_client import call, url
from support import (
    FIXTURES,
    RECORDER,
    RunningProgram,
    clean_env,
    free_port,
    hotpath,
    mentions_own_code,
    profile,
)

MB = 2**20
counting = pytest.mark.skipif(RECORDER != "c", reason="allocation counts need the C recorder")


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


def near(value: float, expected: float, tolerance: float = 0.02) -> bool:
    return abs(value - expected) <= tolerance * expected


@counting
def test_n_bytearrays_are_counted_exactly(report: Any) -> None:
    row = functions(report)["alloc.make_bytearrays"]
    assert row["allocations"] == 10  # each bytearray(n): its object, then its buffer
    assert row["allocated_bytes"] == report["oracle"]["bytearray_bytes"]
    assert row["self_allocated_bytes"] == row["allocated_bytes"]


@counting
def test_a_function_that_keeps_10_mb(report: Any) -> None:
    row = functions(report)["alloc.keep_10mb"]
    assert near(row["allocated_bytes"], 10 * MB)
    assert row["calls"] == 1 and near(row["avg_allocated_bytes"], 10 * MB)


@counting
def test_a_function_that_allocates_and_drops_50_x_1_mb(report: Any) -> None:
    row = functions(report)["alloc.churn_50mb"]
    assert near(row["allocated_bytes"], 50 * MB)  # what it asked for, not what it kept
    assert row["allocations"] == 50 + 2  # and its loop's range and range iterator
    assert "retained_bytes" not in row


@counting
def test_100000_small_objects(report: Any) -> None:
    row = functions(report)["alloc.make_small_objects"]
    oracle = report["oracle"]["small_objects"]
    assert row["allocations"] >= oracle["objects"]
    assert near(row["allocated_bytes"], oracle["bytes"])


@counting
def test_recursion_is_counted_once(report: Any) -> None:
    row = functions(report)["alloc.build_tree"]
    assert row["calls"] == 31
    # 31 nodes of 100 kB: the outermost call's figure, not summed over every level.
    assert near(row["allocated_bytes"], 31 * 100_000)
    assert near(row["self_allocated_bytes"], 31 * 100_000)


@counting
def test_nested_pair_self_versus_cumulative(report: Any) -> None:
    rows = functions(report)
    outer, inner = rows["alloc.outer"], rows["alloc.inner"]
    assert near(outer["allocated_bytes"], 6 * MB)
    assert near(outer["self_allocated_bytes"], 1 * MB)
    assert near(inner["allocated_bytes"], 5 * MB)
    assert near(inner["self_allocated_bytes"], 5 * MB)


@counting
def test_a_generator_and_a_coroutine_count_what_they_ran(report: Any) -> None:
    rows = functions(report)
    chunks, fetch = rows["alloc.chunks"], rows["alloc.fetch"]
    assert chunks["calls"] == 1 and near(chunks["allocated_bytes"], 5 * MB)
    assert chunks["allocations"] == 5 + 2  # and its loop's range and range iterator
    # What the event loop allocates while the coroutine is suspended is not the coroutine's.
    assert fetch["calls"] == 1 and near(fetch["allocated_bytes"], 3 * MB)


@counting
def test_two_threads_taking_turns_are_each_credited_their_own(report: Any) -> None:
    threads = report["threads"]
    rows = {row["name"]: row for row in threads["threads"] + threads["ended_threads"]}
    keeper, recycler = rows["keeper"], rows["recycler"]
    assert near(keeper["allocated_bytes"], 24 * MB)
    assert near(recycler["allocated_bytes"], 24 * MB)
    per_call = functions(report)
    # Each thread's figure is what its own code asked for: the main thread's is its module's
    # (and a few kB of start-up before it), with none of the threads' 48 MB.
    main = next(row for row in threads["threads"] if row["name"] == "MainThread")
    module = per_call["alloc.<module>"]["allocated_bytes"]
    assert module <= main["allocated_bytes"] < module + 64 * 1024
    assert near(per_call["alloc.keeper"]["allocated_bytes"], 24 * MB)
    assert per_call["alloc.keep_chunk"]["calls"] == 24
    assert near(per_call["alloc.keep_chunk"]["avg_allocated_bytes"], MB)
    assert near(per_call["alloc.drop_chunk"]["avg_allocated_bytes"], MB)


@counting
def test_the_call_log_carries_each_calls_allocations(tmp_path: Path) -> None:
    port = free_port()
    program = RunningProgram(
        "--alloc", "--mcp-port", str(port), "service.py", "50", "60", env=clean_env()
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
        assert all(entry["allocations"] > 0 for entry in logs["logs"])
        assert logs["logs"][0]["timestamp"] >= logs["logs"][-1]["timestamp"]
    finally:
        assert program.stop() == 0


def test_without_alloc_the_tools_say_how_to_turn_it_on(tmp_path: Path) -> None:
    output = tmp_path / "r.json"
    hotpath("run", "--no-mcp", "--report", "none", "--output", str(output), "calls.py", "0")
    data = json.loads(output.read_text())
    section = data["functions_alloc"]
    assert section["recorded"] is False and "--alloc" in section["note"]
    assert data["memory_sites"]["sites"] == [] and "trace_memory" in data["memory_sites"]["note"]


@pytest.mark.skipif(RECORDER != "python", reason="the fallback of the Python recorder")
def test_the_python_recorder_says_it_cannot_count_and_traces_sites(report: Any) -> None:
    section = report["functions_alloc"]
    assert section["recorded"] is False
    assert "compiled recorder" in section["note"] and "memory_sites" in section["note"]
    sites: dict[str, Any] = {}
    for row in report["memory_sites"]["sites"]:  # largest growth first
        if row["function"]:
            sites.setdefault(row["function"], row)
    assert near(sites["alloc.keep_10mb"]["live_bytes"], 10 * MB)


def test_live_memory_sites_point_at_the_allocating_lines(tmp_path: Path) -> None:
    live = profile("alloc.py", options=("--alloc-sites",), tmp=tmp_path)["memory_sites"]
    sites: dict[str, Any] = {}
    for row in live["sites"]:  # largest growth first: keep each function's largest site
        if row["function"]:
            sites.setdefault(row["function"], row)
    source = (FIXTURES / "alloc.py").read_text().splitlines()
    line = source.index("    kept.append(bytes(10 * MB))") + 1
    assert sites["alloc.keep_10mb"]["site"] == f"{FIXTURES / 'alloc.py'}:{line}"
    assert near(sites["alloc.keep_10mb"]["live_bytes"], 10 * MB)
    assert near(sites["alloc.keep_chunk"]["live_bytes"], 24 * MB)
    assert sites["alloc.keep_chunk"]["blocks"] >= 24  # and the list they went into
    # Its 50 MB were dropped: what is left is sys.monitoring's instrumentation of the function
    # (a few hundred bytes, at its first line), as for every function that ran.
    assert sites["alloc.churn_50mb"]["live_bytes"] < 1024
    # hotpath's own allocations are not among the sites.
    assert not any(mentions_own_code(row["site"]) for row in live["sites"])


def test_the_agent_starts_tracing_and_sees_what_grew_while_sampling_goes_on() -> None:
    port = free_port()
    program = RunningProgram(
        "--mcp-port",
        str(port),
        "leaky.py",
        env=clean_env(HOTPATH_THREADS_INTERVAL_MS="50"),
    )
    try:
        program.wait_for("holding 300000")
        program.wait_for(f"MCP server on {url(port)}", stream="stderr")
        before = call(port, "memory_sites").structured_content
        assert before["tracing"] is False and before["sites"] == []
        started = call(port, "trace_memory", on=True).structured_content
        assert started["tracing"] is True
        samples = [call(port, "threads").structured_content["samples"]]
        for _ in range(3):
            time.sleep(0.3)
            grown = call(port, "memory_sites", limit=5).structured_content
            samples.append(call(port, "threads").structured_content["samples"])
        leak = grown["sites"][0]
        assert leak["function"] == "leaky.leak" and leak["growth_since_start_bytes"] > 0
        assert leak["rising_snapshots"] >= 2
        # The thread sampler is not the one taking snapshots: it kept its pace meanwhile.
        assert all(later > earlier for earlier, later in pairwise(samples))
        stopped = call(port, "trace_memory", on=False).structured_content
        assert stopped["tracing"] is False
    finally:
        assert program.stop() == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_does_not_carry_hotpaths_tracing(tmp_path: Path) -> None:
    script = tmp_path / "forks.py"
    script.write_text(
        "import os, tracemalloc\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('child', tracemalloc.is_tracing(), flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('parent', tracemalloc.is_tracing(), flush=True)\n"
    )
    result = hotpath("run", "--alloc-sites", "--no-mcp", "--report", "none", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["child False", "parent True"]


def test_traces_grouped_in_c_match_tracemallocs_own_statistics() -> None:
    import tracemalloc

    from hotpath.collectors.memory import _group_in_python, _grouper

    tracemalloc.start(1)
    try:
        kept = [bytes(100 + i % 7) for i in range(5_000)]
        traces = tracemalloc._get_traces()  # type: ignore[attr-defined]
    finally:
        tracemalloc.stop()
    grouped = _grouper()(traces)
    assert grouped == _group_in_python(traces)
    line = next(site for site in grouped if site[1] and "test_memory" in site[0])
    assert grouped[line][1] >= len(kept)


def test_tracing_is_started_once_and_the_programs_own_tracing_left_alone() -> None:
    import tracemalloc

    from hotpath.collectors.memory import SiteTracer
    from hotpath.store.memory import MemoryTable

    table = MemoryTable(3)
    table.attach(SiteTracer())
    assert not table.tracing() and table.take_snapshot() is None
    assert table.start_tracing() is True and table.tracing()
    assert table.start_tracing() is False  # already on: the baseline stays
    baseline, snapshots = table.snapshots()
    assert baseline is not None and snapshots == [baseline]
    for _ in range(5):
        table.take_snapshot()
    assert len(table.snapshots()[1]) == 3 and table.snapshots()[0] is baseline  # bounded
    assert table.stop_tracing() is True and not tracemalloc.is_tracing()
    tracemalloc.start(1)  # the program's own
    try:
        assert table.start_tracing() is False and table.stop_tracing() is False
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


@counting
def test_the_records_of_queue_traffic_are_hotpaths_not_the_programs(tmp_path: Path) -> None:
    options = ("--alloc", "--exclude", "alloc_queues.make_unreported")
    data = profile("alloc_queues.py", options=options, tmp=tmp_path)
    # Reported: the two queues of make_reported (one line, so one site), 1000 each.
    assert [c["sent"] for c in data["channels"]["channels"]] == [2000]
    rows = functions(data)
    reported, unreported = (
        rows["alloc_queues.traffic_on_reported"],
        rows["alloc_queues.traffic_on_unreported"],
    )
    # The same traffic asks the allocator the same: hotpath's records of it are not counted.
    assert reported["allocations"] == unreported["allocations"]
    assert reported["allocated_bytes"] == unreported["allocated_bytes"]

"""Threads and gauges, checked through the MCP tools on a fixture of known behaviour."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from mcp_client import call, url
from support import FIXTURES, RunningProgram, clean_env, free_port, python

import hotpath

WORKERS, INCREMENTS, DECREMENTS = 4, 1000, 400


@pytest.fixture(scope="module")
def program() -> Iterator[tuple[RunningProgram, int]]:
    port = free_port()
    running = RunningProgram(
        "--mcp-port",
        str(port),
        "threads_gauges.py",
        env=clean_env(HOTPATH_THREADS_INTERVAL_MS="100"),
    )
    running.wait_for("ready")
    running.wait_for(f"MCP server on {url(port)}", stream="stderr")
    time.sleep(0.6)  # a few samples with the spinner spinning
    yield running, port
    assert running.stop() == 0
    assert running.rest() == "ready\nbye\n"


def threads_by_name(port: int) -> dict[str, Any]:
    answer = call(port, "threads", limit=50).structured_content
    return {row["name"]: row for row in answer["threads"]}


def test_spinner_is_busy_and_sleeper_idle(program: tuple[RunningProgram, int]) -> None:
    rows = threads_by_name(program[1])
    # Busy, though not a whole core: it shares the GIL, and CI machines are shared too.
    assert rows["spinner"]["cpu_percent"] > 25
    assert rows["spinner"]["cpu_percent_max"] > 40
    assert rows["sleeper"]["cpu_percent"] < 5
    assert rows["sleeper"]["status"] == "sleeping"
    assert not rows["spinner"]["hotpath_own"] and not rows["MainThread"]["hotpath_own"]


def test_hotpath_threads_are_marked(program: tuple[RunningProgram, int]) -> None:
    rows = threads_by_name(program[1])
    assert rows["hotpath-mcp"]["hotpath_own"] and rows["hotpath-sampler"]["hotpath_own"]


def test_threads_are_sorted_by_cpu_and_process_figures_are_real(
    program: tuple[RunningProgram, int],
) -> None:
    answer = call(program[1], "threads").structured_content
    percents = [row["cpu_percent"] for row in answer["threads"]]
    assert percents == sorted(percents, reverse=True)
    # The busiest of the program's threads (hotpath's server may be busy answering).
    program_threads = [row for row in answer["threads"] if not row["hotpath_own"]]
    assert program_threads[0]["name"] == "spinner"
    process = answer["process"]
    assert process["rss_bytes"] > 10 * 2**20 and process["rss_max_bytes"] >= process["rss_bytes"]
    assert process["threads"] == answer["total_threads"] >= 5
    # A thread that ended stays listed, with its final figures.
    assert "finisher" in {row["name"] for row in answer["ended_threads"]}


def test_gauges_updated_from_several_threads_are_exact(program: tuple[RunningProgram, int]) -> None:
    answer = call(program[1], "gauges", limit=100).structured_content
    gauges = {row["name"]: row for row in answer["gauges"]}
    jobs = gauges["jobs"]
    assert jobs["value"] == WORKERS * (INCREMENTS - DECREMENTS)
    assert jobs["updates"] == WORKERS * (INCREMENTS + DECREMENTS)
    assert jobs["min"] >= 0 and jobs["max"] <= WORKERS * INCREMENTS
    source = (FIXTURES / "threads_gauges.py").read_text().splitlines()
    dec_line = source.index('        hotpath.gauge("jobs").dec()') + 1
    assert jobs["location"] == f"{FIXTURES / 'threads_gauges.py'}:{dec_line}"  # ran last
    temperature = gauges["temperature"]
    assert (temperature["value"], temperature["min"], temperature["max"]) == (20, 18, 25.5)
    assert temperature["updates"] == 4 and not temperature["builtin"]
    # The program's gauges come first; then hotpath's built-in ones.
    assert [row["builtin"] for row in answer["gauges"][:2]] == [False, False]
    assert gauges["process.rss_bytes"]["builtin"] and gauges["process.threads"]["value"] >= 5


def test_gauge_logs_give_the_history_newest_first(program: tuple[RunningProgram, int]) -> None:
    logs = call(program[1], "gauge_logs", gauge_name="temperature", limit=3).structured_content
    assert [entry["value"] for entry in logs["logs"]] == [20, 18, 25.5]
    assert {entry["thread_name"] for entry in logs["logs"]} == {"MainThread"}


def test_event_loop_lag_rises_when_a_coroutine_blocks(program: tuple[RunningProgram, int]) -> None:
    answer = call(program[1], "gauges", limit=100).structured_content
    lag = {row["name"]: row for row in answer["gauges"]}["event_loop.lag_ms[MainThread]"]
    # The loop was blocked for 1 s while the sampler probed it every 100 ms.
    assert 500 <= lag["max"] <= 1200
    assert lag["min"] < 50


def test_gauge_api_costs_nothing_outside_hotpath() -> None:
    assert hotpath._gauges is None
    assert hotpath.gauge("x") is hotpath.NO_GAUGE
    assert hotpath.gauge("x").set(1).inc(2).dec(3) is hotpath.NO_GAUGE
    loaded = (
        "import hotpath, sys; hotpath.gauge('a').inc(); "
        "heavy = ('hotpath', 'rich', 'mcp', 'psutil'); "
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    plain = python("-c", loaded)
    assert plain.stdout == "['hotpath', 'hotpath.no_gauge']\n"


def test_the_switch_interval_is_short_only_while_hotpath_works() -> None:
    from hotpath.background import ShortSwitchInterval

    before = sys.getswitchinterval()
    switch = ShortSwitchInterval()
    with switch:
        assert sys.getswitchinterval() < before
        with switch:  # overlapping work keeps it short until the last ends
            pass
        assert sys.getswitchinterval() < before
    assert sys.getswitchinterval() == before

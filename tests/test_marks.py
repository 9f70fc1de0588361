"""Marks, windows and diffs on a live run (issue 18): the agent's measure-change-measure loop,
against a fixture whose phases the test drives: 30 calls of `work` at 1 ms, a mark, then 50
calls at 3 ms."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp_client import call, url
from support import RunningProgram, free_port


@pytest.fixture(scope="module")
def phased() -> Iterator[tuple[RunningProgram, int]]:
    port = free_port()
    program = RunningProgram("--mcp-port", str(port), "phased.py")
    program.wait_for("phase done 30")
    program.wait_for(f"[hotpath] MCP server on {url(port)}", stream="stderr")
    yield program, port
    assert program.stop() == 0


def _rows(answer: object) -> dict[str, dict[str, object]]:
    return {row["name"]: row for row in answer.structured_content["functions"]}  # type: ignore[attr-defined]


def test_a_window_since_a_mark_counts_exactly_what_came_after(
    phased: tuple[RunningProgram, int],
) -> None:
    program, port = phased
    marked = call(port, "mark", label="before-slower")
    assert not marked.is_error
    assert marked.structured_content["label"] == "before-slower"
    assert program.process.stdin is not None
    program.process.stdin.write("slower\n")
    program.process.stdin.flush()
    program.wait_for("phase done 50")

    whole = _rows(call(port, "functions_timing", limit=50))
    window = _rows(call(port, "functions_timing", limit=50, since="before-slower"))
    assert whole["phased.work"]["calls"] == 80
    assert window["phased.work"]["calls"] == 50  # exactly the calls after the mark
    assert window["phased.steady"]["calls"] == 50
    # Its percentiles are those of the window's calls alone: all of them about 3 ms.
    assert 2.9e6 <= window["phased.work"]["percentiles_ns"]["p50"] <= 4.5e6
    assert whole["phased.work"]["percentiles_ns"]["p50"] >= 2.9e6  # 50 of 80 are slow
    assert window["phased.work"]["min_ns"] >= 2.9e6

    changed = call(port, "diff", since="before-slower")
    assert not changed.is_error
    answer = changed.structured_content
    top = answer["functions"][0]
    assert top["name"] == "phased.work"  # the one that got slower comes first
    assert (top["calls_before"], top["calls_after"]) == (30, 50)
    assert 2.0 <= top["avg_ratio"] <= 4.5 and "slower" in top["change"]  # 1 ms -> 3 ms
    assert answer["summary"].startswith("")
    assert "phased.work" in answer["summary"]


def test_marks_are_named_checked_and_bounded(phased: tuple[RunningProgram, int]) -> None:
    _, port = phased
    unknown = call(port, "functions_timing", since="never-made")
    assert unknown.is_error and "no mark 'never-made'" in unknown.content[0].text
    assert call(port, "mark", label="start").is_error  # reserved
    for number in range(25):
        call(port, "mark", label=f"m{number}")
    labels = [m["label"] for m in call(port, "mark", label="last").structured_content["marks"]]
    assert len(labels) == 20 and labels[-1] == "last" and "m0" not in labels
    # A window that began at the start is the whole run.
    whole = _rows(call(port, "functions_timing", limit=50))
    start = _rows(call(port, "functions_timing", limit=50, since="start"))
    assert start["phased.work"]["calls"] == whole["phased.work"]["calls"]


def test_a_window_subtracts_allocations_and_keeps_idle_functions_exact() -> None:
    from collections import Counter

    from test_processes import _Fixed, _stats, _store

    from hotpath.store.functions import Allocations, AllocationTotals
    from hotpath.store.marks import function_since, marked
    from hotpath.views import registry

    def counted(calls: int, size: int) -> AllocationTotals:
        made = Allocations(calls, calls * size)
        return AllocationTotals(made, made, Allocations(0, 0), Counter({10: calls}))

    store = _store()
    store.info.collectors["alloc"] = True
    busy, idle = _stats(store, [1_000] * 4, name="busy"), _stats(store, [2_000] * 3, name="idle")
    busy.allocations, idle.allocations = counted(4, 100), counted(3, 50)
    store.functions.attach(_Fixed([busy, idle]))
    store.mark("m")
    later = _stats(store, [1_000] * 4 + [5_000] * 6, name="busy")
    later.allocations = counted(10, 100)
    store.functions.attach(_Fixed([later, idle]))
    rows = {
        r["name"]: r for r in registry.call(store, "functions_alloc", {"since": "m"})["functions"]
    }
    assert set(rows) == {"app.busy"}  # idle made no call since the mark
    assert (rows["app.busy"]["calls"], rows["app.busy"]["allocations"]) == (6, 6)
    assert rows["app.busy"]["allocated_bytes"] == 600
    timed = registry.call(store, "functions_timing", {"since": "m"})["functions"]
    assert [(r["name"], r["calls"], r["min_ns"], r["max_ns"]) for r in timed] == [
        ("app.busy", 6, 5_000, 5_000)  # exact: the window's own calls, while few
    ]
    # A mark holds numbers, and gives back the reading it was made from.
    window = function_since(idle, marked(idle))
    assert (window.calls, window.total_ns, window.allocations.every.count) == (0, 0, 0)

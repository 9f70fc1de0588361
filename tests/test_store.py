"""The store stays bounded whatever the program does, and its numbers stay exact."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotpath.collectors.timing import NoToolIdError, TimingCollector
from hotpath.filters import FunctionFilter
from hotpath.store.functions import FunctionStats, FunctionTable

HERE = str(Path(__file__).resolve().parent)


@pytest.fixture
def timed() -> Iterator[
    Callable[..., tuple[FunctionTable, Callable[[], dict[str, FunctionStats]]]]
]:
    collectors: list[TimingCollector] = []

    def start(log_limit: int = 100, max_functions: int = 5000):
        table = FunctionTable(log_limit, max_functions)
        collector = TimingCollector(table, FunctionFilter(roots=[HERE]), "test_store")
        collector.start()
        collectors.append(collector)

        def stats() -> dict[str, FunctionStats]:
            collector.stop()
            return {s.info.qualname: s for s in table.snapshot(0)}

        return table, stats

    yield start
    for collector in collectors:
        collector.stop()


def work(x: int) -> int:
    return x + 1


def test_log_keeps_only_the_most_recent_calls_in_order(timed: Any) -> None:
    _, stats = timed(log_limit=25)
    for i in range(1000):
        work(i)
    row = stats()["work"]
    assert row.calls == 1000
    log = row.totals.recent_calls(1000)
    assert len(log) == 25
    # What is kept stays bounded, not just what is shown.
    assert sum(len(batch.ends) for batch in row.totals.batches) < 25 + 256
    assert [entry.end_ns for entry in log] == sorted(entry.end_ns for entry in log)


def test_function_table_is_capped_and_counts_what_it_turns_away(timed: Any) -> None:
    table, stats = timed(max_functions=50)
    for i in range(300):
        namespace: dict[str, Any] = {}
        exec(compile(f"def generated_{i}():\n    return {i}\n", __file__, "exec"), namespace)
        namespace[f"generated_{i}"]()
    stats()
    assert len(table.functions) == 50
    # Each exec'd source is two code objects (its module and its function): 600 in all.
    assert table.dropped >= 550
    # Functions seen only returning (they started before hotpath did) have no calls.
    assert all(row.calls == 1 for row in table.snapshot(0) if row.calls)


def test_pending_calls_are_folded_in_batches(timed: Any) -> None:
    table, stats = timed()
    for i in range(100_000):
        work(i)
    row = stats()["work"]
    assert row.calls == 100_000
    assert row.totals.completed == 100_000
    # Nothing hotpath keeps per function grows with the number of calls.
    record = row.info.records[0]
    assert len(record.buf) < table.flush_at
    assert len(row.totals.buckets) < 200


def test_ended_threads_are_folded_into_their_functions(timed: Any) -> None:
    table, stats = timed()

    def run() -> None:
        for i in range(10):
            work(i)

    for _ in range(5):
        threads = [threading.Thread(target=run) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    row = stats()["work"]
    assert row.calls == 500
    # Only threads still alive keep records of their own. A thread's local storage is torn
    # down just after join() returns, so allow it a moment.
    deadline = time.monotonic() + 2
    while table.live_threads() > threading.active_count() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert table.live_threads() <= threading.active_count()
    assert len(row.info.records) <= threading.active_count() + 1


def test_many_threads_each_count_their_own_calls_concurrently(timed: Any) -> None:
    _, stats = timed()
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        for i in range(2_000):
            work(i)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stats()["work"].calls == 16_000


def test_a_clear_error_when_every_tool_id_is_taken() -> None:
    monitoring = sys.monitoring
    taken = [tool for tool in range(6) if monitoring.get_tool(tool) is None]
    for tool in taken:
        monitoring.use_tool_id(tool, "someone else")
    try:
        collector = TimingCollector(FunctionTable(10, 10), FunctionFilter(roots=[HERE]), "t")
        with pytest.raises(NoToolIdError, match=r"every sys\.monitoring tool id"):
            collector.start()
    finally:
        for tool in taken:
            monitoring.free_tool_id(tool)


def test_hotpath_prefers_a_tool_id_no_standard_tool_uses(timed: Any) -> None:
    timed()
    assert sys.monitoring.get_tool(3) == "hotpath"
    assert {sys.monitoring.get_tool(tool) for tool in (0, 1, 2)} == {None}

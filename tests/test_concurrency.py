"""Channels, futures and streams on a pipeline of known numbers, live over MCP and at exit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_client import call, call_many, url
from support import RunningProgram, free_port, hotpath, python

JOBS, URGENT, HANDOFF = 40, 12, 25
CHANNELS = {
    # name: (kind, capacity, sent, received, max size)
    "jobs": ("asyncio.Queue", "bounded[5]", JOBS, JOBS, 5),
    "results": ("asyncio.Queue", "unbounded", JOBS, JOBS, JOBS),
    "urgent": ("asyncio.PriorityQueue", "bounded[10]", URGENT, URGENT, 10),
    "handoff": ("queue.Queue", "unbounded", HANDOFF, HANDOFF, None),
    "notes": ("queue.SimpleQueue", "unbounded", 3, 3, 3),
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, Any]]]:
    """The program waiting at "ready", and what the tools answered then; the JSON report after."""
    port = free_port()
    output = tmp_path_factory.mktemp("concurrency") / "report.json"
    program = RunningProgram("--mcp-port", str(port), "--output", str(output), "concurrency.py")
    program.wait_for("ready")
    program.wait_for(f"MCP server on {url(port)}", stream="stderr")
    names = ("channels", "futures", "streams")
    answers = call_many(port, [(name, {"limit": 50}) for name in names])
    yield (
        port,
        {name: answer.structured_content for name, answer in zip(names, answers, strict=True)},
    )
    assert program.stop() == 0
    assert json.loads(output.read_text())  # the exit report is checked below


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


def test_channels_count_every_message(live: tuple[int, dict[str, Any]]) -> None:
    channels = by_name(live[1]["channels"]["channels"])
    assert set(channels) == set(CHANNELS)
    for name, (kind, capacity, sent, received, max_size) in CHANNELS.items():
        row = channels[name]
        assert (row["kind"], row["capacity"], row["sent"], row["received"]) == (
            kind,
            capacity,
            sent,
            received,
        ), name
        if max_size is not None:  # the thread may run ahead of the loop, or not
            assert row["max_queue_size"] == max_size, name
        assert row["queue_size"] == 0
        assert row["instances"] == {"created": 1, "live": 1, "closed": 0}
        assert row["delay"]["count"] == received
        assert row["location"] == f"concurrency.py:{row['location'].split(':')[1]}"


def test_the_slow_consumer_fills_the_bounded_queue(live: tuple[int, dict[str, Any]]) -> None:
    jobs = by_name(live[1]["channels"]["channels"])["jobs"]
    assert jobs["max_queue_size"] == 5
    # The consumer sleeps 1 ms per job: a job waits for the five before it.
    assert jobs["delay"]["percentiles_ns"]["p50"] > 3_000_000


def test_channel_logs_show_messages_senders_and_delays(live: tuple[int, dict[str, Any]]) -> None:
    logs = call(live[0], "channel_logs", channel_name="handoff", limit=4).structured_content["logs"]
    receives = [entry for entry in logs if entry["op"] == "receive"]
    assert receives[0]["message"] == "24"
    assert all(entry["delay_ns"] is not None and entry["delay_ns"] >= 0 for entry in receives)
    sends = call(live[0], "channel_logs", channel_name="concurrency.py:65", limit=50)
    assert {e["by"] for e in sends.structured_content["logs"] if e["op"] == "send"} == {"feeder"}
    urgent = call(live[0], "channel_logs", channel_name="urgent", limit=1).structured_content
    # The last receive of a priority queue: the highest number put while it was full.
    assert urgent["logs"][0]["op"] == "receive"
    assert urgent["logs"][0]["message"] == "(12, 'task-0')"


def test_futures_report_states_and_outcomes(live: tuple[int, dict[str, Any]]) -> None:
    futures = by_name(live[1]["futures"]["futures"])
    expected = {
        "concurrency.producer": ({"done": 1}, {"NoneType": 1}),
        "concurrency.consumer": ({"done": 1}, {"NoneType": 1}),
        "concurrency.fail": ({"failed": 2}, {"ValueError": 2}),
        "concurrency.sleep_forever": ({"cancelled": 1}, {"CancelledError": 1}),
        "concurrency.wait_for_stdin": ({"suspended": 1}, {}),
        "concurrency.main": ({"suspended": 1}, {}),
    }
    assert set(futures) == set(expected)
    for name, (states, outcomes) in expected.items():
        row = futures[name]
        assert {k: v for k, v in row["states"].items() if v} == states, name
        assert row["outcomes"] == outcomes, name
        assert row["calls"] == sum(states.values())
    # The consumer awaited once per job at least: every one a poll.
    assert futures["concurrency.consumer"]["polls"] > JOBS
    assert futures["concurrency.consumer"]["active_time"]["max_ns"] > 0
    # The stuck ones come first.
    assert live[1]["futures"]["futures"][0]["name"] in (
        "concurrency.main",
        "concurrency.wait_for_stdin",
    )


def test_future_logs_list_instances(live: tuple[int, dict[str, Any]]) -> None:
    logs = call(live[0], "future_logs", future_name="fail", limit=5).structured_content["logs"]
    assert [entry["state"] for entry in logs] == ["failed", "failed"]
    assert {entry["outcome"] for entry in logs} == {"ValueError"}
    assert all(entry["created_at"].startswith("concurrency.py:") for entry in logs)
    assert all(entry["polls"] == 2 for entry in logs)  # the first step, and the one after sleep(0)


def test_streams_count_items_and_how_they_ended(live: tuple[int, dict[str, Any]]) -> None:
    streams = by_name(live[1]["streams"]["streams"])
    countdown, ticks = streams["concurrency.countdown"], streams["concurrency.ticks"]
    assert (countdown["instances"], countdown["items"], countdown["exhausted"]) == (1, 5, 1)
    assert (ticks["instances"], ticks["items"], ticks["closed_early"]) == (1, 2, 1)
    assert countdown["state"] == ticks["state"] == "finished"
    assert countdown["time_between_items"]["count"] == 4
    logs = call(live[0], "stream_logs", stream_name="ticks", limit=5).structured_content["logs"]
    assert [entry["item"] for entry in logs] == ["'tick 1'", "'tick 0'"]


def test_the_exit_report_carries_the_same_numbers(
    live: tuple[int, dict[str, Any]], tmp_path: Path
) -> None:
    output = tmp_path / "again.json"
    result = hotpath(
        "run", "--no-mcp", "--report", "none", "--output", str(output), "concurrency.py"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    channels = by_name(report["channels"]["channels"])
    assert {n: (c["sent"], c["received"]) for n, c in channels.items()} == {
        n: (v[2], v[3]) for n, v in CHANNELS.items()
    }
    assert all(c["state"] == "closed" for c in channels.values())  # the queues were collected
    futures = by_name(report["futures"]["futures"])
    assert futures["concurrency.wait_for_stdin"]["states"]["done"] == 1
    assert futures["concurrency.fail"]["states"]["failed"] == 2
    streams = by_name(report["streams"]["streams"])
    assert streams["concurrency.ticks"]["closed_early"] == 1


def test_patched_queues_behave_exactly_as_unpatched_ones() -> None:
    expected = python("queue_behaviour.py")
    actual = hotpath("run", "--no-mcp", "--report", "none", "queue_behaviour.py")
    assert actual.returncode == expected.returncode == 1
    assert actual.stdout == expected.stdout
    assert actual.stderr == expected.stderr  # the uncaught QueueFull's traceback too
    assert "shut down" in actual.stdout or not hasattr(__import__("queue").Queue, "shutdown")


def test_messages_of_the_scripts_own_types_are_named_as_its_functions_are() -> None:
    from hotpath.collectors.messages import describe

    order = type("Order", (), {"__module__": "__main__"})()
    assert describe(order, "app") == "<app.Order>"
    assert describe([order, 3], "app") == "[<app.Order>, 3]"
    kind = type(Path("x"))  # a library's type keeps its module's name
    assert describe(Path("x"), "app") == f"<{kind.__module__}.{kind.__qualname__}>"


def test_a_collection_that_finalizes_a_queue_under_its_sites_lock_does_not_deadlock() -> None:
    """A garbage collection can run where hotpath allocates under a site's lock, and run
    there the finalizer of another queue of that site, which takes the same lock."""
    import asyncio
    import gc
    import threading

    from hotpath.collectors.channels import ChannelCollector
    from hotpath.store.channels import ChannelTable

    table = ChannelTable(log_limit=10)
    collector = ChannelCollector(table, lambda frame: True, "/", "t")
    collector.install()
    done = threading.Event()

    def work() -> None:
        cycle: list[object] = []
        cycle.append((asyncio.Queue(), cycle))  # freed only by the cycle collector
        del cycle
        (site,) = table.all()
        with site.lock:  # as when a receive folds the delay histogram and it allocates
            gc.collect()  # the queue's finalizer counts it closed, in this thread
        done.set()

    try:
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        worker.join(timeout=10)
        assert done.is_set(), "the thread waited on a lock it held"
        (reading,) = table.read()
        assert (reading.created, reading.closed, reading.live) == (1, 1, 0)
    finally:
        collector.uninstall()

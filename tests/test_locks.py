"""Locks on a known schedule (fixtures/locks.py), live over MCP and at exit; lock behaviour
with and without hotpath; the odd paths of the tracked locks themselves, on the twin the
suite runs on (HOTPATH_RECORDER)."""

from __future__ import annotations

import _thread
import gc
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from mcp_client import call_many, url
from prometheus_client.parser import text_string_to_metric_families
from support import (
    RECORDER,
    RunningProgram,
    exit_code_within,
    free_port,
    held_elsewhere,
    hotpath,
    python,
    run_script,
)

from hotpath.recorder.locks import lock_kit

MS = 1_000_000
ROUNDS, WAITERS, HOLD_NS = 10, 3, 50 * MS


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """What the tools answered while ``still`` was held, the fixture's own figures, and the
    exit report."""
    port = free_port()
    output = tmp_path_factory.mktemp("locks") / "report.json"
    program = RunningProgram("--mcp-port", str(port), "--output", str(output), "locks.py", "--wait")
    measured = json.loads(program.wait_for("waited_ns"))
    program.wait_for("ready")
    program.wait_for(f"MCP server on {url(port)}", stream="stderr")
    calls = [
        ("locks", {"limit": 50}),
        ("lock_logs", {"lock_name": "gate", "limit": 100}),
        ("lock_logs", {"lock_name": "shared", "limit": 100}),
    ]
    locks, gate_logs, shared_logs = (a.structured_content for a in call_many(port, calls))
    metrics = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    assert program.stop() == 0
    yield {
        "measured": measured,
        "locks": by_name(locks["locks"]),
        "gate_logs": gate_logs["logs"],
        "shared_logs": shared_logs["logs"],
        "metrics": {
            (sample.name, sample.labels.get("lock")): sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name.startswith("hotpath_lock_")
        },
        "report": by_name(json.loads(output.read_text())["locks"]["locks"]),
    }


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


def test_one_holder_and_three_waiters_give_the_schedules_waits_and_holds(
    live: dict[str, Any],
) -> None:
    gate = live["locks"]["gate"]
    assert gate["kind"] == "threading.Lock"
    assert gate["location"] == "locks.py:23"
    # The holder's ten acquisitions find it free; every waiter's finds it held.
    assert gate["acquisitions"] == ROUNDS * (WAITERS + 1)
    assert gate["contended"] == ROUNDS * WAITERS == live["measured"]["contended"]
    assert gate["failed_nonblocking"] == gate["timeouts"] == 0
    # Each waiter waits from the barrier to the holder's release: the 50 ms hold, 30 times
    # (each sleep as long as the machine let it be: the fixture's own clock says, within 10%;
    # a loaded machine oversleeps, never undersleeps).
    schedule = ROUNDS * WAITERS * HOLD_NS
    assert gate["wait_total_ns"] == pytest.approx(live["measured"]["waited_ns"], rel=0.1)
    assert 0.9 * schedule <= gate["wait_total_ns"] <= 1.5 * schedule
    assert gate["wait"]["count"] == ROUNDS * WAITERS
    assert gate["hold"]["count"] == ROUNDS * (WAITERS + 1)
    holder = [row for row in live["gate_logs"] if row["by"] == "holder"][::-1]  # oldest first
    assert len(holder) == ROUNDS
    for row, measured in zip(holder, live["measured"]["holds"], strict=True):
        assert row["hold_ns"] == pytest.approx(measured, rel=0.1)
        assert HOLD_NS <= row["hold_ns"] <= 1.5 * HOLD_NS
        assert row["wait_ns"] == 0
        assert row["function"].startswith("holder (locks.py:")
    waiters = [row for row in live["gate_logs"] if row["by"].startswith("waiter-")]
    assert len(waiters) == ROUNDS * WAITERS
    assert all(row["function"].startswith("waiter (locks.py:") for row in waiters)
    assert sum(row["wait_ns"] for row in waiters) == gate["wait_total_ns"]


def test_five_tasks_take_an_asyncio_lock_in_turn(live: dict[str, Any]) -> None:
    shared = live["locks"]["shared"]
    assert shared["kind"] == "asyncio.Lock"
    assert shared["acquisitions"] == 5
    assert shared["contended"] == 4  # the first finds it free
    # The k-th task waits for the k holds before it: 20 + 40 + 60 + 80 ms.
    measured = live["measured"]
    assert shared["wait_total_ns"] == pytest.approx(sum(measured["task_waits"]), rel=0.1)
    assert 0.9 * 200 * MS <= shared["wait_total_ns"] <= 1.5 * 200 * MS
    holds = [row["hold_ns"] for row in live["shared_logs"]][::-1]
    for hold, expected in zip(holds, measured["task_holds"], strict=True):
        assert hold == pytest.approx(expected, rel=0.1)
        assert 20 * MS <= hold <= 1.5 * 20 * MS
    assert {row["by"] for row in live["shared_logs"]} == {f"Task-{i}" for i in range(2, 7)}
    assert all(row["function"].startswith("tasks.<locals>.take (") for row in live["shared_logs"])


def test_a_semaphore_of_two_lets_two_of_four_workers_wait(live: dict[str, Any]) -> None:
    pool = live["locks"]["pool"]
    assert pool["kind"] == "threading.Semaphore"
    assert (pool["acquisitions"], pool["contended"]) == (4, 2)
    # Workers three and four wait for a first hold of 30 ms each.
    assert pool["wait_total_ns"] == pytest.approx(sum(live["measured"]["pooled"]), rel=0.1)
    assert 0.9 * 60 * MS <= pool["wait_total_ns"] <= 1.5 * 60 * MS
    assert pool["hold"]["count"] == 4
    assert 30 * MS <= pool["hold"]["max_ns"] <= 1.5 * 30 * MS


def test_an_rlock_taken_three_deep_counts_one_hold_each_time(live: dict[str, Any]) -> None:
    nested = live["locks"]["nested"]
    assert nested["kind"] == "threading.RLock"
    assert (nested["acquisitions"], nested["contended"], nested["hold"]["count"]) == (3, 0, 3)
    # Each hold as long as the fixture's own clock says (a loaded machine oversleeps).
    assert nested["hold_total_ns"] >= 3 * 10 * MS
    assert nested["hold_total_ns"] == pytest.approx(sum(live["measured"]["nested_holds"]), rel=0.1)


def test_a_conditions_lock_and_waits_are_counted_and_its_ownership_checks_are_not(
    live: dict[str, Any],
) -> None:
    cond = live["locks"]["cond"]  # Condition(Lock()) on one line: one site
    assert cond["instances"]["created"] == 2
    # Five notifies, five consumer rounds and their re-acquisitions after each wait.
    assert cond["acquisitions"] == 15
    assert cond["cond_waits"]["count"] == 5
    assert cond["cond_waits"]["timeouts"] == 0
    # Condition._is_owned tries the plain lock without blocking at every wait and notify:
    # not the program's tries.
    assert cond["failed_nonblocking"] == 0


def test_only_the_programs_locks_are_reported(live: dict[str, Any]) -> None:
    """The queue, the thread pool, their conditions and events, asyncio's and hotpath's own
    locks are not the program's."""
    assert set(live["locks"]) == {"gate", "shared", "pool", "nested", "cond", "still"}
    assert all(row["location"].startswith("locks.py:") for row in live["locks"].values())


def test_who_holds_a_lock_now_and_who_waits(live: dict[str, Any]) -> None:
    still = live["locks"]["still"]
    assert still["state"] == "contended"
    assert still["waiting_now"] == 1
    assert [holder["by"] for holder in still["holders"]] == ["MainThread"]
    assert still["longest_hold_now_ns"] >= 50 * MS
    assert still["holders"][0]["held_ns"] == still["longest_hold_now_ns"]
    # Sorted by what hurts: the lock with the most waiting first.
    assert next(iter(live["locks"])) == "gate"


def test_metrics_export_the_locks_figures(live: dict[str, Any]) -> None:
    metrics, gate = live["metrics"], live["locks"]["gate"]
    site = "gate (locks.py:23)"
    assert metrics["hotpath_lock_acquisitions_total", site] == ROUNDS * (WAITERS + 1)
    assert metrics["hotpath_lock_contended_total", site] == ROUNDS * WAITERS
    assert metrics["hotpath_lock_wait_seconds_total", site] == gate["wait_total_ns"] / 1e9
    assert metrics["hotpath_lock_waiting", f"still ({live['locks']['still']['location']})"] == 1


def test_the_exit_report_has_the_same_figures(live: dict[str, Any]) -> None:
    report = live["report"]
    for name in ("gate", "shared", "pool", "nested", "cond"):
        for field in ("acquisitions", "contended", "wait_total_ns", "hold_total_ns"):
            assert report[name][field] == live["locks"][name][field], (name, field)
    # The blocked thread got it in the end, and ended without letting it go.
    assert report["still"]["acquisitions"] == 2
    assert [holder["by"] for holder in report["still"]["holders"]] == ["blocked"]


def test_locks_behave_exactly_as_without_hotpath() -> None:
    expected = python("lock_behaviour.py")
    actual = hotpath("run", "--no-mcp", "--report", "none", "lock_behaviour.py")
    assert actual.returncode == expected.returncode == 1
    assert actual.stdout == expected.stdout
    assert "raised" in actual.stdout and "child: reinit lock is free True" in actual.stdout
    assert actual.stderr == expected.stderr  # the uncaught error's traceback too


def test_the_report_shows_the_locks_table() -> None:
    result = hotpath("run", "--no-mcp", "locks.py")
    assert result.returncode == 0, result.stderr
    table = result.stderr[result.stderr.index("locks, by total wait") :]
    assert "gate (locks.py:23)" in table and "threading.Lock" in table


# -- the tracked locks themselves, on this run's twin ----------------------------------------


KIT = lock_kit(RECORDER)


def test_an_account_counts_and_logs_what_its_locks_do() -> None:
    account = KIT.account(3)
    lock = KIT.lock(_thread.allocate_lock(), account)
    for _ in range(5):
        with lock:
            pass
    assert lock.acquire(False)
    assert not lock.acquire(False)
    assert not lock.acquire(timeout=0.01)
    lock.release()
    reading = account.read()
    counts = (reading.acquisitions, reading.contended, reading.failed, reading.timeouts)
    assert counts == (6, 0, 1, 1)
    assert reading.wait_ns >= 10 * MS
    assert reading.hold.count == 6
    assert len(reading.log) == 3  # the last three holds, oldest first
    assert [row[0] for row in reading.log] == sorted(row[0] for row in reading.log)
    *_, wait, who, code = reading.log[-1]
    assert who is threading.current_thread() and wait == 0
    assert code is test_an_account_counts_and_logs_what_its_locks_do.__code__


def test_a_thread_that_ends_holding_a_lock_leaves_it_held_and_counted() -> None:
    account = KIT.account(10)
    lock = KIT.lock(_thread.allocate_lock(), account)
    thread = threading.Thread(target=lock.acquire)
    thread.start()
    thread.join()
    who, _, waiting = lock._hotpath_state()
    assert who is thread and waiting == 0
    lock.release()  # a plain lock may be released by another thread: the hold ends
    assert account.read().hold.count == 1
    assert lock._hotpath_state()[0] is None


def test_a_lock_dropped_while_held_frees_what_it_logged() -> None:
    account = KIT.account(2)
    for _ in range(50):
        lock = KIT.lock(_thread.allocate_lock(), account)
        lock.acquire()
        del lock  # never released
    gc.collect()
    rlock = KIT.rlock(_thread.RLock(), account)
    with rlock, rlock:
        pass
    assert account.read().hold.count == 1


def test_a_waiter_interrupted_by_an_exception_leaves_no_waiter_behind() -> None:
    account = KIT.account(10)
    lock = KIT.lock(_thread.allocate_lock(), account)
    lock.acquire()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            lock.acquire(True, "soon")  # type: ignore[arg-type]
        except TypeError as error:
            errors.append(error)

    thread = threading.Thread(target=wait)
    thread.start()
    thread.join()
    assert errors and lock._hotpath_state()[2] == 0
    lock.release()


def test_waiters_are_counted_while_they_wait() -> None:
    account = KIT.account(10)
    lock = KIT.lock(_thread.allocate_lock(), account)
    lock.acquire()
    threads = [threading.Thread(target=lambda: (lock.acquire(), lock.release())) for _ in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while lock._hotpath_state()[2] < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert lock._hotpath_state()[2] == 3
    lock.release()
    for thread in threads:
        thread.join()
    reading = account.read()
    assert (reading.acquisitions, reading.contended, lock._hotpath_state()[2]) == (4, 3, 0)


def test_a_semaphore_acquired_and_never_released_keeps_a_bounded_list() -> None:
    from hotpath.collectors.locks import ATTRIBUTE, MAX_OPEN, LockCollector
    from hotpath.store.locks import LockTable

    table = LockTable()
    here = test_a_semaphore_acquired_and_never_released_keeps_a_bounded_list.__code__
    collector = LockCollector(table, lambda frame: frame.f_code is here, "/", 10, RECORDER)
    collector.install()
    try:
        permits = threading.Semaphore(3 * MAX_OPEN)
        for _ in range(3 * MAX_OPEN):
            permits.acquire()
    finally:
        collector.uninstall()
    assert len(getattr(permits, ATTRIBUTE).open) == MAX_OPEN
    (reading,) = table.read()
    assert (reading.name, reading.kind) == ("permits", "threading.Semaphore")
    assert reading.acquisitions == 3 * MAX_OPEN
    assert len(reading.holders) == MAX_OPEN
    permits.release(3 * MAX_OPEN)
    assert table.read()[0].hold.count == MAX_OPEN


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")  # on purpose
def test_a_fork_while_hotpath_reads_a_lock_leaves_the_childs_locks_usable() -> None:
    """A reading (the MCP server's thread) may hold a site's or an account's lock when the
    program forks: the child's tracked semaphores, events and asyncio locks must not wait
    on it for ever."""
    from hotpath.collectors.locks import ATTRIBUTE, LockCollector
    from hotpath.store.locks import LockTable

    table = LockTable()
    here = test_a_fork_while_hotpath_reads_a_lock_leaves_the_childs_locks_usable.__code__
    collector = LockCollector(table, lambda frame: frame.f_code is here, "/", 10, RECORDER)
    collector.install()
    try:
        slots = threading.Semaphore(1)
        ready = threading.Event()
    finally:
        collector.uninstall()
    (site, _) = sorted(collector.table.all(), key=lambda site: site.id)
    # Every lock a reading takes, held across the fork.
    with held_elsewhere(site.lock, site.account.lock, getattr(slots, ATTRIBUTE).guard):
        pid = os.fork()
        if pid == 0:  # the child: as the session does at a fork
            collector.forget_in_child()
            with slots:
                ready.set()
            os._exit(0 if ready.wait(0) else 1)
    assert exit_code_within(pid, 10) == 0


def test_a_line_that_creates_a_lock_and_a_semaphore_tracks_both() -> None:
    """Thread locks record into the recorder twin's account, semaphores into a Python one:
    one line making both gets an entry of each, and both work."""
    from hotpath.collectors.locks import LockCollector
    from hotpath.store.locks import LockTable

    table = LockTable()
    here = test_a_line_that_creates_a_lock_and_a_semaphore_tracks_both.__code__
    collector = LockCollector(table, lambda frame: frame.f_code is here, "/", 10, RECORDER)
    collector.install()
    try:
        gate, permits, again = threading.Lock(), threading.Semaphore(2), threading.RLock()
        with gate, permits, again:
            pass
    finally:
        collector.uninstall()
    readings = {reading.kind: reading for reading in table.read()}
    assert sorted(readings) == ["threading.Lock", "threading.Semaphore"]
    assert readings["threading.Lock"].created == 2  # the Lock and the RLock: one site
    assert readings["threading.Lock"].acquisitions == 2
    assert readings["threading.Semaphore"].acquisitions == 1


def test_asyncio_waits_cancelled_and_timed_out_are_counted() -> None:
    """A cancelled acquire (how asyncio's timeouts end a wait) counts as a timeout; a
    Condition's and an Event's wait() calls are timed, a cancelled one counts as timed out."""
    import asyncio

    from hotpath.collectors.locks import LockCollector
    from hotpath.store.locks import LockTable

    table = LockTable()
    codes = set()

    async def scenario() -> None:
        gate = asyncio.Lock()
        permits = asyncio.Semaphore(1)
        ready = asyncio.Condition()
        event = asyncio.Event()
        async with gate:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(gate.acquire(), 0.02)
        async with permits:
            pass
        async with ready:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ready.wait(), 0.02)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(event.wait(), 0.02)
        event.set()
        assert await event.wait()

    codes.add(scenario.__code__)
    collector = LockCollector(table, lambda frame: frame.f_code in codes, "/", 10, RECORDER)
    collector.install()
    try:
        asyncio.run(scenario())
    finally:
        collector.uninstall()
    found = {reading.name: reading for reading in table.read()}
    gate, permits, ready, event = (found[n] for n in ("gate", "permits", "ready", "event"))
    assert (gate.kind, gate.acquisitions, gate.contended, gate.timeouts) == (
        "asyncio.Lock", 1, 0, 1,
    )  # fmt: skip
    assert 20 * MS <= gate.wait_ns <= 1.5 * 20 * MS
    assert (permits.kind, permits.acquisitions, permits.hold.count) == ("asyncio.Semaphore", 1, 1)
    # The condition's own lock: taken, let go in wait(), taken back after the timeout.
    assert (ready.kind, ready.acquisitions, ready.waits.count, ready.wait_timeouts) == (
        "asyncio.Condition", 2, 1, 1,
    )  # fmt: skip
    assert (event.kind, event.waits.count, event.wait_timeouts) == ("asyncio.Event", 2, 1)


def test_a_child_processs_locks_are_listed_with_its_pid(tmp_path: Any) -> None:
    out, report = run_script(
        "import multiprocessing, threading\n"
        "def work():\n"
        "    guard = threading.Lock()\n"
        "    for _ in range(20):\n"
        "        with guard:\n"
        "            pass\n"
        "if __name__ == '__main__':\n"
        "    child = multiprocessing.get_context('fork').Process(target=work)\n"
        "    child.start()\n"
        "    child.join()\n"
        "    mine = threading.Lock()\n"
        "    with mine:\n"
        "        print(child.pid, flush=True)\n",
        tmp_path,
    )
    rows = by_name(report["locks"]["locks"])
    child = int(out)
    assert (rows["guard"]["pid"], rows["guard"]["acquisitions"]) == (child, 20)
    assert rows["mine"]["pid"] != child and rows["mine"]["acquisitions"] == 1

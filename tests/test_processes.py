"""Child processes' figures (issue 17): the wire format, the merge by name, the receiver on
loopback, the bound on ended children, and real children of every kind, whose calls must add
up to what one process making them all would count."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from support import RECORDER, hotpath, profile, python

from hotpath.child import FUNCTIONS_PER_MESSAGE, ChildReporter
from hotpath.collectors.children import ChildReceiver
from hotpath.store import RunInfo, Store
from hotpath.store.cpu import to_wire as cpu_wire
from hotpath.store.functions import FunctionStats, ThreadIdentity, Totals
from hotpath.store.processes import MAX_ENDED, stats_from_wire, to_wire
from hotpath.store.threads import ProcessFigures
from hotpath.views.functions import functions_timing


def _store() -> Store:
    filters: dict[str, list[str] | str | None] = {
        "include": [], "exclude": [], "default_roots": [], "default_roots_chosen": None,
    }  # fmt: skip
    return Store(RunInfo([], filters, {}, (50.0, 99.0), 0.25), 10, 10)


def _stats(
    store: Store, durations: list[int], errors: int = 0, name: str = "work"
) -> FunctionStats:
    """A function's figures as the recorder would give them for these finished calls."""
    info = store.functions.add_function(f"app.{name}", "app", name, _stats.__code__, "function")
    assert info is not None
    totals = Totals(10)
    ends = list(range(1, len(durations) + 1))
    totals.add_calls(durations, ends, {e: "ValueError" for e in ends[:errors]}, ThreadIdentity())
    totals.total_ns = sum(durations)
    return FunctionStats(info, totals, 0, 0)


def test_a_childs_figures_add_to_the_parents_as_if_one_process_made_every_call() -> None:
    parent_calls = [1_000 * (i % 13 + 1) for i in range(40)]
    child_calls = [7_000 * (i % 5 + 1) for i in range(25)]
    store = _store()
    parent = _stats(store, parent_calls, errors=2)
    child = to_wire(_stats(_store(), child_calls, errors=1))
    child = json.loads(json.dumps(child))  # as it crosses the socket
    store.processes.hello(4242, 1, ["worker"], "fork")
    store.processes.batch(4242, [child])
    (merged,) = store.processes.merged([parent])
    oracle = _stats(_store(), parent_calls + child_calls)
    assert merged.calls == 65 and merged.totals.errors == 3
    assert merged.totals.all_ns == oracle.totals.all_ns
    assert (merged.totals.min_ns, merged.totals.max_ns) == (1_000, 35_000)
    assert merged.percentiles_ns((50.0, 99.0)) == oracle.percentiles_ns((50.0, 99.0))
    # The parent's own figures are left as they were.
    assert parent.calls == 40


@pytest.fixture
def receiver() -> Iterator[tuple[ChildReceiver, Store]]:
    store = _store()
    collector = ChildReceiver(store)
    collector.install()
    yield collector, store
    collector.finish()


def _child(address: str, *messages: object) -> None:
    host, port, _ = address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        for message in messages:
            sock.sendall(json.dumps(message).encode() + b"\n")


def _until(condition: object, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the receiver did not file it in time"
        time.sleep(0.01)


def test_the_receiver_files_batches_and_tools_answer_for_every_process(
    receiver: tuple[ChildReceiver, Store],
) -> None:
    collector, store = receiver
    parent = _stats(store, [5_000] * 10)
    store.functions.attach(_Fixed([parent]))
    token = collector.address.split(":")[2]
    wire = to_wire(_stats(_store(), [5_000] * 30))
    _child(
        collector.address,
        {"hello": token, "pid": 7, "parent_pid": 1, "argv": ["w"], "how": "spawn"},
        {"batch": [wire]},
        {"batch": [to_wire(_stats(_store(), [5_000] * 32))], "exit": "code 0"},
    )
    _until(lambda: any(child.exit for child in store.processes.children()))
    (child,) = store.processes.children()
    assert (child.pid, child.batches, child.exit, child.how) == (7, 2, "code 0", "spawn")
    (row,) = functions_timing(store)["functions"]
    assert row["calls"] == 42  # the parent's 10 and the child's latest figures, 32


def test_the_receiver_refuses_strangers_and_nonsense_and_keeps_serving(
    receiver: tuple[ChildReceiver, Store],
) -> None:
    collector, store = receiver
    token = collector.address.split(":")[2]
    _child(collector.address, {"hello": "wrong", "pid": 1, "parent_pid": 1, "argv": [], "how": ""})
    _child(collector.address, "not an object")
    _child(
        collector.address,
        {"hello": token, "pid": 8, "parent_pid": 1, "argv": [], "how": "fork"},
        {"batch": [{"name": "half a function"}]},
    )
    _child(
        collector.address,
        {"hello": token, "pid": 9, "parent_pid": 1, "argv": [], "how": "fork"},
        {"batch": [to_wire(_stats(_store(), [1_000] * 3))]},
    )  # closed without a last batch: it keeps what it sent
    _until(lambda: len([c for c in store.processes.children() if c.exit]) == 2)
    exits = {child.pid: child.exit for child in store.processes.children()}
    assert exits == {
        8: "sent what hotpath cannot read",
        9: "connection closed before its last batch",
    }
    assert functions_timing(store)["functions"][0]["calls"] == 3


def test_ended_children_beyond_the_kept_ones_are_folded_not_lost() -> None:
    store = _store()
    for pid in range(1, MAX_ENDED + 51):
        store.processes.hello(pid, 0, [], "fork")
        store.processes.batch(pid, [to_wire(_stats(_store(), [1_000] * 2))], exit="code 0")
    assert len(store.processes.children()) == MAX_ENDED
    assert store.processes.folded_processes == 50
    (merged,) = store.processes.merged([])
    assert merged.calls == 2 * (MAX_ENDED + 50)
    assert stats_from_wire(to_wire(merged), 0).calls == merged.calls


class _Fixed:
    """The recorder's part for the parent: fixed figures."""

    def __init__(self, stats: list[FunctionStats]) -> None:
        self.stats = stats

    def read(self, now_ns: int) -> list[FunctionStats]:
        return self.stats

    def recent_calls(self, info: object, limit: int) -> list[object]:
        return []

    def given_up(self) -> int:
        return 0

    def thread_allocations(self) -> list[object]:
        return []


def test_a_fork_pools_calls_add_up_exactly_though_with_terminates_it(tmp_path: Path) -> None:
    report = profile("fork_pool.py", tmp=tmp_path)
    functions = {row["name"]: row for row in report["functions_timing"]["functions"]}
    assert functions["fork_pool.task"]["calls"] == 400  # all in the workers
    assert functions["fork_pool.callee"]["calls"] == 1210  # 1,200 there, 10 in the parent
    assert report["status"]["collectors"]["processes"] is True
    # Who made them: the parent's 10 first, then each worker's.
    breakdown = functions["fork_pool.callee"]["processes"]
    assert breakdown[0] == {"pid": report["status"]["pid"], "calls": 10}
    assert sum(part["calls"] for part in breakdown) == 1210
    assert "processes" not in functions["fork_pool.main"]  # the parent's alone
    listed = report["processes"]["processes"]
    assert listed[0]["how"] == "the program" and listed[0]["pid"] == report["status"]["pid"]
    # Each worker that started is listed; one still starting when the 400 tiny tasks were
    # done is terminated before it says hello, and is not (3 of 4 once, under CI's load):
    # its calls were none, and every call is counted above.
    workers = listed[1:]
    assert 1 <= len(workers) <= 4 and {w["how"] for w in workers} == {"fork"}
    assert {w["parent_pid"] for w in workers} == {report["status"]["pid"]}
    assert sum(w["calls"] for w in workers) == 1200 + 400


def test_without_following_the_parent_reports_only_its_own(tmp_path: Path) -> None:
    report = profile("fork_pool.py", options=("--no-follow",), tmp=tmp_path)
    functions = {row["name"]: row for row in report["functions_timing"]["functions"]}
    assert "fork_pool.task" not in functions
    assert functions["fork_pool.callee"]["calls"] == 10
    assert "processes" not in report["status"]["collectors"]


def test_a_child_killed_mid_run_leaves_the_parents_run_intact(tmp_path: Path) -> None:
    script = tmp_path / "killed.py"
    script.write_text(
        "import os, signal, time\n"
        "def work():\n"
        "    return sum(range(100))\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    for _ in range(50):\n"
        "        work()\n"
        "    time.sleep(1.2)  # a batch goes out meanwhile\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "time.sleep(2)  # not reaped at once: the kernel keeps its status meanwhile\n"
        "_, status = os.waitpid(pid, 0)\n"
        "work()\n"
        "print('child', os.waitstatus_to_exitcode(status))\n"
    )
    report = profile(str(script), tmp=tmp_path, cwd=tmp_path)
    functions = {row["name"]: row for row in report["functions_timing"]["functions"]}
    assert functions["killed.work"]["calls"] == 51  # the child's 50 from its last batch, and 1
    (child,) = report["processes"]["processes"][1:]
    assert child["exit"] == "signal 9"  # read from /proc while it was not reaped yet


def test_spawn_and_forkserver_workers_calls_add_up_exactly(tmp_path: Path) -> None:
    report = profile("spawn_pool.py", tmp=tmp_path)
    functions = {row["name"]: row for row in report["functions_timing"]["functions"]}
    # 400 in a spawn Pool(4), 100 in a forkserver ProcessPoolExecutor: their workers report
    # under the script's own names (a spawned child imports it as __mp_main__).
    assert functions["spawn_pool.task"]["calls"] == 500
    assert functions["spawn_pool.callee"]["calls"] == 1510
    # The module body ran in the parent and again in each worker that started before its
    # pool ended (under python too, a spawn worker the pool terminates while it still starts
    # never runs it): the parent's, and up to 4 spawn and 2 forkserver workers'.
    assert 2 <= functions["spawn_pool.<module>"]["calls"] <= 7


def test_a_python_subprocess_is_followed_and_behaves_as_under_python(tmp_path: Path) -> None:
    plain = python("subprocess_child.py")
    output = tmp_path / "report.json"
    under = hotpath(
        "run", "--no-mcp", "--report", "none", "-o", str(output), "subprocess_child.py"
    )  # fmt: skip
    assert (under.stdout, under.returncode) == (plain.stdout, plain.returncode)
    assert under.stdout == "2450 True 3 20\n"  # the child's own output, argv and exit code
    report = json.loads(output.read_text())
    functions = {row["name"]: row for row in report["functions_timing"]["functions"]}
    assert functions["subprocess_child.work"]["calls"] == 55  # 50 in the child, 5 here
    (child,) = report["processes"]["processes"][1:]
    assert child["how"] == "subprocess" and child["parent_pid"] == report["status"]["pid"]
    assert child["exit"] == "code 3"  # its SystemExit, sent with its last batch


def test_a_spawned_childs_queues_tasks_threads_cpu_and_exit_code_reach_the_parent(
    tmp_path: Path,
) -> None:
    report = profile("child_figures.py", tmp=tmp_path)
    parent = report["status"]["pid"]
    # Followed: the program's child, not multiprocessing's resource tracker.
    (child,) = report["processes"]["processes"][1:]
    pid = child["pid"]
    assert (child["how"], child["state"], child["exit"]) == ("spawn", "ended", "code 7")
    assert child["cpu_s"] >= 0.35 and child["rss_bytes"] > 10 * 2**20  # burn(0.4) ran there
    # Every table lists the child's rows beside the parent's, marked with its pid.
    (jobs,) = report["channels"]["channels"]
    assert (jobs["name"], jobs["sent"], jobs["received"], jobs["pid"]) == ("jobs", 20, 20, pid)
    (pipe,) = report["futures"]["futures"]
    assert (pipe["name"], pipe["states"]["done"], pipe["pid"]) == ("__mp_main__.pipe", 1, pid)
    mains = {row["pid"] for row in report["threads"]["threads"] if row["name"] == "MainThread"}
    assert mains == {parent, pid}
    # The CPU the child used is sampled there and added in: burn is 0.4 s of CPU.
    cpu = {row["name"]: row for row in report["functions_cpu"]["functions"]}
    assert 0.3e9 <= cpu["child_figures.burn"]["self_cpu_ns"] <= 0.5e9
    burn_stack = report["cpu_stacks"]["stacks"][0]["stack"]
    assert burn_stack[-2:] == ["child_figures.child", "child_figures.burn"]
    timed = {row["name"]: row for row in report["functions_timing"]["functions"]}
    assert timed["child_figures.burn"]["calls"] == 1


def test_a_1000_short_lived_children_keep_hotpath_bounded_and_counts_exact(
    tmp_path: Path,
) -> None:
    report = profile("many_children.py", tmp=tmp_path)
    timed = {row["name"]: row for row in report["functions_timing"]["functions"]}
    assert timed["many_children.task"]["calls"] == 1000  # one per child, each its own process
    listed = report["processes"]
    assert listed["total_processes"] <= 1 + MAX_ENDED + 4  # the program, kept, still alive
    # Each worker ends after its task and the pool starts another, also after the last
    # tasks, until it terminates them: 1,000 to 1,004 workers.
    assert 1 + 1000 <= listed["total_processes"] + listed["folded_processes"] <= 1 + 1004


def test_the_process_argument_answers_for_one_process(
    receiver: tuple[ChildReceiver, Store],
) -> None:
    from hotpath.views import registry
    from hotpath.views.lookup import NotFound

    collector, store = receiver
    store.functions.attach(_Fixed([_stats(store, [5_000] * 10)]))
    token = collector.address.split(":")[2]
    theirs = _store()
    theirs.gauges.gauge("jobs.done").set(5)
    (row,) = registry.call(theirs, "gauges", {})["gauges"]  # as the child's views make it
    _child(
        collector.address,
        {"hello": token, "pid": 7, "parent_pid": 1, "argv": ["w"], "how": "spawn"},
        {
            "batch": [to_wire(_stats(_store(), [5_000] * 32))],
            "rows": {"gauges": {"gauges": [row]}},
            "cpu": cpu_wire(_store().cpu.read()),
            "process": asdict(ProcessFigures(2**20, 2**21, 50.0, 1.5, 0.5, 2, 8, samples=3)),
        },
    )
    _until(lambda: any(child.batches for child in store.processes.children()))

    def calls(**arguments: object) -> list[int]:
        answer = registry.call(store, "functions_timing", arguments)
        return [row["calls"] for row in answer["functions"]]

    assert calls() == [42]
    assert calls(process=7) == [32]
    assert calls(process=store.info.pid) == [10]
    assert registry.call(store, "gauges", {})["gauges"] == [{**row, "pid": 7}]
    assert registry.call(store, "gauges", {"process": store.info.pid})["gauges"] == []
    assert registry.call(store, "gauges", {"process": 7})["gauges"] == [{**row, "pid": 7}]
    (child,) = registry.call(store, "processes", {"process": 7})["processes"]
    assert (child["pid"], child["cpu_s"], child["rss_bytes"]) == (7, 2.0, 2**20)
    with pytest.raises(NotFound, match="no process 99 is known"):
        registry.call(store, "functions_timing", {"process": 99})


def test_a_child_sends_what_changed_in_messages_of_bounded_size(
    receiver: tuple[ChildReceiver, Store],
) -> None:
    collector, store = receiver
    theirs = _store()
    theirs.functions.max_functions = 1_000
    made = [_stats(theirs, [1_000] * (i % 7 + 1), name=f"f{i}") for i in range(450)]
    made.append(_stats(theirs, [1_000] * 5, name="f0"))  # a second function named app.f0
    theirs.functions.attach(_Fixed(made))
    reporter = ChildReporter(collector.address, theirs, "fork")
    sizes: list[int] = []
    send = reporter._send

    def counted(message: dict[str, Any]) -> None:
        sizes.append(len(message.get("batch", [])))
        send(message)

    reporter._send = counted  # type: ignore[method-assign]
    assert reporter.connect()
    reporter.send()
    reporter.send()  # nothing changed since: an empty batch
    reporter.finish("code 0")
    assert sizes == [0, FUNCTIONS_PER_MESSAGE, FUNCTIONS_PER_MESSAGE, 50, 0, 0]  # hello first
    _until(lambda: any(child.exit for child in store.processes.children()))
    rows = functions_timing(store, limit=1000)["functions"]
    assert len(rows) == 450
    assert sum(row["calls"] for row in rows) == sum(i % 7 + 1 for i in range(450)) + 5


def test_a_child_that_cannot_reach_the_parent_runs_as_under_python_silently() -> None:
    plain = python("subprocess_child.py", "child")
    # A port nothing listens on, and settings hotpath cannot read: either way, no following.
    for settings in ('{"config": {}}', "not json"):
        under = hotpath("child", "127.0.0.1:9:token", settings, "subprocess_child.py", "child")
        assert (under.stdout, under.stderr, under.returncode) == (
            plain.stdout, plain.stderr, plain.returncode,
        )  # fmt: skip
    assert (plain.stdout, plain.returncode) == ("2450 True\n", 3)  # the oracle: python


def test_a_fork_of_a_forked_child_is_followed_apart_from_it(tmp_path: Path) -> None:
    script = tmp_path / "forks.py"
    script.write_text(
        "import os\n"
        "def work():\n"
        "    return sum(range(100))\n"
        "if os.fork() == 0:\n"
        "    for _ in range(5):\n"
        "        work()\n"
        "    if os.fork() == 0:\n"
        "        for _ in range(7):\n"
        "            work()\n"
        "        raise SystemExit(0)\n"
        "    os.wait()\n"
        "    raise SystemExit(0)\n"
        "os.wait()\n"
        "work()\n"
    )
    report = profile(str(script), tmp=tmp_path, cwd=tmp_path)
    timed = {row["name"]: row for row in report["functions_timing"]["functions"]}
    assert timed["forks.work"]["calls"] == 13  # 1 here, 5 in the child, 7 in its child
    program, *children = report["processes"]["processes"]
    (child,) = [c for c in children if c["parent_pid"] == program["pid"]]
    (grandchild,) = [c for c in children if c["parent_pid"] == child["pid"]]
    # Calls started there: the module's body was running already when they forked.
    assert (child["calls"], grandchild["calls"]) == (5, 7)
    assert child["exit"] == grandchild["exit"] == "exited"


@pytest.mark.skipif(RECORDER != "c", reason="allocation counts need the C recorder")
def test_allocations_of_every_process_are_summed_by_function(tmp_path: Path) -> None:
    report = profile("fork_pool.py", options=("--alloc",), tmp=tmp_path)
    counted = {row["name"]: row for row in report["functions_alloc"]["functions"]}
    task = counted["fork_pool.task"]
    assert task["calls"] == 400 and task["allocations"] > 0  # all made in the workers
    # A row lists its processes when several ran it: callee runs in the parent (10 calls)
    # and in the workers (1,200); task in the workers only, and the pool may give all of it
    # to the one that started first (1 run in 12 on a loaded machine, before this round too).
    callee = counted["fork_pool.callee"]
    parts = {part["pid"]: part["calls"] for part in callee["processes"]}
    assert sum(parts.values()) == 1210 and parts[report["status"]["pid"]] == 10
    assert report["status"]["pid"] not in {part["pid"] for part in task.get("processes", [])}

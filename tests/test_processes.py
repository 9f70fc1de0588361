"""Child processes' figures (issue 17, in progress): the wire format, the merge by name, the
receiver on loopback, and the bound on ended children."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import hotpath, profile, python

from hotpath.collectors.children import ChildReceiver
from hotpath.store import RunInfo, Store
from hotpath.store.functions import FunctionStats, ThreadIdentity, Totals
from hotpath.store.processes import MAX_ENDED, stats_from_wire, to_wire
from hotpath.views.functions import functions_timing


def _store() -> Store:
    filters: dict[str, list[str] | str | None] = {
        "include": [], "exclude": [], "default_roots": [], "default_roots_chosen": None,
    }  # fmt: skip
    return Store(RunInfo([], filters, {}, (50.0, 99.0), 0.25), 10, 10)


def _stats(store: Store, durations: list[int], errors: int = 0) -> FunctionStats:
    """A function's figures as the recorder would give them for these finished calls."""
    info = store.functions.add_function("app.work", "app", "work", _stats.__code__, "function")
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
    workers = listed[1:]
    assert len(workers) == 4 and {w["how"] for w in workers} == {"fork"}
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
        "_, status = os.waitpid(pid, 0)\n"
        "work()\n"
        "print('child', os.waitstatus_to_exitcode(status))\n"
    )
    report = profile(str(script), tmp=tmp_path, cwd=tmp_path)
    functions = {row["name"]: row for row in report["functions_timing"]["functions"]}
    assert functions["killed.work"]["calls"] == 51  # the child's 50 from its last batch, and 1


def test_spawn_and_forkserver_workers_calls_add_up_exactly(tmp_path: Path) -> None:
    report = profile("spawn_pool.py", tmp=tmp_path)
    functions = {row["name"]: row for row in report["functions_timing"]["functions"]}
    # 400 in a spawn Pool(4), 100 in a forkserver ProcessPoolExecutor: their workers report
    # under the script's own names (a spawned child imports it as __mp_main__).
    assert functions["spawn_pool.task"]["calls"] == 500
    assert functions["spawn_pool.callee"]["calls"] == 1510
    # The module body ran in the parent and again in each spawned worker, as python runs
    # it; a worker that got no task before the pool ended it sent no batch (see
    # docs/design/processes.md), so between 2 and 5 of those runs are counted.
    assert 2 <= functions["spawn_pool.<module>"]["calls"] <= 5


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

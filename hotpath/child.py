"""The child's end of following child processes: it reports the child's figures to the
parent's receiver (collectors/children.py). The reporter is a view of the child's store (it
reads snapshots, and lists rows as the child's views make them); the receiver is the
parent's collector.

It sends the functions' figures *so far* (those that changed) every 500 ms, at exit, and,
in a pool worker, before each result goes back (``flush``: the pool's ``worker`` and the
executor's ``_process_worker`` are wrapped so that their results queue flushes first), so
that when a ``map`` returns in the parent every worker's calls are already there, even if
the pool then terminates its workers; the rest of its figures every 2 s and at exit. A child
that cannot reach the parent stays unprofiled, silently.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import threading
from typing import Any

from hotpath import stdlib
from hotpath.store import Store
from hotpath.store.cpu import CpuTable
from hotpath.store.cpu import to_wire as cpu_wire
from hotpath.store.processes import Wire, by_name, to_wire

INTERVAL_S = 0.5
FUNCTIONS_PER_MESSAGE = 200  # ~1 KB each: a message stays far below the receiver's 4 MiB
# A child's CPU tree goes whole in a message every 2 s: capped below the parent's so that it
# stays ~1.5 MB at most (5 numbers per node, ~150 bytes per function, as JSON).
CHILD_CPU_NODES = 20_000
CHILD_CPU_FUNCTIONS = 2_000
WHOLE_EVERY = 4  # batches: the rows, CPU samples and process figures go every 2 s, and last
CONNECT_TIMEOUT_S = 1.0

_reporter: ChildReporter | None = None  # this process's, when it is a followed child
_exit: str = "exited"  # how this child ended, once known: "code N", "signal N"


class ChildReporter:
    def __init__(self, address: str, store: Store, how: str) -> None:
        host, port, self.token = address.rsplit(":", 2)
        self.address = (host, int(port))
        self.store = store
        self.how = how
        self._sock: socket.socket | None = None
        self._sent: dict[str, Wire] = {}  # per function name, the figures last sent
        self._lock = stdlib.new_rlock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hotpath-child", daemon=True)
        self._collectors: list[Any] = []

    def connect(self) -> bool:
        try:
            # Not create_connection: its getaddrinfo imports the idna codec, 2 of a forked
            # child's 7 ms of start-up (measured). The address is a numeric loopback one.
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._sock.settimeout(CONNECT_TIMEOUT_S)
            self._sock.connect(self.address)
            self._send(
                {
                    "hello": self.token,
                    "pid": os.getpid(),
                    "parent_pid": os.getppid(),
                    "argv": list(sys.argv),
                    "how": self.how,
                }
            )
        except OSError:
            self._close()
            return False
        return self._sock is not None

    def start(self, collectors: list[Any]) -> None:
        """Send batches from now on; ``collectors``: this child's, which ``finish`` ends."""
        global _reporter
        _reporter = self
        self._collectors = collectors
        self._thread.start()
        self.store.mark_own_thread(self._thread)

    def _run(self) -> None:
        sent = 0
        while not self._stopping.wait(INTERVAL_S):
            sent += 1
            self.send(whole=sent % WHOLE_EVERY == 0)

    def send(self, exit: str | None = None, whole: bool = False) -> None:
        """The function figures so far; ``whole``: the rest of the figures too; ``exit``: the
        last batch, whole, saying how the child ended."""
        with self._lock:
            if self._sock is None:
                return
            stats = by_name(self.store.functions.snapshot(self.store.now_ns()))
            # Only what changed since the last batch (each function's figures so far: the
            # parent replaces them by name), in messages of a bounded size.
            changed = [wire for s in stats if (wire := to_wire(s)) != self._sent.get(s.info.name)]
            last = max(0, (len(changed) - 1) // FUNCTIONS_PER_MESSAGE * FUNCTIONS_PER_MESSAGE)
            for start in range(0, last, FUNCTIONS_PER_MESSAGE):
                self._send({"batch": changed[start : start + FUNCTIONS_PER_MESSAGE]})
            message: dict[str, Any] = {"batch": changed[last:]}
            if exit is not None or whole:
                from hotpath.views.registry import child_rows

                message["rows"] = child_rows(self.store)
                message["cpu"] = cpu_wire(self.store.cpu.read())
                message["process"] = dataclasses.asdict(self.store.threads.read().process)
            if exit is not None:
                message["exit"] = exit
            self._send(message)
            self._sent.update((str(wire["name"]), wire) for wire in changed)

    def finish(self, exit: str) -> None:
        """The collectors' last figures (the thread sampler's final reading of the process
        among them), then the last batch, saying how this child ended; once. Every way a
        child ends comes here: at exit, or a multiprocessing child from its ``_bootstrap``
        (it ends with os._exit, no atexit), whose CPU and memory were otherwise its last
        periodic reading's, up to half a second old."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for collector in self._collectors:
            collector.finish()
        self.send(exit)
        self._close()

    def abandon(self) -> None:
        """In a forked copy of this process: close the connection without a word (it is the
        parent's copy's)."""
        self._stopping.set()
        self._close()

    def _send(self, message: dict[str, Any]) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError:  # the parent is gone: the child runs on, unreported
            self._close()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def load_views() -> None:
    """Before a fork: a whole batch lists the child's rows as the views make them, and a
    forked child that imported them itself would pay 15 ms at its exit (most of a
    short-lived worker's cost, measured on a fork per task). The parent imports them once,
    at its first fork, not at start (they are imported when first needed: start-up)."""
    import hotpath.views.registry  # noqa: F401


def flush() -> None:
    """Send this child's figures now, if it is a followed child."""
    reporter = _reporter
    if reporter is not None:
        reporter.send()


def settings(config: Any, root: str, root_chosen: str, name: str, sample: bool) -> str:
    """What a spawned child needs to profile itself as the parent does, as JSON."""
    fields = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name not in ("mcp_token", "output", "flame")  # the parent's alone
    }
    fields.update(mcp=False, report="none", keep_serving=False)
    return json.dumps(
        {"config": fields, "root": root, "root_chosen": root_chosen, "name": name, "sample": sample}
    )


def new_store(info: Any, config: Any) -> Store:
    """A followed child's store: the parent's limits, a smaller CPU tree (``CHILD_CPU_*``)."""
    store = Store(info, config.logs_limit, config.max_functions)
    store.cpu = CpuTable(info.cpu_interval_s, CHILD_CPU_NODES, CHILD_CPU_FUNCTIONS)
    return store


def follow_spawned(address: str, text: str, how: str) -> None:
    """Called first thing in a spawned child (the parent prefixes its command line): profile
    this process and report to ``address``. Whatever fails, the child runs unprofiled."""
    try:
        _follow(address, json.loads(text), how)
    except Exception:
        return


class _Following:
    """What this process runs to be followed: its collectors and its reporter."""

    def __init__(self, address: str, given: dict[str, Any], collectors: list[Any]) -> None:
        self.address = address
        self.given = given
        self.collectors = collectors
        self.pid = os.getpid()


_following: _Following | None = None


def _follow(address: str, given: dict[str, Any], how: str) -> None:
    global _following
    import atexit
    from types import SimpleNamespace

    from hotpath.config import Config
    from hotpath.filters import FunctionFilter
    from hotpath.session import build_collectors
    from hotpath.store import RunInfo

    fields: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in given["config"].items()
    }
    config = Config(**fields)
    where = SimpleNamespace(root=given["root"], name=given["name"])
    function_filter = FunctionFilter(
        config.include, config.exclude, roots=[where.root], roots_chosen=given["root_chosen"]
    )
    info = RunInfo(
        argv=list(sys.argv),
        filters=function_filter.describe(),
        collectors={},
        percentiles=config.percentiles,
        sample_interval_s=config.threads_interval_ms / 1000,
        recorder=config.recorder,
        cpu_interval_s=config.sample_interval_ms / 1000,
    )
    store = new_store(info, config)
    reporter = ChildReporter(address, store, how)
    if not reporter.connect():
        return
    collectors = build_collectors(config, function_filter, where, store, given["sample"], True)
    from hotpath.follow import follow_children

    follow_children(address, json.dumps(given))  # its own children report to the same parent
    for collector in collectors:
        collector.install()
    for collector in collectors:
        collector.start()
    reporter.start(collectors)
    first = _following is None
    following = _following = _Following(address, given, collectors)

    def finish() -> None:
        if os.getpid() != following.pid:
            return  # a forked child's copy of this handler: its own follow ends it
        reporter.finish(_exit)

    atexit.register(finish)
    if first:
        os.register_at_fork(before=load_views, after_in_child=_refollow)


def _refollow() -> None:
    """A followed child forked (a forkserver's workers): the fork is followed afresh, with
    nothing of its parent's figures, reporter connection or collectors."""
    following = _following
    if following is None:
        return
    for collector in following.collectors:
        collector.forget_in_child()
    abandon_inherited()
    try:
        _follow(following.address, following.given, "fork")
    except Exception:
        return


def abandon_inherited() -> None:
    """In a fork of a followed child: drop the connection inherited from it, unused (it
    is that child's)."""
    global _reporter
    if _reporter is not None:
        _reporter.abandon()
        _reporter = None


def run_followed(address: str, text: str, program: Any) -> None:
    """Run ``program`` (a ``launcher.Program``) as python would, followed: what a Python
    subprocess of the program runs (``hotpath child``)."""
    import signal

    from hotpath import launcher
    from hotpath.session import Session

    global _exit
    follow_spawned(address, text, "subprocess")
    launcher.install(program)
    try:
        launcher.run(program)
        _exit = "code 0"
    except SystemExit as leaving:
        code = leaving.code
        _exit = f"code {code if isinstance(code, int) else 0 if code is None else 1}"
        raise
    except KeyboardInterrupt as error:
        Session._print_exception(error)
        last_batch(f"signal {signal.SIGINT.value}")
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # dies by it, as python does
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException as error:
        Session._print_exception(error)
        _exit = "code 1"
        raise SystemExit(1) from None


def last_batch(exit: str) -> None:
    """Send the last batch now, saying how this child ends (it is about to, without atexit)."""
    reporter = _reporter
    if reporter is not None:
        reporter.finish(exit)

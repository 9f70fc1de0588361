"""The one place collectors write to and views read from: bounded, thread-safe tables.

Each table offers a consistent ``read()`` of copies; what only a live object knows, the
collector that owns it tells through a probe it attaches to the table.

Every lock in the store is reentrant, for two kinds of code that run inside the thread
holding one, between any two of its bytecodes:

- SIGTERM's handler writes the exit report in the main thread, wherever that thread was: in
  the middle of a write (a new lock site being named, a new function filed), whose table the
  report then reads. With a plain lock it waited on itself for ever (in CI, a service sent
  SIGTERM as its first Event's site was named; tests/test_hostile.py's fixture hung in 9
  runs of 20). The half-done write never resumes: the handler ends the process.
- Work done under a lock allocates (a histogram folds, a reading copies), an allocation can
  set off a garbage collection, and the collection can run a callback that takes the same
  lock: a queue's finalizer counts it closed, a task's weak reference counts it dropped, a
  generator closed by the collector ends its stream. Reentrant, the callback's few counts go
  in beside the work, which touches other fields.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
from collections import deque
from dataclasses import dataclass, field, replace

from hotpath import stdlib
from hotpath.store.channels import ChannelTable
from hotpath.store.cpu import CpuReading, CpuTable, merged
from hotpath.store.functions import FunctionSort, FunctionStats, FunctionTable
from hotpath.store.futures import FutureTable
from hotpath.store.gauges import GaugeTable
from hotpath.store.locks import LockTable
from hotpath.store.marks import (
    Mark,
    Marks,
    WindowTable,
    channel_since,
    function_key,
    function_since,
    future_since,
    lock_since,
    marked,
    operation_since,
    stream_since,
)
from hotpath.store.memory import MemoryTable
from hotpath.store.operations import OperationTable
from hotpath.store.processes import ProcessTable
from hotpath.store.streams import StreamTable
from hotpath.store.threads import ThreadTable

MAX_PROBLEMS = 20
SITE_SNAPSHOTS_KEPT = 10  # besides the baseline; each holds at most 2,000 sites


@dataclass
class RunInfo:
    """Facts about the profiled run, fixed when it starts."""

    argv: list[str]
    filters: dict[str, list[str] | str | None]
    collectors: dict[str, bool]
    percentiles: tuple[float, ...]
    sample_interval_s: float
    recorder: str = "c"  # "c" or "python": which implementation times the calls
    sort: FunctionSort = "self"  # how function tables are sorted unless a tool says
    recorder_fallback: str | None = None  # why the Python one runs, when nobody asked for it
    alloc_unavailable: str | None = None  # why --alloc was asked for and cannot count
    cpu_interval_s: float = 0.0  # how often stacks are sampled; 0: not at all
    metrics_limit: int = 100  # entries per table /metrics exports (HOTPATH_METRICS_LIMIT)
    pid: int = field(default_factory=os.getpid)
    python: str = field(default_factory=lambda: sys.version.split()[0])


class Store:
    def __init__(self, info: RunInfo, log_limit: int, max_functions: int) -> None:
        self.info = info
        self._limits = (log_limit, max_functions)
        self.functions = FunctionTable(log_limit, max_functions)
        self.gauges = GaugeTable(history=log_limit)
        self.threads = ThreadTable()
        self.memory = MemoryTable(SITE_SNAPSHOTS_KEPT)
        self.channels = ChannelTable(log_limit)
        self.futures = FutureTable(log_limit)
        self.streams = StreamTable(log_limit)
        self.locks = LockTable()
        self.sql = OperationTable(log_limit)  # statements, by normalized text
        self.http = OperationTable(log_limit)  # outbound calls, by method, host and path
        self.routes = OperationTable(log_limit)  # requests served, by method and route
        self.cpu = CpuTable(info.cpu_interval_s)
        self.processes = ProcessTable()
        self.marks = Marks()
        self.window: Mark | None = None  # set on a store read as a window (``since``)
        # hotpath's own threads, marked in thread lists and left out of everything else.
        self.own_idents: set[int] = set()
        self.own_native_ids: set[int] = set()
        # What went wrong inside hotpath (never the program's problems), newest last.
        self.problems: deque[str] = deque(maxlen=MAX_PROBLEMS)
        self.started_ns = stdlib.perf_counter_ns()
        self.started_epoch_ns = stdlib.time_ns()
        self.ended_ns: int | None = None  # set when the program ends; wall time stops there

    def function_stats(self, now_ns: int) -> list[FunctionStats]:
        """Every timed function, the child processes' figures summed in by name (in a
        window, what they did since its mark). The readings are the caller's to keep: both
        recorders build them afresh on every read."""
        stats = self.processes.merged(self.functions.snapshot(now_ns))
        if self.window is None:
            return stats
        before = self.window.functions
        return [function_since(s, before.get(function_key(s))) for s in stats]

    def cpu_reading(self) -> CpuReading:
        """Every CPU sample of the run, the child processes' added in (in a window, this
        process's since its mark: merged trees are not numbered alike from one reading to
        the next)."""
        if self.window is not None:
            return self.cpu.read().since(self.window.cpu)
        return merged(self.cpu.read(), self.processes.cpu_readings())

    def mark(self, label: str) -> Mark:
        """Copy every table's totals now, as ``label`` (see store/marks.py)."""
        now = self.now_ns()
        functions = {function_key(stats): marked(stats) for stats in self.function_stats(now)}
        mark = Mark(
            label,
            now,
            functions,
            {reading.id: reading for reading in self.channels.read()},
            {reading.id: reading for reading in self.futures.read()},
            {reading.id: reading for reading in self.streams.read()},
            self.cpu.read(),
            {reading.id: reading for reading in self.locks.read()},
            {reading.id: reading for reading in self.sql.read()},
            {reading.id: reading for reading in self.http.read()},
            {reading.id: reading for reading in self.routes.read()},
        )
        self.marks.add(mark)
        return mark

    def since(self, mark: Mark) -> Store:
        """This store read as the window from ``mark`` to now: wall time, functions,
        channels, futures, streams, locks, SQL, HTTP calls, routes and CPU samples since it;
        the rest as it is now."""
        scoped = copy.copy(self)
        scoped.window = mark
        scoped.started_ns = mark.at_ns
        scoped.started_epoch_ns = self.epoch_ns(mark.at_ns)
        scoped.channels = WindowTable(self.channels, mark.channels, channel_since, mark.at_ns)  # type: ignore[assignment]
        scoped.futures = WindowTable(self.futures, mark.futures, future_since, mark.at_ns)  # type: ignore[assignment]
        scoped.streams = WindowTable(self.streams, mark.streams, stream_since, mark.at_ns)  # type: ignore[assignment]
        scoped.locks = WindowTable(self.locks, mark.locks, lock_since, mark.at_ns)  # type: ignore[assignment]
        for name in ("sql", "http", "routes"):
            table, before = getattr(self, name), getattr(mark, name)
            setattr(scoped, name, WindowTable(table, before, operation_since, mark.at_ns))
        return scoped

    def for_process(self, pid: int) -> Store | None:
        """A store of one process's figures alone (None: no such process): this one without
        its children's, or a followed child's as it last sent them."""
        if pid == self.info.pid:
            scoped = copy.copy(self)
            scoped.processes = ProcessTable()
            return scoped
        table = self.processes.only(pid)
        if table is None:
            return None
        (child,) = table.children()
        empty = Store(replace(self.info, pid=pid, argv=child.argv), *self._limits)
        empty.processes = table
        empty.threads.update({}, child.process)
        empty.started_ns, empty.ended_ns = child.started_ns, child.ended_ns
        empty.started_epoch_ns = self.epoch_ns(child.started_ns)
        return empty

    def mark_own_thread(self, thread: threading.Thread) -> None:
        """Called by whoever starts one of hotpath's threads, as soon as it has started: the
        thread marking itself could come too late (a program that forks at once)."""
        if thread.ident is not None:
            self.own_idents.add(thread.ident)
        if thread.native_id is not None:
            self.own_native_ids.add(thread.native_id)

    def note_problem(self, text: str) -> None:
        self.problems.append(text)

    def now_ns(self) -> int:
        return self.ended_ns if self.ended_ns is not None else stdlib.perf_counter_ns()

    def wall_ns(self) -> int:
        return self.now_ns() - self.started_ns

    def epoch_ns(self, perf_ns: int) -> int:
        """A perf_counter_ns reading as nanoseconds since the Unix epoch."""
        return self.started_epoch_ns + (perf_ns - self.started_ns)

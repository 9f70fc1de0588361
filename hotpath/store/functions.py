"""Function timing data: written by the monitoring collector, read as snapshots by views.

Each thread writes only its own ``ThreadRecord`` per function, with no lock: a duration is
appended to a pending list and folded into the record's ``Totals`` in batches (``flush``), under
the table lock. Readers take the same lock and merge the totals, the pending lists and the
in-flight calls of every thread. When a thread ends, its records are merged into the function's
``retired`` totals, so memory follows the live threads, not every thread that ever ran.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from types import CodeType
from typing import Literal, Protocol

from hotpath import stdlib
from hotpath.store.histogram import add_buckets, exact_percentiles, percentiles

MAX_DECLINED = 1_000  # packages counted by note_declined
_NOT_SUGGESTED = frozenset({"hotpath", "hotpath_cli"})

# Durations kept as they are while a function has no more finished calls than this: its
# percentiles are then exact (a single call's P50 is its duration), not a bucket's midpoint.
EXACT_CALLS = 16

FunctionKind = Literal["function", "generator", "coroutine", "async_generator"]
# How function tables can be sorted (the report's --sort, the tools' ``sort``).
FunctionSort = Literal["self", "total", "calls", "avg", "p99"]
FUNCTION_SORTS: tuple[FunctionSort, ...] = ("self", "total", "calls", "avg", "p99")
Outcome = str | None  # None: returned; otherwise the exception type's name


class ThreadIdentity:
    """Who ran a call: kept by log entries, so it must stay small after the thread ends.

    Made for the calling thread. ``threading.current_thread()`` is not used: at a new thread's
    first event the thread is not registered yet, and it would invent a ``_DummyThread`` that
    the program would then see in ``threading.enumerate()``.
    """

    __slots__ = ("ident", "native_id", "thread")

    def __init__(self) -> None:
        self.ident = stdlib.get_ident()
        self.native_id = stdlib.get_native_id()
        self.thread: threading.Thread | None = None

    def resolve(self) -> None:
        """Find the Thread object; call from the thread itself, once it runs Python code."""
        if self.thread is None:
            # A plain dict read: no lock, no side effect (threading's own registry).
            self.thread = getattr(threading, "_active", {}).get(self.ident)

    @property
    def name(self) -> str:
        return self.thread.name if self.thread is not None else f"thread-{self.native_id}"


@dataclass(slots=True, frozen=True)
class Allocations:
    """Allocator requests and the bytes they asked for (see ``hotpath.recorder``: what they
    count and what they do not)."""

    count: int
    bytes: int


@dataclass(slots=True)
class CallRecord:
    """One finished call, as kept in a function's bounded log."""

    end_ns: int
    duration_ns: int
    thread: ThreadIdentity
    outcome: Outcome
    allocations: Allocations | None = None  # with --alloc: the call's, callees included


# AllocationTotals' pairs, in order: what a child's batch and a mark carry of them.
ALLOCATION_FIELDS = ("every", "total", "child", "running_total", "running_own", "running_child")


@dataclass(slots=True)
class AllocationTotals:
    """Allocations of a function's calls, as the compiled recorder counts them: finished calls,
    and calls in progress up to now (as its time is counted)."""

    every: Allocations  # summed over every finished call, recursive ones included
    total: Allocations  # finished outermost calls only: recursion counted once
    child: Allocations  # made in profiled functions it called directly
    buckets: Counter[int]  # bytes per finished call
    running_total: Allocations = Allocations(0, 0)  # calls in progress, the outermost ones
    running_own: Allocations = Allocations(0, 0)  # calls in progress, each one's own so far
    running_child: Allocations = Allocations(0, 0)  # ... and their callees'

    @property
    def so_far(self) -> Allocations:
        """Inclusive, recursion once, calls in progress included."""
        return Allocations(
            self.total.count + self.running_total.count, self.total.bytes + self.running_total.bytes
        )

    @property
    def own(self) -> Allocations:
        """Made by the function itself, not by the profiled functions it called, calls in
        progress included."""
        return Allocations(
            self.every.count + self.running_own.count - self.child.count - self.running_child.count,
            self.every.bytes + self.running_own.bytes - self.child.bytes - self.running_child.bytes,
        )


@dataclass(slots=True, frozen=True)
class ThreadAllocations:
    native_id: int
    allocations: Allocations
    alive: bool


@dataclass(slots=True, frozen=True)
class CallBatch:
    """The newest calls of one fold, kept raw: a fold makes two list slices, not a record per
    call. Records are made when a view reads them (``Totals.recent_calls``)."""

    ends: list[int]
    durations: list[int]
    failed: dict[int, str]
    thread: ThreadIdentity

    def records(self) -> Iterator[CallRecord]:
        for end, duration in zip(self.ends, self.durations, strict=True):
            yield CallRecord(end, duration, self.thread, self.failed.get(end))


@dataclass(slots=True)
class Totals:
    """Mergeable aggregate of finished calls."""

    log_limit: int
    completed: int = 0
    all_ns: int = 0  # every finished call's duration, recursive ones included
    min_ns: int = 0
    max_ns: int = 0
    total_ns: int = 0  # inclusive time, overlapping activations in one thread counted once
    child_ns: int = 0  # time spent in profiled functions called directly from this one
    active_ns: int = 0  # generators and coroutines: time actually running
    starts: int = 0  # generators and coroutines: activations started
    errors: int = 0
    error_types: Counter[str] = field(default_factory=Counter)
    buckets: Counter[int] = field(default_factory=Counter)
    first: list[int] | None = field(default_factory=list)  # durations, while <= EXACT_CALLS
    batches: list[CallBatch] = field(default_factory=list)  # the newest calls, raw

    def add_calls(
        self,
        durations: list[int],
        ends: list[int],
        failed: dict[int, str],
        thread: ThreadIdentity,
    ) -> None:
        if not durations:
            return
        low, high = min(durations), max(durations)
        self.min_ns = low if self.completed == 0 else min(self.min_ns, low)
        self.max_ns = max(self.max_ns, high)
        self.completed += len(durations)
        self.all_ns += sum(durations)
        add_buckets(self.buckets, durations)
        self._keep_first(durations)
        self.errors += len(failed)
        self.error_types.update(failed.values())
        if self.log_limit:
            keep = -self.log_limit
            self.batches.append(CallBatch(ends[keep:], durations[keep:], failed, thread))
            # One thread's batches are in time order: drop the oldest while enough remain.
            kept = sum(len(batch.ends) for batch in self.batches)
            while kept - len(self.batches[0].ends) >= self.log_limit:
                kept -= len(self.batches.pop(0).ends)

    def merge(self, other: Totals) -> None:
        if other.completed:
            self.min_ns = other.min_ns if self.completed == 0 else min(self.min_ns, other.min_ns)
            self.max_ns = max(self.max_ns, other.max_ns)
        self.completed += other.completed
        self.all_ns += other.all_ns
        self.total_ns += other.total_ns
        self.child_ns += other.child_ns
        self.active_ns += other.active_ns
        self.starts += other.starts
        self.errors += other.errors
        self.error_types.update(other.error_types)
        self.buckets.update(other.buckets)
        self._keep_first(other.first)
        self.batches.extend(other.batches)

    def _keep_first(self, durations: list[int] | None) -> None:
        if self.first is None:
            return
        if durations is None or self.completed > EXACT_CALLS:
            self.first = None
        else:
            self.first = self.first + durations

    def compact(self) -> None:
        """Keep only the newest ``log_limit`` calls, whatever threads they came from."""
        newest = self.recent_calls(self.log_limit)
        if not newest:
            self.batches = []
            return
        failed = {r.end_ns: r.outcome for r in newest if r.outcome is not None}
        # Calls from several threads: one batch per thread keeps each call's thread.
        by_thread: dict[int, list[CallRecord]] = {}
        for record in newest:
            by_thread.setdefault(id(record.thread), []).append(record)
        self.batches = [
            CallBatch(
                [r.end_ns for r in records],
                [r.duration_ns for r in records],
                failed,
                records[0].thread,
            )
            for records in by_thread.values()
        ]

    def recent_calls(self, limit: int) -> list[CallRecord]:
        """The newest ``limit`` calls, oldest first."""
        records = [record for batch in self.batches for record in batch.records()]
        records.sort(key=attrgetter("end_ns"))
        return records[-limit:] if limit else []

    def copy(self) -> Totals:
        clone = Totals(self.log_limit)
        clone.merge(self)
        return clone


@dataclass(slots=True, eq=False)
class FunctionInfo:
    id: int
    name: str  # module.qualname
    module: str
    qualname: str
    filename: str
    lineno: int
    kind: FunctionKind
    code: CodeType | None  # held so that the recorders' keys for it stay valid; None for a
    # function only a child process ran (hotpath/store/processes.py)
    log_limit: int

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.lineno}"


@dataclass(slots=True)
class FunctionStats:
    """A consistent read of one function, as views see it."""

    info: FunctionInfo
    totals: Totals
    running: int  # calls in progress now: on a stack, or started and not finished
    running_ns: int  # their inclusive time so far (the outermost ones)
    running_own_ns: int = 0  # their own running time so far (as all_ns, or active_ns)
    running_child_ns: int = 0  # time so far of profiled callees inside them
    allocations: AllocationTotals | None = None  # when the recorder counts them (--alloc)

    @property
    def calls(self) -> int:
        if self.info.kind == "function":
            return self.totals.completed + self.running
        return self.totals.starts

    @property
    def total_ns(self) -> int:
        return self.totals.total_ns + self.running_ns

    @property
    def self_ns(self) -> int:
        """Time in the function itself, calls in progress included up to now."""
        own = self.totals.all_ns if self.info.kind == "function" else self.totals.active_ns
        child = self.totals.child_ns + self.running_child_ns
        return max(0, own + self.running_own_ns - child)

    @property
    def active_ns(self) -> int:
        """Generators and coroutines: time actually running, calls in progress included."""
        return self.totals.active_ns + self.running_own_ns

    @property
    def avg_ns(self) -> float:
        return self.totals.all_ns / self.totals.completed if self.totals.completed else 0.0

    def sort_key(self, sort: FunctionSort) -> tuple[float, int]:
        """Larger first; ties by calls. Figures that do not exist yet (no finished call) last."""
        if sort == "self":
            figure: float = self.self_ns
        elif sort == "total":
            figure = self.total_ns
        elif sort == "calls":
            figure = self.calls
        elif not self.totals.completed:
            figure = -1.0
        elif sort == "avg":
            figure = self.avg_ns
        else:
            figure = self.percentiles_ns((99.0,))[99.0]
        return figure, self.calls

    def percentiles_ns(self, quantiles: tuple[float, ...]) -> dict[float, float]:
        """Exact while there are few finished calls; then from the histogram, kept within
        the calls' min and max (a bucket's midpoint may lie 1.1% beyond them)."""
        totals = self.totals
        if totals.first is not None and len(totals.first) == totals.completed:
            return exact_percentiles(totals.first, quantiles)
        low, high = totals.min_ns, totals.max_ns
        return {
            q: min(max(value, low), high)
            for q, value in percentiles(totals.buckets, quantiles).items()
        }


class FunctionSource(Protocol):
    """Where the figures come from: the recorder (see hotpath.recorder)."""

    def read(self, now_ns: int) -> list[FunctionStats]: ...

    def recent_calls(self, info: FunctionInfo, limit: int) -> list[CallRecord]: ...

    def given_up(self) -> int: ...

    def thread_allocations(self) -> list[ThreadAllocations]: ...


class FunctionTable:
    """All functions hotpath times, capped at ``max_functions``; their figures are read from
    the recorder, which keeps them (``attach``)."""

    def __init__(self, log_limit: int, max_functions: int) -> None:
        self.lock = stdlib.new_rlock()
        self.log_limit = log_limit
        self.max_functions = max_functions
        self.functions: list[FunctionInfo] = []
        self.dropped = 0  # functions the filter selected but the cap turned away
        self.declined: Counter[str] = Counter()  # top-level package -> functions turned away
        self._source: FunctionSource | None = None

    def attach(self, source: FunctionSource) -> None:
        self._source = source

    def note_declined(self, qualified_name: str) -> None:
        """A function the filter turned away: counted by top-level package, so that a run
        that timed nothing can say which ``--include`` would have helped. The standard
        library and hotpath are not suggestions; the count is capped."""
        top = qualified_name.partition(".")[0]
        if top in _NOT_SUGGESTED or top in sys.stdlib_module_names or not top.isidentifier():
            return
        with self.lock:
            if top in self.declined or len(self.declined) < MAX_DECLINED:
                self.declined[top] += 1

    def suggestions(self, count: int = 3) -> list[tuple[str, int]]:
        """The packages whose functions the filter turned away most: (package, functions)."""
        with self.lock:
            return self.declined.most_common(count)

    def add_function(
        self,
        name: str,
        module: str,
        qualname: str,
        code: CodeType,
        kind: FunctionKind,
    ) -> FunctionInfo | None:
        with self.lock:
            if len(self.functions) >= self.max_functions:
                self.dropped += 1
                return None
            info = FunctionInfo(
                id=len(self.functions) + 1,
                name=name,
                module=module,
                qualname=qualname,
                filename=code.co_filename,
                lineno=code.co_firstlineno,
                kind=kind,
                code=code,
                log_limit=self.log_limit,
            )
            self.functions.append(info)
            return info

    def infos(self) -> list[FunctionInfo]:
        """Every function timed so far, in the order they were first seen."""
        with self.lock:
            return list(self.functions)

    def snapshot(self, now_ns: int) -> list[FunctionStats]:
        """Every function the recorder times, with calls in progress counted up to now_ns."""
        return self._source.read(now_ns) if self._source is not None else []

    def recent_calls(self, info: FunctionInfo, limit: int) -> list[CallRecord]:
        """A function's newest ``limit`` calls, oldest first."""
        return self._source.recent_calls(info, limit) if self._source is not None else []

    def thread_allocations(self) -> list[ThreadAllocations]:
        """Allocations per thread, live and recently ended, when the recorder counts them."""
        return self._source.thread_allocations() if self._source is not None else []

    def events_given_up(self) -> int:
        """Events the recorder gave up: their calls are missing from the figures."""
        return self._source.given_up() if self._source is not None else 0

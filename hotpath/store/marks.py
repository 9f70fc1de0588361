"""Marks on a live run, and the windows between them: what an agent's measure-change-measure
loop reads.

A mark is a copy of every table's totals at one moment (no logs: the recent calls, sends and
items stay where they are), so ``mark`` costs what one reading of each table costs. A window
is "now minus a mark": every figure that only grows (calls, times, errors, sends, items, task
outcomes, allocations, histogram buckets) is subtracted, so percentiles of the window are
those of the calls in it, read from the bucket differences. What does not subtract is
estimated or kept as it is now, and the views say which: a window's min and max come from its
histogram (within 1.1%), sizes and states are as they are now.

Bounded: the last ``MAX_MARKS`` marks are kept; a label used again replaces its mark.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from hotpath import stdlib
from hotpath.store.channels import ChannelReading
from hotpath.store.cpu import CpuReading
from hotpath.store.functions import (
    ALLOCATION_FIELDS,
    Allocations,
    AllocationTotals,
    FunctionInfo,
    FunctionStats,
    Totals,
)
from hotpath.store.futures import FutureReading
from hotpath.store.histogram import DistributionReading, bucket_value
from hotpath.store.locks import LockReading
from hotpath.store.operations import Figures, OperationReading
from hotpath.store.streams import StreamReading

MAX_MARKS = 20
START = "start"  # the label of the run's start: every figure as it was before the first call


Pairs = tuple[tuple[Any, int], ...]


class Marked(NamedTuple):
    """A function's figures at a mark, as numbers and tuples of numbers: one object the
    garbage collector visits per function, where the readings it was made from have six
    (their totals, counters, lists). Twenty marks of 5,000 functions kept as readings made a
    program's full collections, and so a windowed answer, 100 ms slower (measured: 155 ms
    against 57 with the collector off)."""

    info: FunctionInfo
    completed: int
    all_ns: int
    total_ns: int
    child_ns: int
    active_ns: int
    starts: int
    errors: int
    error_types: Pairs
    buckets: Pairs
    first: tuple[int, ...] | None
    running: int
    running_ns: int
    running_own_ns: int
    running_child_ns: int
    allocations: tuple[tuple[int, int], ...] | None  # ALLOCATION_FIELDS' pairs, then buckets
    allocation_buckets: Pairs


def marked(stats: FunctionStats) -> Marked:
    totals, counted = stats.totals, stats.allocations
    return Marked(
        stats.info,
        totals.completed, totals.all_ns, totals.total_ns, totals.child_ns, totals.active_ns,
        totals.starts, totals.errors,
        tuple(totals.error_types.items()), tuple(totals.buckets.items()),
        None if totals.first is None else tuple(totals.first),
        stats.running, stats.running_ns, stats.running_own_ns, stats.running_child_ns,
        None if counted is None else tuple(
            (getattr(counted, name).count, getattr(counted, name).bytes)
            for name in ALLOCATION_FIELDS
        ),
        () if counted is None else tuple(counted.buckets.items()),
    )  # fmt: skip


def unmarked(mark: Marked) -> FunctionStats:
    """The reading a mark was made from (its logs aside)."""
    totals = Totals(
        0,
        completed=mark.completed, all_ns=mark.all_ns, total_ns=mark.total_ns,
        child_ns=mark.child_ns, active_ns=mark.active_ns, starts=mark.starts,
        errors=mark.errors, error_types=Counter(dict(mark.error_types)),
        buckets=Counter(dict(mark.buckets)),
        first=None if mark.first is None else list(mark.first),
    )  # fmt: skip
    if mark.completed and mark.first is None:
        totals.min_ns, totals.max_ns = _edges(totals.buckets)
    elif mark.first:
        totals.min_ns, totals.max_ns = min(mark.first), max(mark.first)
    allocations = None
    if mark.allocations is not None:
        pairs = dict(
            zip(ALLOCATION_FIELDS, (Allocations(*p) for p in mark.allocations), strict=True)
        )
        allocations = AllocationTotals(buckets=Counter(dict(mark.allocation_buckets)), **pairs)
    return FunctionStats(
        mark.info, totals, mark.running, mark.running_ns, mark.running_own_ns,
        mark.running_child_ns, allocations,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Mark:
    label: str
    at_ns: int
    functions: dict[tuple[str, str], Marked]  # by function_key, the whole program's
    channels: dict[int, ChannelReading]  # by id
    futures: dict[int, FutureReading]
    streams: dict[int, StreamReading]
    cpu: CpuReading  # this process's samples (a window of merged trees is not stable)
    locks: dict[int, LockReading]
    sql: dict[int, OperationReading]
    http: dict[int, OperationReading]
    routes: dict[int, OperationReading]


class Marks:
    def __init__(self, kept: int = MAX_MARKS) -> None:
        self._lock = stdlib.new_rlock()
        self._marks: deque[Mark] = deque(maxlen=kept)

    def add(self, mark: Mark) -> None:
        with self._lock:
            for old in [m for m in self._marks if m.label == mark.label]:
                self._marks.remove(old)
            self._marks.append(mark)

    def read(self) -> list[Mark]:
        """Oldest first."""
        with self._lock:
            return list(self._marks)


def counter_since[K](now: Counter[K], before: Counter[K]) -> Counter[K]:
    """What was added to ``now`` after ``before`` (counts never shrink; negatives dropped)."""
    return Counter(
        {key: n - before.get(key, 0) for key, n in now.items() if n > before.get(key, 0)}
    )


def _edges(buckets: Counter[int]) -> tuple[int, int]:
    """A window's min and max, estimated from its histogram."""
    if not buckets:
        return 0, 0
    return round(bucket_value(min(buckets))), round(bucket_value(max(buckets)))


def totals_since(now: Totals, before: Totals) -> Totals:
    buckets = counter_since(now.buckets, before.buckets)
    first: list[int] | None = None
    if now.first is not None and before.first is not None:
        exact = now.first[len(before.first) :]  # exact while few: append-only
        first, low, high = exact, min(exact, default=0), max(exact, default=0)
    else:
        low, high = _edges(buckets)
    return Totals(
        0,
        completed=now.completed - before.completed,
        all_ns=now.all_ns - before.all_ns,
        min_ns=low,
        max_ns=high,
        total_ns=now.total_ns - before.total_ns,
        child_ns=now.child_ns - before.child_ns,
        active_ns=now.active_ns - before.active_ns,
        starts=now.starts - before.starts,
        errors=now.errors - before.errors,
        error_types=counter_since(now.error_types, before.error_types),
        buckets=buckets,
        first=first,
    )


def _idle_allocations(now: AllocationTotals, at: Marked) -> AllocationTotals | None:
    """A window's allocations when no call finished in it: calls in progress only."""
    if at.allocations is None:
        return now
    zero = Allocations(0, 0)
    then = dict(zip(ALLOCATION_FIELDS, (Allocations(*p) for p in at.allocations), strict=True))
    return AllocationTotals(
        zero, zero, zero, Counter(),
        _pair_since(now.running_total, then["running_total"]),
        _pair_since(now.running_own, then["running_own"]),
        _pair_since(now.running_child, then["running_child"]),
    )  # fmt: skip


def _pair_since(now: Allocations, before: Allocations) -> Allocations:
    return Allocations(now.count - before.count, now.bytes - before.bytes)


def allocations_since(
    now: AllocationTotals | None, before: AllocationTotals | None
) -> AllocationTotals | None:
    if now is None or before is None:
        return now
    return AllocationTotals(
        every=_pair_since(now.every, before.every),
        total=_pair_since(now.total, before.total),
        child=_pair_since(now.child, before.child),
        buckets=counter_since(now.buckets, before.buckets),
        running_total=_pair_since(now.running_total, before.running_total),
        running_own=_pair_since(now.running_own, before.running_own),
        running_child=_pair_since(now.running_child, before.running_child),
    )


def function_since(now: FunctionStats, at: Marked | None) -> FunctionStats:
    """The function's figures in the window: calls finished in it, and calls in progress now
    that were not at the mark; its time in the window, in-progress time included."""
    if at is None:
        return now
    if now.totals.completed == at.completed and now.totals.starts == at.starts:
        # Nothing finished or started in the window (most functions, in a short one): only
        # the time of calls that ran across it. Measured: 5,000 functions' window, 73 ms
        # with the histograms subtracted for each.
        idle = Totals(
            0,
            total_ns=now.totals.total_ns - at.total_ns,
            child_ns=now.totals.child_ns - at.child_ns,
            active_ns=now.totals.active_ns - at.active_ns,
            first=[],
        )
        return FunctionStats(
            now.info,
            idle,
            max(0, now.running - at.running),
            now.running_ns - at.running_ns,
            now.running_own_ns - at.running_own_ns,
            now.running_child_ns - at.running_child_ns,
            None if now.allocations is None else _idle_allocations(now.allocations, at),
        )
    before = unmarked(at)
    return FunctionStats(
        now.info,
        totals_since(now.totals, before.totals),
        max(0, now.running - before.running),
        now.running_ns - before.running_ns,
        now.running_own_ns - before.running_own_ns,
        now.running_child_ns - before.running_child_ns,
        allocations_since(now.allocations, before.allocations),
    )


def distribution_since(
    now: DistributionReading, before: DistributionReading
) -> DistributionReading:
    buckets = counter_since(now.buckets, before.buckets)
    return DistributionReading(
        now.count - before.count, now.total - before.total, _edges(buckets)[1], buckets
    )


def _minus(now: Any, before: Any, *fields: str) -> dict[str, Any]:
    """What each of these counts grew by since ``before`` (an earlier reading): ints, typed
    Any for the readings' ``_replace``."""
    return {name: getattr(now, name) - getattr(before, name) for name in fields}


def channel_since(now: ChannelReading, before: ChannelReading | None, at_ns: int) -> ChannelReading:
    """Traffic in the window (which began at ``at_ns``); sizes, instances alive and capacity
    as they are now."""
    if before is None:
        return now
    return now._replace(
        **_minus(now, before, "created", "closed", "sent", "received"),
        delay=distribution_since(now.delay, before.delay),
        first_ns=max(now.first_ns, at_ns),
        recent_sends=[t for t in now.recent_sends if t >= at_ns],
        recent_receives=[t for t in now.recent_receives if t >= at_ns],
    )


def future_since(now: FutureReading, before: FutureReading | None, at_ns: int) -> FutureReading:
    """Tasks created and finished in the window; the unfinished ones as they are now."""
    if before is None:
        return now
    return now._replace(
        **_minus(now, before, "created", "done", "cancelled", "failed", "polls"),
        **_minus(now, before, "collected_unfinished"),
        outcomes=counter_since(now.outcomes, before.outcomes),
        active=distribution_since(now.active, before.active),
        wall=distribution_since(now.wall, before.wall),
    )


def stream_since(now: StreamReading, before: StreamReading | None, at_ns: int) -> StreamReading:
    """Instances started and ended, and items yielded, in the window (begun at ``at_ns``)."""
    if before is None:
        return now
    return now._replace(
        **_minus(now, before, "instances", "exhausted", "closed_early", "failed", "items"),
        end_reasons=counter_since(now.end_reasons, before.end_reasons),
        first_item_ns=None if now.first_item_ns is None else max(now.first_item_ns, at_ns),
        recent_items=[t for t in now.recent_items if t >= at_ns],
        gaps=distribution_since(now.gaps, before.gaps),
    )


def lock_since(now: LockReading, before: LockReading | None, at_ns: int) -> LockReading:
    """Acquisitions, waits and holds in the window; holders, waiters and instances alive
    as they are now."""
    if before is None:
        return now
    return now._replace(
        **_minus(now, before, "created", "acquisitions", "contended", "failed", "timeouts"),
        **_minus(now, before, "wait_ns", "wait_timeouts"),
        wait=distribution_since(now.wait, before.wait),
        hold=distribution_since(now.hold, before.hold),
        waits=distribution_since(now.waits, before.waits),
        first_ns=max(now.first_ns, at_ns),
    )


def operation_since(
    now: OperationReading, before: OperationReading | None, at_ns: int
) -> OperationReading:
    """Calls in the window, their outcomes, callers and what was done inside them."""
    if before is None:
        return now
    return now._replace(
        **_minus(now, before, "calls", "errors", "rows", "rows_known", "sent", "received"),
        time=distribution_since(now.time, before.time),
        outcomes=counter_since(now.outcomes, before.outcomes),
        callers=_figures_since(now.callers, before.callers),
        inside=_figures_since(now.inside, before.inside),
        first_ns=max(now.first_ns, at_ns),
    )


def _figures_since[K](now: dict[K, Figures], before: dict[K, Figures]) -> dict[K, Figures]:
    zero = Figures(0, 0)
    return {
        key: Figures(figures.calls - old.calls, figures.time_ns - old.time_ns)
        for key, figures in now.items()
        if figures.calls > (old := before.get(key, zero)).calls
    }


class WindowTable:
    """A table read as a window: ``read()`` gives each entry's figures since the mark; the
    rest (logs, lookups, counts of dropped entries) is the table's own."""

    def __init__(
        self,
        table: Any,
        before: dict[int, Any],  # readings of one table: channels, futures, streams, locks, ...
        since: Callable[[Any, Any, int], Any],
        at_ns: int,
    ) -> None:
        self._table = table
        self._before = before
        self._since = since
        self._at_ns = at_ns

    def read(self) -> list[Any]:
        return [self._since(r, self._before.get(r.id), self._at_ns) for r in self._table.read()]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def function_key(stats: FunctionStats | Marked) -> tuple[str, str]:
    """How a mark finds a function again: by name and place (a child's function has no id
    of the parent's, and ids of functions only children ran are given in merge order)."""
    return stats.info.name, stats.info.location

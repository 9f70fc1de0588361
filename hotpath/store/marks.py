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
from typing import Any

from hotpath import stdlib
from hotpath.store.channels import ChannelReading
from hotpath.store.cpu import CpuReading
from hotpath.store.functions import Allocations, AllocationTotals, FunctionStats, Totals
from hotpath.store.futures import FutureReading
from hotpath.store.histogram import DistributionReading, bucket_value
from hotpath.store.streams import StreamReading

MAX_MARKS = 20
START = "start"  # the label of the run's start: every figure as it was before the first call


@dataclass(frozen=True, slots=True)
class Mark:
    label: str
    at_ns: int
    functions: dict[tuple[str, str], FunctionStats]  # by function_key, the whole program's
    channels: dict[int, ChannelReading]  # by id
    futures: dict[int, FutureReading]
    streams: dict[int, StreamReading]
    cpu: CpuReading  # this process's samples (a window of merged trees is not stable)


class Marks:
    def __init__(self, kept: int = MAX_MARKS) -> None:
        self._lock = stdlib.new_lock()
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
    if now.completed == before.completed and now.starts == before.starts:
        # Nothing finished or started in the window (most functions, in a short one): only
        # the time of calls that ran across it. Measured: 5,000 functions' window, 73 ms
        # with the histograms subtracted for each.
        return Totals(
            0,
            total_ns=now.total_ns - before.total_ns,
            child_ns=now.child_ns - before.child_ns,
            active_ns=now.active_ns - before.active_ns,
            first=[],
        )
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


def function_since(now: FunctionStats, before: FunctionStats | None) -> FunctionStats:
    """The function's figures in the window: calls finished in it, and calls in progress now
    that were not at the mark; its time in the window, in-progress time included."""
    if before is None:
        return now
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


def channel_since(now: ChannelReading, before: ChannelReading | None, at_ns: int) -> ChannelReading:
    """Traffic in the window (which began at ``at_ns``); sizes, instances alive and capacity
    as they are now."""
    if before is None:
        return now
    return now._replace(
        created=now.created - before.created,
        closed=now.closed - before.closed,
        sent=now.sent - before.sent,
        received=now.received - before.received,
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
        created=now.created - before.created,
        done=now.done - before.done,
        cancelled=now.cancelled - before.cancelled,
        failed=now.failed - before.failed,
        collected_unfinished=now.collected_unfinished - before.collected_unfinished,
        outcomes=+Counter({k: n - before.outcomes.get(k, 0) for k, n in now.outcomes.items()}),
        polls=now.polls - before.polls,
        active=distribution_since(now.active, before.active),
        wall=distribution_since(now.wall, before.wall),
    )


def stream_since(now: StreamReading, before: StreamReading | None, at_ns: int) -> StreamReading:
    """Instances started and ended, and items yielded, in the window (begun at ``at_ns``)."""
    if before is None:
        return now
    return now._replace(
        instances=now.instances - before.instances,
        exhausted=now.exhausted - before.exhausted,
        closed_early=now.closed_early - before.closed_early,
        failed=now.failed - before.failed,
        end_reasons=+Counter(
            {k: n - before.end_reasons.get(k, 0) for k, n in now.end_reasons.items()}
        ),
        items=now.items - before.items,
        first_item_ns=None if now.first_item_ns is None else max(now.first_item_ns, at_ns),
        recent_items=[t for t in now.recent_items if t >= at_ns],
        gaps=distribution_since(now.gaps, before.gaps),
    )


class WindowTable:
    """A table read as a window: ``read()`` gives each entry's figures since the mark; the
    rest (logs, lookups, counts of dropped entries) is the table's own."""

    def __init__(
        self,
        table: Any,
        before: dict[int, Any],  # readings of one table: channels, futures or streams
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


def function_key(stats: FunctionStats) -> tuple[str, str]:
    """How a mark finds a function again: by name and place (a child's function has no id
    of the parent's, and ids of functions only children ran are given in merge order)."""
    return stats.info.name, stats.info.location

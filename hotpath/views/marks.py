"""Marks and windows (``mark``, ``diff``, and the ``since`` argument of every summary tool):
the agent's loop of measure, change, measure again, on a live run.

``diff(since, until)`` compares two windows that meet at ``since``: *before* runs from the
mark preceding ``since`` (or the start) to ``since``, *after* from ``since`` to ``until`` (a
later mark, or now). Functions are matched by name and place, channels, future groups and
locks by their site (queues by send-to-receive delay, task groups by a task's wall time, locks
by the wait of the acquisitions that waited), SQL statements, HTTP endpoints and routes by
their name (by a call's time). Rows are
sorted by how much worse the after window is (the ratio of its average
to the before window's), weighed by how often it ran: ``worse_by_ns``, the time of its own
(callees set aside) the after window's calls took beyond what they would have at the before
window's average, so that the function whose own code got slower comes before the callers
that only waited for it. Rows within ``UNCHANGED`` of 1 in latency and rate are counted, not
listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from hotpath.store import Store
from hotpath.store.channels import ChannelReading
from hotpath.store.cpu import CpuTable
from hotpath.store.functions import FunctionStats
from hotpath.store.futures import FutureReading
from hotpath.store.histogram import DistributionReading, percentiles
from hotpath.store.locks import LockReading
from hotpath.store.marks import (
    MAX_MARKS,
    START,
    Mark,
    channel_since,
    function_key,
    function_since,
    future_since,
    lock_since,
    operation_since,
    unmarked,
)
from hotpath.store.operations import OperationReading
from hotpath.views import schema, units
from hotpath.views.common import DEFAULT_LIMIT, JSON, BadArgument
from hotpath.views.lookup import NotFound
from hotpath.views.schema import INT, NUM, STR, maybe, obj

NOW = "now"
MAX_LABEL = 64
UNCHANGED = 0.10  # a ratio within 10% of 1 is the noise of a live run, not a change


def _check_label(label: str) -> str:
    text = label.strip() if isinstance(label, str) else ""
    if not text or len(text) > MAX_LABEL or text in (START, NOW):
        raise BadArgument(
            f"label must be 1-{MAX_LABEL} characters and not {START!r} or {NOW!r}, got {label!r}"
        )
    return text


def find_mark(store: Store, label: str) -> Mark:
    """The mark named ``label``, or the run's start for ``"start"``."""
    if label == START:
        empty = CpuTable(store.cpu.interval_s).read()
        return Mark(START, store.started_ns, {}, {}, {}, {}, empty, {}, {}, {}, {})
    for mark in store.marks.read():
        if mark.label == label:
            return mark
    known = [m.label for m in store.marks.read()]
    listed = ", ".join(repr(k) for k in known) if known else "none yet (the mark tool makes one)"
    raise NotFound(f"no mark {label!r}; marks: {listed}; or 'start'")


def mark(store: Store, label: str) -> JSON:
    made = store.mark(_check_label(label))
    marks = store.marks.read()
    return {
        "summary": (
            f"marked {made.label!r} at {units.timestamp(store.epoch_ns(made.at_ns))}: pass "
            f"since={made.label!r} to a summary tool for what happens from now on, or "
            f"diff(since={made.label!r}) to compare with before"
        ),
        "label": made.label,
        "at": units.timestamp(store.epoch_ns(made.at_ns)),
        "marks": [
            {"label": m.label, "at": units.timestamp(store.epoch_ns(m.at_ns))} for m in marks
        ],
        "kept_at_most": MAX_MARKS,
    }


MARK = obj(
    summary=STR,
    label=STR,
    at=STR,
    marks=schema.array(obj(label=STR, at=STR)),
    kept_at_most=INT,
)


def _marks_around(store: Store, since: str, until: str) -> tuple[Mark, Mark, Mark | None]:
    """(the mark before ``since``, or the start; ``since``; ``until``, None for now)."""
    start = find_mark(store, START)
    if since == START:
        return start, start, None if until == NOW else find_mark(store, until)
    at = find_mark(store, since)
    earlier = [m for m in store.marks.read() if m.at_ns < at.at_ns]
    later = None if until == NOW else find_mark(store, until)
    if later is not None and later.at_ns <= at.at_ns:
        raise BadArgument(f"until ({until!r}) must be a mark made after since ({since!r})")
    return (earlier[-1] if earlier else start), at, later


def _window(stats: FunctionStats | None, seconds: float) -> JSON:
    """One window of a function: its calls, rate, and per-call figures."""
    if stats is None or not stats.calls:
        return {
            "calls": 0, "calls_per_s": 0.0, "avg_ns": None, "p95_ns": None, "p99_ns": None,
            "self_avg_ns": 0.0,
        }  # fmt: skip
    finished = stats.totals.completed > 0
    found = stats.percentiles_ns((95.0, 99.0))
    return {
        "calls": stats.calls,
        "calls_per_s": round(stats.calls / seconds, 2) if seconds > 0 else 0.0,
        "avg_ns": round(stats.avg_ns) if finished else None,
        "p95_ns": round(found[95.0]) if finished else None,
        "p99_ns": round(found[99.0]) if finished else None,
        "self_avg_ns": stats.self_ns / stats.calls,
    }


def _ratio(after: float | None, before: float | None) -> float | None:
    return round(after / before, 3) if after is not None and before else None


def _changed(ratio: float | None) -> bool:
    return ratio is not None and abs(ratio - 1.0) > UNCHANGED


def diff(store: Store, since: str, until: str = NOW, limit: int = DEFAULT_LIMIT) -> JSON:
    first, at, later = _marks_around(store, since, until)
    end_ns = store.now_ns() if later is None else later.at_ns
    before_s, after_s = (at.at_ns - first.at_ns) / 1e9, (end_ns - at.at_ns) / 1e9
    now = (
        store.function_stats(store.now_ns())
        if later is None
        else [unmarked(mark) for mark in later.functions.values()]
    )
    rows, unchanged, idle = [], 0, 0
    for stats in now:
        key = function_key(stats)
        then = at.functions.get(key)
        before = _window(
            function_since(unmarked(then), first.functions.get(key)) if then is not None else None,
            before_s,
        )
        after = _window(function_since(stats, then), after_s)
        if not after["calls"] and not before["calls"]:
            continue
        latency = _ratio(after["avg_ns"], before["avg_ns"])
        rate = _ratio(after["calls_per_s"], before["calls_per_s"])
        if not after["calls"]:
            idle += 1
            continue
        if before["calls"] and not _changed(latency) and not _changed(rate):
            unchanged += 1
            continue
        rows.append(
            {
                "name": stats.info.name,
                "location": stats.info.location,
                "calls_before": before["calls"],
                "calls_after": after["calls"],
                "calls_per_s_before": before["calls_per_s"],
                "calls_per_s_after": after["calls_per_s"],
                **{f"{k}_before": before[k] for k in ("avg_ns", "p95_ns", "p99_ns")},
                **{f"{k}_after": after[k] for k in ("avg_ns", "p95_ns", "p99_ns")},
                "avg_ratio": latency,
                "p95_ratio": _ratio(after["p95_ns"], before["p95_ns"]),
                "calls_per_s_ratio": rate,
                "worse_by_ns": round(
                    (after["self_avg_ns"] - before["self_avg_ns"]) * after["calls"]
                ),
                "change": _say(latency, rate, before["calls"]),
            }
        )
    rows.sort(key=lambda row: row["worse_by_ns"], reverse=True)
    shown = rows[:limit]
    # Channels by send-to-receive delay (count: receives), future groups by a task's wall
    # time (count: tasks finished); their rates are sends and tasks created per second.
    spans = ((first.at_ns, at.at_ns), (before_s, after_s))
    channels = _sites(
        store.channels.read() if later is None else list(later.channels.values()),
        at.channels, first.channels, channel_since, *spans, _channel_figures,
    )  # fmt: skip
    futures = _sites(
        store.futures.read() if later is None else list(later.futures.values()),
        at.futures, first.futures, future_since, *spans, _future_figures,
    )  # fmt: skip
    locks = _sites(
        store.locks.read() if later is None else list(later.locks.values()),
        at.locks, first.locks, lock_since, *spans, _lock_figures,
    )  # fmt: skip
    operations = {  # statements, endpoints and routes by their time per call
        name: _sites(
            getattr(store, name).read() if later is None else list(getattr(later, name).values()),
            getattr(at, name), getattr(first, name), operation_since, *spans, _operation_figures,
        )
        for name in ("sql", "http", "routes")
    }  # fmt: skip
    worst = shown[0] if shown else None
    return {
        "summary": _diff_summary(worst, len(rows), unchanged, idle, since, until),
        "before": {"from": first.label, "to": at.label, "seconds": round(before_s, 3)},
        "after": {"from": at.label, "to": until, "seconds": round(after_s, 3)},
        "sorted_by": "worse_by_ns",
        "total_changed": len(rows),
        "shown": len(shown),
        "unchanged_functions": unchanged,
        "idle_functions": idle,
        "functions": shown,
        "channels": channels[:limit],
        "futures": futures[:limit],
        "locks": locks[:limit],
        **{name: rows[:limit] for name, rows in operations.items()},
    }


def _channel_figures(reading: ChannelReading) -> tuple[int, int, DistributionReading]:
    return reading.received, reading.sent, reading.delay


def _lock_figures(reading: LockReading) -> tuple[int, int, DistributionReading]:
    return reading.contended, reading.acquisitions, reading.wait


def _operation_figures(reading: OperationReading) -> tuple[int, int, DistributionReading]:
    return reading.calls, reading.calls, reading.time


def _future_figures(reading: FutureReading) -> tuple[int, int, DistributionReading]:
    return reading.done + reading.failed + reading.cancelled, reading.created, reading.wall


def _spread(count: int, started: int, values: DistributionReading, seconds: float) -> JSON:
    found = percentiles(values.buckets, (95.0,)) if values.count else {}
    return {
        "count": count,
        "per_s": round(started / seconds, 2) if seconds > 0 else 0.0,
        "avg_ns": round(values.total / values.count) if values.count else None,
        "p95_ns": round(found[95.0]) if values.count else None,
    }


def _sites(
    now: list[Any],
    at: dict[int, Any],
    first: dict[int, Any],
    since: Callable[[Any, Any, int], Any],
    starts: tuple[int, int],
    seconds: tuple[float, float],
    figures: Callable[[Any], tuple[int, int, DistributionReading]],
) -> list[JSON]:
    """Channels or future groups that changed at the mark, the worst first (as functions)."""
    rows = []
    for reading in now:
        then = at.get(reading.id)
        before = (
            _spread(*figures(since(then, first.get(reading.id), starts[0])), seconds[0])
            if then is not None
            else _spread(0, 0, DistributionReading(0, 0, 0, Counter()), seconds[0])
        )
        after = _spread(*figures(since(reading, then, starts[1])), seconds[1])
        latency = _ratio(after["avg_ns"], before["avg_ns"])
        rate = _ratio(after["per_s"], before["per_s"])
        if not after["count"] and not after["per_s"]:
            continue
        if before["count"] and not _changed(latency) and not _changed(rate):
            continue
        rows.append(
            {
                "name": reading.name,
                "location": reading.location,
                **{f"{k}_before": v for k, v in before.items()},
                **{f"{k}_after": v for k, v in after.items()},
                "avg_ratio": latency,
                "per_s_ratio": rate,
                "worse_by_ns": round(
                    ((after["avg_ns"] or 0) - (before["avg_ns"] or 0)) * after["count"]
                ),
                "change": _say(latency, rate, before["count"] or before["per_s"]),
            }
        )
    rows.sort(key=lambda row: row["worse_by_ns"], reverse=True)
    return rows


def _say(latency: float | None, rate: float | None, seen_before: float) -> str:
    if not seen_before:
        return "new: not seen before"
    parts = []
    if _changed(latency):
        assert latency is not None
        parts.append(f"{latency:.2f}x {'slower' if latency > 1 else 'faster'} on average")
    if _changed(rate):
        assert rate is not None
        parts.append(f"{rate:.2f}x as often")
    return "; ".join(parts)


def _diff_summary(
    worst: JSON | None, changed: int, unchanged: int, idle: int, since: str, until: str
) -> str:
    span = f"since {since!r}" + ("" if until == NOW else f" until {until!r}")
    if worst is None:
        return (
            f"nothing changed {span}: {unchanged} functions within {UNCHANGED:.0%}, "
            f"{idle} not called after it"
        )
    return (
        f"{changed} functions changed {span}; first {worst['name']}: {worst['change']} "
        f"({worst['calls_after']:,} calls, avg {units.duration(worst['avg_ns_after'] or 0)}); "
        f"{unchanged} unchanged"
    )


_FIGURE = maybe(INT)
DIFF_ROW = obj(
    name=STR,
    location=STR,
    calls_before=INT,
    calls_after=INT,
    calls_per_s_before=NUM,
    calls_per_s_after=NUM,
    avg_ns_before=_FIGURE,
    p95_ns_before=_FIGURE,
    p99_ns_before=_FIGURE,
    avg_ns_after=_FIGURE,
    p95_ns_after=_FIGURE,
    p99_ns_after=_FIGURE,
    avg_ratio=maybe(NUM),
    p95_ratio=maybe(NUM),
    calls_per_s_ratio=maybe(NUM),
    worse_by_ns=INT,
    change=STR,
)
SITE_ROW = obj(
    name=STR,
    location=STR,
    count_before=INT,
    count_after=INT,
    per_s_before=NUM,
    per_s_after=NUM,
    avg_ns_before=_FIGURE,
    avg_ns_after=_FIGURE,
    p95_ns_before=_FIGURE,
    p95_ns_after=_FIGURE,
    avg_ratio=maybe(NUM),
    per_s_ratio=maybe(NUM),
    worse_by_ns=INT,
    change=STR,
)
_SPAN = obj(**{"from": STR, "to": STR, "seconds": NUM})
DIFF = obj(
    summary=STR,
    before=_SPAN,
    after=_SPAN,
    sorted_by=STR,
    total_changed=INT,
    shown=INT,
    unchanged_functions=INT,
    idle_functions=INT,
    functions=schema.array(DIFF_ROW),
    channels=schema.array(SITE_ROW),
    futures=schema.array(SITE_ROW),
    locks=schema.array(SITE_ROW),
    sql=schema.array(SITE_ROW),
    http=schema.array(SITE_ROW),
    routes=schema.array(SITE_ROW),
)

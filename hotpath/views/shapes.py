"""The JSON shapes hotpath answers with: the MCP tools and the JSON report share them.

Raw numbers carry their unit in their name (``total_ns``, ``alloc_bytes``); short human strings
sit beside them where that helps a reader. Field meanings are documented in the README.
"""

from __future__ import annotations

import asyncio.tasks
from collections import Counter
from typing import Any

from hotpath import DISTRIBUTION, __version__
from hotpath.store import Store
from hotpath.store.channels import RECENT_KEPT, RECENT_WINDOW_NS, ChannelSite
from hotpath.store.functions import (
    FUNCTION_SORTS,
    Allocations,
    AllocationTotals,
    CallRecord,
    FunctionInfo,
    FunctionSort,
    FunctionStats,
)
from hotpath.store.futures import FutureGroup, TaskRecord
from hotpath.store.gauges import GaugeReading
from hotpath.store.histogram import Distribution, percentiles
from hotpath.store.streams import Stream
from hotpath.store.threads import ThreadFigures
from hotpath.views import units
from hotpath.views.lookup import find

JSON = dict[str, Any]
MAX_LIMIT = 10_000
SORTED_BY: dict[FunctionSort, str] = {
    "self": "self_ns",
    "total": "total_ns",
    "calls": "calls",
    "avg": "avg_ns",
    "p99": "p99",
}


class BadArgument(ValueError):
    """An argument a tool cannot use; the message says what would work."""


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise BadArgument(f"limit must be a whole number, got {limit!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadArgument(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def _function_row(stats: FunctionStats, store: Store, wall_ns: int, all_self_ns: int) -> JSON:
    info, totals = stats.info, stats.totals
    quantiles = store.info.percentiles
    generator_like = info.kind != "function"
    finished = totals.completed > 0  # else the per-call figures are null, not 0: none exist
    return {
        "id": info.id,
        "name": info.name,
        "location": info.location,
        "kind": info.kind,
        "calls": stats.calls,
        "completed": totals.completed,
        "running": stats.running,
        "errors": totals.errors,
        "error_types": dict(totals.error_types.most_common()),
        "total_ns": stats.total_ns,
        "self_ns": stats.self_ns,
        "active_ns": stats.active_ns if generator_like else None,
        "avg_ns": round(stats.avg_ns) if finished else None,
        "min_ns": totals.min_ns if finished else None,
        "max_ns": totals.max_ns if finished else None,
        "percentiles_ns": {
            units.percentile_key(q): round(v) if finished else None
            for q, v in stats.percentiles_ns(quantiles).items()
        },
        "percent_self": round(100.0 * stats.self_ns / all_self_ns, 2) if all_self_ns else 0.0,
        "percent_total": round(100.0 * stats.total_ns / wall_ns, 2) if wall_ns else 0.0,
        "total": units.duration(stats.total_ns),
        "self": units.duration(stats.self_ns),
        "active": units.duration(stats.active_ns) if generator_like else None,
        "avg": units.duration(stats.avg_ns) if finished else None,
    }


def check_sort(sort: str | None, store: Store) -> FunctionSort:
    chosen = store.info.sort if sort is None else sort
    for known in FUNCTION_SORTS:
        if chosen == known:
            return known
    raise BadArgument(f"sort must be one of {', '.join(FUNCTION_SORTS)}, got {sort!r}")


def functions_timing(store: Store, limit: int, sort: str | None = None) -> JSON:
    check_limit(limit)
    order = check_sort(sort, store)
    wall_ns = store.wall_ns()
    stats = store.functions.snapshot(store.now_ns())
    called = [s for s in stats if s.calls]
    called.sort(key=lambda s: s.sort_key(order), reverse=True)
    all_self_ns = sum(s.self_ns for s in called)
    answer: JSON = {
        "wall_ns": wall_ns,
        "wall": units.duration(wall_ns),
        "sorted_by": SORTED_BY[order],
        "all_self_ns": all_self_ns,
        "total_functions": len(called),
        "shown": min(limit, len(called)),
        "dropped_functions": store.functions.dropped,
        "functions": [_function_row(s, store, wall_ns, all_self_ns) for s in called[:limit]],
    }
    if not called:
        answer["note"] = _nothing_timed(store)
    return answer


def _nothing_timed(store: Store) -> str:
    """Why no function was timed, and the --include that would have helped."""
    filters = store.info.filters
    if filters["include"]:
        why = f"no function matched --include {' '.join(map(str, filters['include']))}"
    else:
        roots = ", ".join(map(str, filters["default_roots"] or []))
        why = f"the default filter times code under {roots} ({filters['default_roots_chosen']})"
    ran = store.functions.suggestions()
    if not ran:
        return f"no profiled function was called: {why}"
    packages = ", ".join(f"{name} ({count} functions)" for name, count in ran)
    return (
        f"no profiled function was called: {why}. Code ran from {packages}: "
        f"try --include '{ran[0][0]}.*'"
    )


def _newest[T](entries: list[T], limit: int) -> list[T]:
    """The last ``limit`` of entries kept oldest first, newest first: how every log reads."""
    return entries[::-1][:limit]


def _chosen_function(
    store: Store, function_name: str, limit: int
) -> tuple[FunctionInfo, list[CallRecord]]:
    """The function a name finds, and its newest ``limit`` logged calls, oldest first."""
    stats = store.functions.snapshot(store.now_ns())
    chosen = find([s.info for s in stats], function_name, "function")
    return chosen, store.functions.recent_calls(chosen, limit)


def _log_row(record: CallRecord, store: Store) -> JSON:
    return {
        "timestamp": units.timestamp(store.epoch_ns(record.end_ns)),
        "duration_ns": record.duration_ns,
        "duration": units.duration(record.duration_ns),
        "thread_name": record.thread.name,
        "thread_id": record.thread.native_id,
        "outcome": "returned" if record.outcome is None else f"raised {record.outcome}",
    }


def function_timing_logs(store: Store, function_name: str, limit: int) -> JSON:
    check_limit(limit)
    chosen, calls = _chosen_function(store, function_name, limit)
    recent = _newest(calls, limit)
    return {
        "function": {"id": chosen.id, "name": chosen.name, "location": chosen.location},
        "order": "newest_first",
        "kept_per_function": store.functions.log_limit,
        "logs": [_log_row(r, store) for r in recent],
    }


def profiler_status(store: Store) -> JSON:
    info = store.info
    return {
        "hotpath": {"version": __version__, "distribution": DISTRIBUTION},
        "pid": info.pid,
        "argv": info.argv,
        "python": info.python,
        "recorder": info.recorder,
        "uptime_ns": store.wall_ns(),
        "uptime": units.duration(store.wall_ns()),
        "running": store.ended_ns is None,
        "filters": info.filters,
        "collectors": info.collectors,
        "tracing_memory_sites": store.memory.tracing(),
        "percentiles": [units.percentile_key(q) for q in info.percentiles],
        "known": {
            "functions": len(store.functions.functions),
            "dropped_functions": store.functions.dropped,
            "events_given_up": store.functions.events_given_up(),
            "threads": store.threads.read().process.threads,
            "gauges": len(store.gauges.all()),
        },
        "problems": list(store.problems),
    }


def report(store: Store, limit: int) -> JSON:
    """The JSON report written at exit: every section, in the same shapes as the tools."""
    return {
        "status": profiler_status(store),
        "functions_timing": functions_timing(store, limit),
        "functions_alloc": functions_alloc(store, limit),
        "memory_sites": memory_sites(store, limit),
        "channels": channels(store, limit),
        "futures": futures(store, limit),
        "streams": streams(store, limit),
        "threads": threads(store, limit),
        "gauges": gauges(store, limit),
    }


ALLOC_OFF = (
    "allocation counting is off: run `hotpath run --alloc app.py` (or set HOTPATH_ALLOC=1); "
    "it adds about 2 ns per allocation to timing's cost"
)
SITES_OFF = (
    "live memory by site is not being traced: call trace_memory to start tracemalloc now "
    "(it slows the program 3-7x while on), or run with --alloc-sites to trace from the start"
)


def _alloc_note(store: Store) -> str:
    """Why there are no allocation counts."""
    if store.info.alloc_unavailable is not None:
        return (
            f"allocation counts need the compiled recorder, and {store.info.alloc_unavailable}; "
            "live memory by site is traced instead (memory_sites)"
        )
    return ALLOC_OFF


def _not_recorded(key: str, note: str) -> JSON:
    return {key: [], "recorded": False, "note": note}


def _alloc_row(
    stats: FunctionStats, counted: AllocationTotals, store: Store, in_functions: int
) -> JSON:
    info = stats.info
    own, completed = counted.own, stats.totals.completed
    return {
        "id": info.id,
        "name": info.name,
        "location": info.location,
        "kind": info.kind,
        "calls": stats.calls,
        "completed": completed,
        "allocations": counted.so_far.count,
        "allocated_bytes": counted.so_far.bytes,
        "self_allocations": own.count,
        "self_allocated_bytes": own.bytes,
        "avg_allocations": round(counted.every.count / completed) if completed else None,
        "avg_allocated_bytes": round(counted.every.bytes / completed) if completed else None,
        "percentiles_allocated_bytes": {
            units.percentile_key(q): round(v) if completed else None
            for q, v in percentiles(counted.buckets, store.info.percentiles).items()
        },
        "percent_self_allocated": (
            round(100.0 * own.bytes / in_functions, 2) if in_functions else 0.0
        ),
        "allocated": units.size(counted.so_far.bytes),
        "self_allocated": units.size(own.bytes),
    }


def functions_alloc(store: Store, limit: int) -> JSON:
    check_limit(limit)
    if not store.info.collectors.get("alloc"):
        return _not_recorded("functions", _alloc_note(store))
    stats = store.functions.snapshot(store.now_ns())
    counted = [(s, s.allocations) for s in stats if s.calls and s.allocations is not None]
    counted.sort(key=lambda pair: (pair[1].own.bytes, pair[0].calls), reverse=True)
    in_functions = sum(allocations.own.bytes for _, allocations in counted)
    own = store.own_native_ids  # hotpath's threads count too (in `threads`), not here
    threads = [t for t in store.functions.thread_allocations() if t.native_id not in own]
    return {
        "recorded": True,
        "sorted_by": "self_allocated_bytes",
        "total_functions": len(counted),
        "shown": min(limit, len(counted)),
        "counted_allocations": sum(t.allocations.count for t in threads),
        "counted_bytes": sum(t.allocations.bytes for t in threads),
        "in_profiled_functions_bytes": in_functions,
        "functions": [_alloc_row(s, a, store, in_functions) for s, a in counted[:limit]],
    }


def function_alloc_logs(store: Store, function_name: str, limit: int) -> JSON:
    check_limit(limit)
    if not store.info.collectors.get("alloc"):
        return _not_recorded("logs", _alloc_note(store))
    chosen, calls = _chosen_function(store, function_name, limit)
    logs = []
    for record in _newest(calls, limit):
        row = _log_row(record, store)
        counted = record.allocations
        row.update(
            allocations=counted.count if counted is not None else None,
            allocated_bytes=counted.bytes if counted is not None else None,
            allocated=units.size(counted.bytes) if counted is not None else None,
        )
        logs.append(row)
    return {
        "function": {"id": chosen.id, "name": chosen.name, "location": chosen.location},
        "order": "newest_first",
        "logs": logs,
    }


def _function_ranges(store: Store) -> dict[str, list[tuple[int, int, str]]]:
    """file -> (first line, last line, name) of every timed function, innermost first."""
    ranges: dict[str, list[tuple[int, int, str]]] = {}
    for info in list(store.functions.functions):
        lines = [line for _, _, line in info.code.co_lines() if line is not None]
        if lines:
            ranges.setdefault(info.filename, []).append((min(lines), max(lines), info.name))
    for spans in ranges.values():
        spans.sort(key=lambda span: span[1] - span[0])
    return ranges


def memory_sites(store: Store, limit: int) -> JSON:
    """Live memory by allocation site in the newest snapshot, the sites that grew most since
    tracing started first."""
    check_limit(limit)
    baseline, snapshots = store.memory.snapshots()
    tracing = store.memory.tracing()
    if baseline is None or not snapshots:
        return {"tracing": tracing, "snapshots": 0, "sites": [], "note": SITES_OFF}
    last = snapshots[-1]
    previous = snapshots[-2] if len(snapshots) > 1 else baseline
    ranges = _function_ranges(store)

    def grown(site: tuple[str, int]) -> int:
        return last.sites[site][0] - baseline.sites.get(site, (0, 0))[0]

    order = sorted(last.sites, key=lambda site: (grown(site), last.sites[site][0]), reverse=True)
    rows = []
    for site in order[:limit]:
        file, line = site
        size_bytes, blocks = last.sites[site]
        rising = 0
        for older, newer in zip(snapshots[-2::-1], snapshots[::-1], strict=False):
            if newer.sites.get(site, (0, 0))[0] <= older.sites.get(site, (0, 0))[0]:
                break
            rising += 1
        rows.append(
            {
                "site": f"{file}:{line}",
                "function": next(
                    (name for low, high, name in ranges.get(file, []) if low <= line <= high),
                    None,
                ),
                "live_bytes": size_bytes,
                "live": units.size(size_bytes),
                "blocks": blocks,
                "growth_since_start_bytes": grown(site),
                "growth_since_previous_bytes": size_bytes - previous.sites.get(site, (0, 0))[0],
                "rising_snapshots": rising,
            }
        )
    return {
        "tracing": tracing,
        "sorted_by": "growth_since_start_bytes",
        "snapshots": len(snapshots),
        "tracing_started": units.timestamp(store.epoch_ns(baseline.at_ns)),
        "covers_s": round((last.at_ns - baseline.at_ns) / 1e9, 1),
        "traced_bytes": last.traced_bytes,
        "traced": units.size(last.traced_bytes),
        "traced_growth_bytes": last.traced_bytes - baseline.traced_bytes,
        "snapshot_pause_ms": round(last.took_ns / 1e6, 1),
        "sites": rows,
    }


def take_memory_sites(store: Store, limit: int) -> JSON:
    """A snapshot now (when tracing), then the answer of ``memory_sites``."""
    check_limit(limit)
    store.memory.take_snapshot()
    return memory_sites(store, limit)


def trace_memory(store: Store, on: bool) -> JSON:
    """Start or stop tracing live memory by site."""
    if on:
        started = store.memory.start_tracing()
        note = (
            "tracing started; call memory_sites later to see which sites grew since now"
            if started
            else "already tracing (started earlier, or by the program itself)"
        )
    else:
        stopped = store.memory.stop_tracing()
        note = (
            "tracing stopped; memory_sites keeps answering from the last snapshot"
            if stopped
            else "hotpath was not tracing (tracing the program started itself is left on)"
        )
    return {"tracing": store.memory.tracing(), "note": note}


def _rate(stamps: list[int], count: int, since_ns: int | None, now: int) -> tuple[float, float]:
    """(recent, lifetime) events per second. Recent covers the last 10 s (or the run, if
    shorter), or only the events kept when more than that happened in it."""
    if since_ns is None or now <= since_ns:
        return 0.0, 0.0
    window = [t for t in stamps if t >= now - RECENT_WINDOW_NS]
    if len(window) >= RECENT_KEPT:
        recent = len(window) / (max(now - window[0], 1) / 1e9)
    else:
        recent = len(window) / (min(RECENT_WINDOW_NS, now - since_ns) / 1e9)
    return round(recent, 2), round(count / ((now - since_ns) / 1e9), 2)


def _spread(values: Distribution, store: Store) -> JSON:
    """Count, average, max and percentiles of a distribution, in ns; folds what is pending."""
    values.fold()
    return {
        "count": values.count,
        "avg_ns": round(values.total / values.count) if values.count else None,
        "max_ns": values.max if values.count else None,
        "percentiles_ns": {
            units.percentile_key(q): round(v)
            for q, v in percentiles(values.buckets, store.info.percentiles).items()
        }
        if values.count
        else {},
    }


def _channel_row(site: ChannelSite, store: Store, now: int) -> JSON:
    queues = list(site.instances)
    shut = sum(
        1 for q in queues if getattr(q, "_is_shutdown", False) or getattr(q, "is_shutdown", False)
    )
    sizes = [q.qsize() for q in queues]
    with site.lock:
        capacities = sorted(site.capacities)
        sends, receives = list(site.recent_sends), list(site.recent_receives)
        row: JSON = {
            "id": site.id,
            "name": site.name,
            "location": site.location,
            "kind": site.kind,
            "capacity": (
                "unbounded"
                if capacities == [0]
                else ", ".join("unbounded" if c == 0 else f"bounded[{c}]" for c in capacities)
            ),
            "instances": {
                "created": site.created,
                "live": len(queues) - shut,
                "closed": site.closed + shut,
            },
            "sent": site.sent,
            "received": site.received,
            "queue_size": sum(sizes),
            "max_queue_size": site.max_size,
            "delay": _spread(site.delay, store),
            "first_ns": site.first_ns,
        }
    row["sent_per_s"], row["sent_per_s_lifetime"] = _rate(sends, row["sent"], row["first_ns"], now)
    row["received_per_s"], row["received_per_s_lifetime"] = _rate(
        receives, row["received"], row.pop("first_ns"), now
    )
    full = [
        size for q, size in zip(queues, sizes, strict=True) if 0 < getattr(q, "maxsize", 0) <= size
    ]
    row["full_now"] = len(full)
    row["state"] = "closed" if row["instances"]["live"] == 0 else ("full" if full else "active")
    return row


def channels(store: Store, limit: int) -> JSON:
    check_limit(limit)
    now = store.now_ns()
    rows = [_channel_row(site, store, now) for site in store.channels.all()]
    rows.sort(key=lambda r: (r["sent_per_s"], r["sent"]), reverse=True)
    return {
        "sorted_by": "sent_per_s",
        "total_channels": len(rows),
        "shown": min(limit, len(rows)),
        "dropped_channels": store.channels.dropped,
        "channels": rows[:limit],
    }


def channel_logs(store: Store, channel_name: str, limit: int) -> JSON:
    check_limit(limit)
    site = find(store.channels.all(), channel_name, "channel")
    with site.lock:
        events = _newest(list(site.log), limit)
    return {
        "channel": {"id": site.id, "name": site.name, "location": site.location},
        "order": "newest_first",
        "logs": [
            {
                "timestamp": units.timestamp(store.epoch_ns(event.at_ns)),
                "op": event.op,
                "message": event.message,
                "by": event.by,
                "delay_ns": event.delay_ns,
            }
            for event in events
        ],
    }


def _task_state(record: TaskRecord, running: set[int]) -> str:
    if record.state != "started":
        return record.state
    task = record.task() if record.task is not None else None
    return "running" if task is not None and id(task) in running else "suspended"


def _running_tasks() -> set[int]:
    current = getattr(asyncio.tasks, "_current_tasks", {})
    return {id(task) for task in list(current.values())}


def _future_row(group: FutureGroup, store: Store, running: set[int]) -> JSON:
    with group.lock:
        live = list(group.live.values())
        states = Counter(_task_state(record, running) for record in live)
        finished = group.done + group.cancelled + group.failed
        return {
            "id": group.id,
            "name": group.name,
            "location": group.location,
            "calls": group.created,
            "states": {
                "pending": states["pending"],
                "running": states["running"],
                "suspended": states["suspended"],
                "done": group.done,
                "cancelled": group.cancelled,
                "failed": group.failed,
                "dropped_unfinished": group.collected_unfinished,
            },
            "polls": group.polls + sum(record.polls for record in live),
            "avg_polls": round(group.polls / finished, 2) if finished else None,
            "active_time": _spread(group.active, store),
            "wall_time": _spread(group.wall, store),
            "outcomes": dict(group.outcomes.most_common()),
        }


def futures(store: Store, limit: int) -> JSON:
    check_limit(limit)
    running = _running_tasks()
    rows = [_future_row(group, store, running) for group in store.futures.all()]
    unfinished = ("pending", "running", "suspended")
    rows.sort(key=lambda r: (sum(r["states"][s] for s in unfinished), r["calls"]), reverse=True)
    return {
        "sorted_by": "unfinished tasks, then calls",
        "total_groups": len(rows),
        "shown": min(limit, len(rows)),
        "futures": rows[:limit],
    }


def future_logs(store: Store, future_name: str, limit: int) -> JSON:
    check_limit(limit)
    group = find(store.futures.all(), future_name, "future")
    running = _running_tasks()
    now = store.now_ns()
    with group.lock:
        records = sorted(
            [*group.live.values(), *group.log], key=lambda r: r.created_ns, reverse=True
        )[:limit]
        logs = [
            {
                "task_id": record.id,
                "task_name": record.name,
                "state": _task_state(record, running),
                "polls": record.polls,
                "active_ns": record.active_ns,
                "wall_ns": (record.done_ns or now) - record.created_ns,
                "outcome": record.outcome,
                "created_at": record.created_at,
                "created": units.timestamp(store.epoch_ns(record.created_ns)),
                "finished": (
                    units.timestamp(store.epoch_ns(record.done_ns)) if record.done_ns else None
                ),
            }
            for record in records
        ]
    return {
        "future": {"id": group.id, "name": group.name, "location": group.location},
        "order": "newest_first",
        "logs": logs,
    }


def _stream_row(stream: Stream, store: Store, now: int) -> JSON:
    with stream.lock:
        ended = stream.exhausted + stream.closed_early + stream.failed
        stamps = list(stream.recent_items)
        row: JSON = {
            "id": stream.id,
            "name": stream.name,
            "location": stream.location,
            "instances": stream.instances,
            "active": stream.instances - ended,
            "exhausted": stream.exhausted,
            "closed_early": stream.closed_early,
            "failed": stream.failed,
            "end_reasons": dict(stream.end_reasons),
            "items": stream.items,
            "time_between_items": _spread(stream.gaps, store),
        }
        first = stream.first_item_ns
    row["items_per_s"], row["items_per_s_lifetime"] = _rate(stamps, row["items"], first, now)
    row["state"] = "active" if row["active"] else "finished"
    return row


def streams(store: Store, limit: int) -> JSON:
    check_limit(limit)
    now = store.now_ns()
    rows = [_stream_row(stream, store, now) for stream in store.streams.all()]
    rows.sort(key=lambda r: (r["items_per_s"], r["items"]), reverse=True)
    return {
        "sorted_by": "items_per_s",
        "total_streams": len(rows),
        "shown": min(limit, len(rows)),
        "streams": rows[:limit],
    }


def stream_logs(store: Store, stream_name: str, limit: int) -> JSON:
    check_limit(limit)
    stream = find(store.streams.all(), stream_name, "stream")
    with stream.lock:
        items = _newest(list(stream.log), limit)
    return {
        "stream": {"id": stream.id, "name": stream.name, "location": stream.location},
        "order": "newest_first",
        "logs": [
            {
                "timestamp": units.timestamp(store.epoch_ns(item.at_ns)),
                "instance": item.instance,
                "item": item.message,
                "gap_ns": item.gap_ns,
            }
            for item in items
        ],
    }


def _thread_row(figures: ThreadFigures, counted: Allocations | None) -> JSON:
    return {
        "os_thread_id": figures.native_id,
        "name": figures.name,
        "hotpath_own": figures.own,
        "status": figures.status,
        "cpu_user_s": round(figures.user_s, 3),
        "cpu_system_s": round(figures.system_s, 3),
        "cpu_total_s": round(figures.cpu_s, 3),
        "cpu_percent": round(figures.cpu_percent, 1),
        "cpu_percent_max": round(figures.cpu_percent_max, 1),
        "cpu_percent_avg": round(figures.cpu_percent_avg, 1),
        "allocations": counted.count if counted is not None else None,
        "allocated_bytes": counted.bytes if counted is not None else None,
    }


def threads(store: Store, limit: int) -> JSON:
    check_limit(limit)
    reading = store.threads.read()
    process = reading.process
    counted = store.functions.thread_allocations()  # with --alloc: live, and recently ended
    live = {t.native_id: t.allocations for t in counted if t.alive}
    final = {t.native_id: t.allocations for t in counted if not t.alive}
    alive = sorted(reading.alive, key=lambda f: (f.cpu_percent, f.cpu_s), reverse=True)
    ended = sorted(reading.ended, key=lambda f: f.cpu_s, reverse=True)
    return {
        "sorted_by": "cpu_percent",
        "sample_interval_ms": round(store.info.sample_interval_s * 1000),
        "samples": process.samples,
        "process": {
            "rss_bytes": process.rss_bytes,
            "rss": units.size(process.rss_bytes),
            "rss_max_bytes": process.rss_max_bytes,
            "rss_max": units.size(process.rss_max_bytes),
            "cpu_percent": round(process.cpu_percent, 1),
            "cpu_user_s": round(process.user_s, 3),
            "cpu_system_s": round(process.system_s, 3),
            "threads": process.threads,
            "open_fds": process.open_fds,
        },
        "total_threads": len(alive),
        "threads": [_thread_row(f, live.get(f.native_id)) for f in alive[:limit]],
        "ended_threads": [
            _thread_row(f, final.get(f.native_id, live.get(f.native_id))) for f in ended[:limit]
        ],
    }


def _gauge_row(reading: GaugeReading, store: Store) -> JSON:
    last = reading.history[-1].at_ns if reading.history else None
    return {
        "id": reading.gauge.id,
        "name": reading.gauge.name,
        "builtin": reading.gauge.builtin,
        "value": reading.value,
        "min": reading.min,
        "max": reading.max,
        "updates": reading.updates,
        "location": reading.location,
        "updated_at": units.timestamp(store.epoch_ns(last)) if last is not None else None,
    }


def gauges(store: Store, limit: int) -> JSON:
    check_limit(limit)
    readings = [g.read() for g in store.gauges.all()]
    # The program's own gauges first: hotpath's built-in ones are context.
    readings.sort(key=lambda r: (r.gauge.builtin, r.gauge.name))
    return {
        "sorted_by": "program gauges first, then by name",
        "total_gauges": len(readings),
        "dropped_gauges": store.gauges.dropped,
        "gauges": [_gauge_row(r, store) for r in readings[:limit]],
    }


def gauge_logs(store: Store, gauge_name: str, limit: int) -> JSON:
    check_limit(limit)
    gauge = find(store.gauges.all(), gauge_name, "gauge")
    reading = gauge.read()
    recent = _newest(reading.history, limit)
    return {
        "gauge": _gauge_row(reading, store),
        "order": "newest_first",
        "logs": [
            {
                "timestamp": units.timestamp(store.epoch_ns(update.at_ns)),
                "value": update.value,
                "thread_name": update.thread_name,
                "thread_id": update.thread_id,
            }
            for update in recent
        ],
    }

"""The JSON shapes hotpath answers with: the MCP tools and the JSON report share them.

Raw numbers carry their unit in their name (``total_ns``, ``alloc_bytes``); short human strings
sit beside them where that helps a reader. Field meanings are documented in the README.
"""

from __future__ import annotations

from typing import Any

from hotpath.store import Store
from hotpath.store.functions import CallRecord, FunctionStats
from hotpath.store.gauges import GaugeReading
from hotpath.store.histogram import percentiles
from hotpath.store.threads import ThreadFigures
from hotpath.views import units
from hotpath.views.lookup import find

JSON = dict[str, Any]
MAX_LIMIT = 10_000


class BadArgument(ValueError):
    """An argument a tool cannot use; the message says what would work."""


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise BadArgument(f"limit must be a whole number, got {limit!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadArgument(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def _function_row(stats: FunctionStats, store: Store, wall_ns: int) -> JSON:
    info, totals = stats.info, stats.totals
    quantiles = store.info.percentiles
    generator_like = info.kind != "function"
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
        "active_ns": totals.active_ns if generator_like else None,
        "avg_ns": round(stats.avg_ns),
        "min_ns": totals.min_ns,
        "max_ns": totals.max_ns,
        "percentiles_ns": {
            units.percentile_key(q): round(v) for q, v in stats.percentiles_ns(quantiles).items()
        },
        "percent_total": round(100.0 * stats.total_ns / wall_ns, 2) if wall_ns else 0.0,
        "total": units.duration(stats.total_ns),
        "avg": units.duration(stats.avg_ns),
    }


def functions_timing(store: Store, limit: int) -> JSON:
    check_limit(limit)
    wall_ns = store.wall_ns()
    stats = store.functions.snapshot(store.now_ns())
    called = [s for s in stats if s.calls]
    called.sort(key=lambda s: (s.total_ns, s.calls), reverse=True)
    return {
        "wall_ns": wall_ns,
        "wall": units.duration(wall_ns),
        "sorted_by": "total_ns",
        "total_functions": len(called),
        "shown": min(limit, len(called)),
        "dropped_functions": store.functions.dropped,
        "functions": [_function_row(s, store, wall_ns) for s in called[:limit]],
    }


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
    stats = store.functions.snapshot(store.now_ns())
    chosen = find([s.info for s in stats], function_name, "function")
    totals = next(s.totals for s in stats if s.info is chosen)
    recent = list(totals.log)[-limit:]
    recent.reverse()
    return {
        "function": {"id": chosen.id, "name": chosen.name, "location": chosen.location},
        "order": "newest_first",
        "kept_per_function": store.functions.log_limit,
        "logs": [_log_row(r, store) for r in recent],
    }


def profiler_status(store: Store) -> JSON:
    info = store.info
    return {
        "pid": info.pid,
        "argv": info.argv,
        "python": info.python,
        "uptime_ns": store.wall_ns(),
        "uptime": units.duration(store.wall_ns()),
        "running": store.ended_ns is None,
        "filters": info.filters,
        "collectors": info.collectors,
        "percentiles": [units.percentile_key(q) for q in info.percentiles],
        "known": {
            "functions": len(store.functions.functions),
            "dropped_functions": store.functions.dropped,
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
        "threads": threads(store, limit),
        "gauges": gauges(store, limit),
    }


ALLOC_OFF = (
    "allocation profiling is off: run `hotpath run --alloc app.py` (or set HOTPATH_ALLOC=1); "
    "it is off by default because tracemalloc slows a program 3-7x"
)


def _not_recorded(key: str, note: str) -> JSON:
    return {key: [], "recorded": False, "note": note}


def _alloc_row(stats: FunctionStats, store: Store, attributed: int) -> JSON:
    info, memory = stats.info, stats.totals.memory
    per_call = memory.allocated / memory.calls if memory.calls else 0.0
    return {
        "id": info.id,
        "name": info.name,
        "location": info.location,
        "calls": memory.calls,
        "allocated_bytes": memory.allocated,
        "self_allocated_bytes": memory.self_allocated,
        "freed_bytes": memory.freed,
        "self_freed_bytes": memory.self_freed,
        "retained_bytes": memory.allocated - memory.freed,
        "self_retained_bytes": memory.self_allocated - memory.self_freed,
        "peak_bytes_max": memory.peak_max,
        "avg_allocated_bytes": round(per_call),
        "percentiles_allocated_bytes": {
            units.percentile_key(q): round(v)
            for q, v in percentiles(memory.buckets, store.info.percentiles).items()
        },
        "percent_self_allocated": (
            round(100.0 * memory.self_allocated / attributed, 2) if attributed else 0.0
        ),
        "allocated": units.size(memory.allocated),
        "self_allocated": units.size(memory.self_allocated),
        "retained": units.size(memory.allocated - memory.freed),
        "peak_max": units.size(memory.peak_max),
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


def _sites(store: Store, limit: int) -> JSON:
    snapshots = store.memory.snapshots()
    if not snapshots:
        return {"snapshots": 0, "sites": []}
    first, last = snapshots[0], snapshots[-1]
    previous = snapshots[-2] if len(snapshots) > 1 else last
    ranges = _function_ranges(store)
    rows = []
    for (file, line), (size_bytes, blocks) in sorted(
        last.sites.items(), key=lambda item: item[1][0], reverse=True
    )[:limit]:
        rising = 0
        for older, newer in zip(snapshots[-2::-1], snapshots[::-1], strict=False):
            if newer.sites.get((file, line), (0, 0))[0] <= older.sites.get((file, line), (0, 0))[0]:
                break
            rising += 1
        function = next(
            (name for low, high, name in ranges.get(file, []) if low <= line <= high), None
        )
        rows.append(
            {
                "site": f"{file}:{line}",
                "function": function,
                "live_bytes": size_bytes,
                "live": units.size(size_bytes),
                "blocks": blocks,
                "growth_since_previous_bytes": size_bytes
                - previous.sites.get((file, line), (0, 0))[0],
                "growth_since_first_bytes": size_bytes - first.sites.get((file, line), (0, 0))[0],
                "rising_snapshots": rising,
            }
        )
    return {
        "snapshots": len(snapshots),
        "interval_s": store.info.alloc_snapshot_s,
        "covers_s": round((last.at_ns - first.at_ns) / 1e9, 1),
        "traced_bytes": last.traced_bytes,
        "traced": units.size(last.traced_bytes),
        "sites": rows,
    }


def functions_alloc(store: Store, limit: int) -> JSON:
    check_limit(limit)
    if not store.info.collectors.get("alloc"):
        return _not_recorded("functions", ALLOC_OFF)
    stats = store.functions.snapshot(store.now_ns())
    measured = [s for s in stats if s.totals.memory.calls or s.totals.memory.self_allocated]
    attributed = sum(s.totals.memory.self_allocated for s in stats)
    measured.sort(
        key=lambda s: (s.totals.memory.self_allocated, s.totals.memory.allocated), reverse=True
    )
    return {
        "recorded": True,
        "sorted_by": "self_allocated_bytes",
        "total_functions": len(measured),
        "shown": min(limit, len(measured)),
        "attributed_allocated_bytes": attributed,
        "unattributed_allocated_bytes": store.memory.unattributed_allocated,
        "unattributed_freed_bytes": store.memory.unattributed_freed,
        "functions": [_alloc_row(s, store, attributed) for s in measured[:limit]],
        "live_memory": _sites(store, limit),
    }


def function_alloc_logs(store: Store, function_name: str, limit: int) -> JSON:
    check_limit(limit)
    if not store.info.collectors.get("alloc"):
        return _not_recorded("logs", ALLOC_OFF)
    stats = store.functions.snapshot(store.now_ns())
    chosen = find([s.info for s in stats], function_name, "function")
    totals = next(s.totals for s in stats if s.info is chosen)
    recent = [record for record in totals.log if record.memory is not None][-limit:]
    recent.reverse()
    logs = []
    for record in recent:
        assert record.memory is not None
        row = _log_row(record, store)
        row.update(
            allocated_bytes=record.memory.allocated,
            freed_bytes=record.memory.freed,
            retained_bytes=record.memory.net,
            peak_bytes=record.memory.peak,
            allocated=units.size(record.memory.allocated),
        )
        logs.append(row)
    return {
        "function": {"id": chosen.id, "name": chosen.name, "location": chosen.location},
        "order": "newest_first",
        "logs": logs,
    }


def _pending(section: str) -> str:
    return f"this version of hotpath does not record {section} yet"


def channels(store: Store, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("channels", _pending("channels"))


def channel_logs(store: Store, channel_name: str, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("logs", _pending("channels"))


def futures(store: Store, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("futures", _pending("futures"))


def future_logs(store: Store, future_name: str, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("logs", _pending("futures"))


def streams(store: Store, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("streams", _pending("streams"))


def stream_logs(store: Store, stream_name: str, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("logs", _pending("streams"))


def _thread_row(figures: ThreadFigures) -> JSON:
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
        "allocated_bytes": figures.allocated_bytes,
        "freed_bytes": figures.freed_bytes,
        "net_bytes": (
            figures.allocated_bytes - figures.freed_bytes
            if figures.allocated_bytes is not None and figures.freed_bytes is not None
            else None
        ),
    }


def threads(store: Store, limit: int) -> JSON:
    check_limit(limit)
    reading = store.threads.read()
    process = reading.process
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
        "threads": [_thread_row(f) for f in alive[:limit]],
        "ended_threads": [_thread_row(f) for f in ended[:limit]],
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
    recent = reading.history[-limit:]
    recent.reverse()
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

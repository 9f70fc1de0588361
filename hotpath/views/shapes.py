"""The JSON shapes hotpath answers with: the MCP tools and the JSON report share them.

Raw numbers carry their unit in their name (``total_ns``, ``alloc_bytes``); short human strings
sit beside them where that helps a reader. Field meanings are documented in the README.
"""

from __future__ import annotations

from typing import Any

from hotpath.store import Store
from hotpath.store.functions import CallRecord, FunctionStats
from hotpath.store.gauges import GaugeReading
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
        "threads": threads(store, limit),
        "gauges": gauges(store, limit),
    }


ALLOC_OFF = (
    "allocation profiling is off: run `hotpath run --alloc app.py` (or set HOTPATH_ALLOC=1); "
    "it is off by default because tracemalloc slows a program 3-7x"
)


def _not_recorded(key: str, note: str) -> JSON:
    return {key: [], "recorded": False, "note": note}


def functions_alloc(store: Store, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("functions", ALLOC_OFF)


def function_alloc_logs(store: Store, function_name: str, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("logs", ALLOC_OFF)


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

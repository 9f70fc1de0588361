"""The JSON shapes hotpath answers with: the MCP tools and the JSON report share them.

Raw numbers carry their unit in their name (``total_ns``, ``alloc_bytes``); short human strings
sit beside them where that helps a reader. Field meanings are documented in the README.
"""

from __future__ import annotations

from typing import Any

from hotpath.store import Store
from hotpath.store.functions import CallRecord, FunctionStats
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
        },
    }


def report(store: Store, limit: int) -> JSON:
    """The JSON report written at exit: every section, in the same shapes as the tools."""
    return {
        "status": profiler_status(store),
        "functions_timing": functions_timing(store, limit),
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


def threads(store: Store, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("threads", _pending("threads"))


def gauges(store: Store, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("gauges", _pending("gauges"))


def gauge_logs(store: Store, gauge_name: str, limit: int) -> JSON:
    check_limit(limit)
    return _not_recorded("logs", _pending("gauges"))

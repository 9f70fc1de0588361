"""Functions: their time (``functions_timing``, ``function_timing_logs``) and, with ``--alloc``,
their allocations (``functions_alloc``, ``function_alloc_logs``), from the function table's
snapshot of the recorder."""

from __future__ import annotations

from hotpath.store import Store
from hotpath.store.functions import (
    FUNCTION_SORTS,
    AllocationTotals,
    CallRecord,
    FunctionInfo,
    FunctionSort,
    FunctionStats,
)
from hotpath.store.histogram import percentiles
from hotpath.views import schema, units
from hotpath.views.common import (
    DEFAULT_LIMIT,
    JSON,
    BadArgument,
    listing,
    logs,
    named,
    newest,
    not_recorded,
)
from hotpath.views.lookup import find
from hotpath.views.schema import INT, NUM, STR, maybe, obj

SORTED_BY: dict[FunctionSort, str] = {
    "self": "self_ns",
    "total": "total_ns",
    "calls": "calls",
    "avg": "avg_ns",
    "p99": "p99",
}

ALLOC_OFF = (
    "allocation counting is off: run `hotpath run --alloc app.py` (or set HOTPATH_ALLOC=1); "
    "it adds about 2 ns per allocation to timing's cost"
)

IDENTITY = {"id": INT, "name": STR, "location": STR, "kind": STR}
BREAKDOWN = schema.array(obj(pid=INT, calls=INT))  # rows several processes ran (_add_breakdown)


def _identity(info: FunctionInfo) -> JSON:
    return {"id": info.id, "name": info.name, "location": info.location, "kind": info.kind}


# -- time -----------------------------------------------------------------------------------


def _function_row(stats: FunctionStats, store: Store, wall_ns: int, all_self_ns: int) -> JSON:
    info, totals = stats.info, stats.totals
    quantiles = store.info.percentiles
    generator_like = info.kind != "function"
    finished = totals.completed > 0  # else the per-call figures are null, not 0: none exist
    return {
        **_identity(info),
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


FUNCTION_ROW = schema.optional(
    obj(
        **IDENTITY,
        calls=INT,
        completed=INT,
        running=INT,
        errors=INT,
        error_types=schema.mapping(INT),
        total_ns=INT,
        self_ns=INT,
        active_ns=maybe(INT),
        avg_ns=maybe(INT),
        min_ns=maybe(INT),
        max_ns=maybe(INT),
        percentiles_ns=schema.PERCENTILES,
        percent_self=NUM,
        percent_total=NUM,
        total=STR,
        self=STR,
        active=maybe(STR),
        avg=maybe(STR),
        processes=BREAKDOWN,
    ),
    "processes",
)


def _check_sort(sort: str | None, store: Store) -> FunctionSort:
    chosen = store.info.sort if sort is None else sort
    for known in FUNCTION_SORTS:
        if chosen == known:
            return known
    raise BadArgument(f"sort must be one of {', '.join(FUNCTION_SORTS)}, got {sort!r}")


def functions_timing(store: Store, limit: int = DEFAULT_LIMIT, sort: str | None = None) -> JSON:
    order = _check_sort(sort, store)
    wall_ns = store.wall_ns()
    stats = store.function_stats(store.now_ns())
    called = [s for s in stats if s.calls]
    called.sort(key=lambda s: s.sort_key(order), reverse=True)
    all_self_ns = sum(s.self_ns for s in called)
    rows = [_function_row(s, store, wall_ns, all_self_ns) for s in called[:limit]]
    _add_breakdown(rows, store)
    answer: JSON = {
        "wall_ns": wall_ns,
        "wall": units.duration(wall_ns),
        "sorted_by": SORTED_BY[order],
        "all_self_ns": all_self_ns,
        "total_functions": len(called),
        "shown": min(limit, len(called)),
        "dropped_functions": store.functions.dropped,
        "functions": rows,
    }
    if not called:
        answer["note"] = _nothing_timed(store)
    return answer


FUNCTIONS_TIMING = schema.optional(
    obj(
        wall_ns=INT,
        wall=STR,
        sorted_by=STR,
        all_self_ns=INT,
        total_functions=INT,
        shown=INT,
        dropped_functions=INT,
        functions=schema.array(FUNCTION_ROW),
        note=STR,
    ),
    "note",
)


def _add_breakdown(rows: list[JSON], store: Store) -> None:
    """Rows more than one process ran get ``processes``: each one's pid and calls (the
    parent's first; 0 stands for ended children folded together)."""
    children = store.processes.contributions()
    if not children:
        return
    own = {s.info.name: s.calls for s in store.functions.snapshot(store.now_ns())}
    for row in rows:
        theirs = children.get(row["name"], [])
        mine = [(store.info.pid, own[row["name"]])] if own.get(row["name"]) else []
        if len(mine) + len(theirs) > 1:
            row["processes"] = [{"pid": pid, "calls": calls} for pid, calls in mine + theirs]


def _nothing_timed(store: Store) -> str:
    """Why no function was timed, and the --include that would have helped."""
    if store.window is not None:
        return f"no profiled function was called since the mark {store.window.label!r}"
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


def _chosen_function(
    store: Store, function_name: str, limit: int
) -> tuple[FunctionInfo, list[CallRecord]]:
    """The function a name finds, and its newest ``limit`` logged calls, oldest first."""
    stats = store.function_stats(store.now_ns())
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


LOG_ROW = {
    "timestamp": STR,
    "duration_ns": INT,
    "duration": STR,
    "thread_name": STR,
    "thread_id": INT,
    "outcome": STR,
}


def function_timing_logs(store: Store, function_name: str, limit: int = DEFAULT_LIMIT) -> JSON:
    chosen, calls = _chosen_function(store, function_name, limit)
    rows = [_log_row(r, store) for r in newest(calls, limit)]
    return logs("function", named(chosen), rows, kept_per_function=store.functions.log_limit)


FUNCTION_TIMING_LOGS = schema.logs("function", schema.ENTRY, obj(**LOG_ROW), kept_per_function=INT)


# -- allocations ----------------------------------------------------------------------------


def _alloc_note(store: Store) -> str:
    """Why there are no allocation counts."""
    if store.info.alloc_unavailable is not None:
        return (
            f"allocation counts need the compiled recorder, and {store.info.alloc_unavailable}; "
            "live memory by site is traced instead (memory_sites)"
        )
    return ALLOC_OFF


def _alloc_row(
    stats: FunctionStats, counted: AllocationTotals, store: Store, in_functions: int
) -> JSON:
    info = stats.info
    own, completed = counted.own, stats.totals.completed
    return {
        **_identity(info),
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


ALLOC_ROW = schema.optional(
    obj(
        **IDENTITY,
        calls=INT,
        completed=INT,
        allocations=INT,
        allocated_bytes=INT,
        self_allocations=INT,
        self_allocated_bytes=INT,
        avg_allocations=maybe(INT),
        avg_allocated_bytes=maybe(INT),
        percentiles_allocated_bytes=schema.PERCENTILES,
        percent_self_allocated=NUM,
        allocated=STR,
        self_allocated=STR,
        processes=BREAKDOWN,
    ),
    "processes",
)


def functions_alloc(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    if not store.info.collectors.get("alloc"):
        return not_recorded("functions", _alloc_note(store))
    stats = store.function_stats(store.now_ns())
    counted = [(s, s.allocations) for s in stats if s.calls and s.allocations is not None]
    counted.sort(key=lambda pair: (pair[1].own.bytes, pair[0].calls), reverse=True)
    in_functions = sum(allocations.own.bytes for _, allocations in counted)
    own = store.own_native_ids  # hotpath's threads count too (in `threads`), not here
    threads = [t for t in store.functions.thread_allocations() if t.native_id not in own]
    rows = [_alloc_row(s, a, store, in_functions) for s, a in counted[:limit]]
    _add_breakdown(rows, store)
    return {
        "recorded": True,
        **listing(
            "functions",
            rows,
            len(counted),
            "self_allocated_bytes",
            "total_functions",
            counted_allocations=sum(t.allocations.count for t in threads),
            counted_bytes=sum(t.allocations.bytes for t in threads),
            in_profiled_functions_bytes=in_functions,
        ),
    }


FUNCTIONS_ALLOC = schema.one_of(
    schema.not_recorded("functions"),
    schema.listing(
        "functions",
        ALLOC_ROW,
        "total_functions",
        recorded={"const": True},
        counted_allocations=INT,
        counted_bytes=INT,
        in_profiled_functions_bytes=INT,
    ),
)


def function_alloc_logs(store: Store, function_name: str, limit: int = DEFAULT_LIMIT) -> JSON:
    if not store.info.collectors.get("alloc"):
        return not_recorded("logs", _alloc_note(store))
    chosen, calls = _chosen_function(store, function_name, limit)
    rows = []
    for record in newest(calls, limit):
        row = _log_row(record, store)
        counted = record.allocations
        row.update(
            allocations=counted.count if counted is not None else None,
            allocated_bytes=counted.bytes if counted is not None else None,
            allocated=units.size(counted.bytes) if counted is not None else None,
        )
        rows.append(row)
    return logs("function", named(chosen), rows)


FUNCTION_ALLOC_LOGS = schema.one_of(
    schema.not_recorded("logs"),
    schema.logs(
        "function",
        schema.ENTRY,
        obj(**LOG_ROW, allocations=maybe(INT), allocated_bytes=maybe(INT), allocated=maybe(STR)),
    ),
)

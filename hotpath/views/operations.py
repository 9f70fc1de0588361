"""SQL statements, outbound HTTP endpoints and served routes (``sql``, ``http``, ``routes``
and their logs): one shape of row, with what each kind adds."""

from __future__ import annotations

from collections.abc import Callable

from hotpath.store import Store
from hotpath.store.operations import Call, Figures, OperationReading, OperationTable
from hotpath.views import schema, units
from hotpath.views.common import DEFAULT_LIMIT, JSON, listing, site_logs, spread, with_children
from hotpath.views.schema import INT, NUM, STR, maybe, obj

CALLERS_SHOWN = 5  # an entry's callers listed, by time
INSIDE_SHOWN = 10  # a route's operations listed, by time

Extra = Callable[[OperationReading], JSON]


def _by_time[K](figures: dict[K, Figures], shown: int) -> list[tuple[K, Figures]]:
    return sorted(figures.items(), key=lambda item: item[1].time_ns, reverse=True)[:shown]


def _row(entry: OperationReading, store: Store, extra: Extra, now: int) -> JSON:
    seconds = (now - entry.first_ns) / 1e9  # since its first call (in a window: the mark)
    return {
        "id": entry.id,
        "name": entry.name,
        "location": entry.location,
        "kind": entry.kind,
        "calls": entry.calls,
        "calls_per_s": round(entry.calls / seconds, 2) if seconds > 0 else 0.0,
        "errors": entry.errors,
        "error_percent": round(100 * entry.errors / entry.calls, 1) if entry.calls else 0.0,
        "time_total_ns": entry.time.total,
        "time_total": units.duration(entry.time.total),
        "time": spread(entry.time, store),
        "outcomes": dict(entry.outcomes.most_common()),
        **extra(entry),
        "callers": [
            {"function": function, "line": line, "calls": f.calls, "time_ns": f.time_ns}
            for (function, line), f in _by_time(entry.callers, CALLERS_SHOWN)
        ],
    }


def _sql_extra(entry: OperationReading) -> JSON:
    return {"rows": entry.rows if entry.rows_known else None}


def _http_extra(entry: OperationReading) -> JSON:
    return {"bytes_sent": entry.sent, "bytes_received": entry.received}


def _route_extra(entry: OperationReading) -> JSON:
    inside = _by_time(entry.inside, INSIDE_SHOWN)
    inside_ns = sum(f.time_ns for f in entry.inside.values())
    return {
        "inside_time_ns": inside_ns,
        "inside_time": units.duration(inside_ns),
        "inside": [
            {
                "kind": kind,
                "name": name,
                "calls": f.calls,
                "time_ns": f.time_ns,
                "per_request": round(f.calls / entry.calls, 2) if entry.calls else 0.0,
            }
            for (kind, name), f in inside
        ],
    }


def _listing(
    store: Store, tool: str, key: str, table: OperationTable, extra: Extra, limit: int
) -> JSON:
    now = store.now_ns()
    rows = [_row(entry, store, extra, now) for entry in table.read()]
    rows = with_children(store, tool, key, rows)
    rows.sort(key=lambda row: row["time_total_ns"], reverse=True)
    total = f"total_{key}"
    return listing(key, rows[:limit], len(rows), "time_total_ns", total)


def sql(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    return _listing(store, "sql", "statements", store.sql, _sql_extra, limit)


def http(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    return _listing(store, "http", "endpoints", store.http, _http_extra, limit)


def routes(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    return _listing(store, "routes", "routes", store.routes, _route_extra, limit)


def _call(call: Call) -> JSON:
    function, line = call.caller if call.caller is not None else (None, None)
    return {
        "duration_ns": call.duration_ns,
        "outcome": call.outcome,
        "status": call.status,
        "rows": call.rows,
        "caller": function,
        "line": line,
    }


def _logs(store: Store, kind: str, table: OperationTable, wanted: str, limit: int) -> JSON:
    return site_logs(store, kind, table.read(), wanted, table.calls, limit, _call)


def sql_logs(store: Store, sql_name: str, limit: int = DEFAULT_LIMIT) -> JSON:
    return _logs(store, "statement", store.sql, sql_name, limit)


def http_logs(store: Store, http_name: str, limit: int = DEFAULT_LIMIT) -> JSON:
    return _logs(store, "endpoint", store.http, http_name, limit)


def route_logs(store: Store, route_name: str, limit: int = DEFAULT_LIMIT) -> JSON:
    return _logs(store, "route", store.routes, route_name, limit)


FIGURES = obj(calls=INT, time_ns=INT)


def _row_schema(**extra: schema.Schema) -> schema.Schema:
    return schema.per_process(
        obj(
            id=INT,
            name=STR,
            location=STR,
            kind=STR,
            calls=INT,
            calls_per_s=NUM,
            errors=INT,
            error_percent=NUM,
            time_total_ns=INT,
            time_total=STR,
            time=schema.SPREAD,
            outcomes=schema.mapping(INT),
            **extra,
            callers=schema.array(obj(function=STR, line=STR, **FIGURES["properties"])),
        )
    )


def _listing_schema(key: str, row: schema.Schema) -> schema.Schema:
    return schema.listing(key, row, f"total_{key}")


SQL = _listing_schema("statements", _row_schema(rows=maybe(INT)))
HTTP = _listing_schema("endpoints", _row_schema(bytes_sent=INT, bytes_received=INT))
INSIDE = obj(kind=STR, name=STR, calls=INT, time_ns=INT, per_request=NUM)
ROUTES = _listing_schema(
    "routes", _row_schema(inside_time_ns=INT, inside_time=STR, inside=schema.array(INSIDE))
)
CALL = obj(
    timestamp=STR,
    duration_ns=INT,
    outcome=STR,
    status=maybe(INT),
    rows=maybe(INT),
    caller=maybe(STR),
    line=maybe(STR),
)
SQL_LOGS = schema.logs("statement", schema.ENTRY, CALL)
HTTP_LOGS = schema.logs("endpoint", schema.ENTRY, CALL)
ROUTE_LOGS = schema.logs("route", schema.ENTRY, CALL)

"""Gauges: named values, built-in and the program's own (``gauges``, ``gauge_logs``)."""

from __future__ import annotations

from hotpath.store import Store
from hotpath.store.gauges import GaugeReading
from hotpath.views import schema, units
from hotpath.views.common import DEFAULT_LIMIT, JSON, logs, newest, with_children
from hotpath.views.lookup import find
from hotpath.views.schema import BOOL, INT, NUM, STR, maybe, obj


def _gauge_row(reading: GaugeReading, store: Store) -> JSON:
    last = reading.history[-1].at_ns if reading.history else None
    return {
        "id": reading.id,
        "name": reading.name,
        "builtin": reading.builtin,
        "value": reading.value,
        "min": reading.min,
        "max": reading.max,
        "updates": reading.updates,
        "location": reading.location,
        "updated_at": units.timestamp(store.epoch_ns(last)) if last is not None else None,
    }


GAUGE_ROW = obj(
    id=INT,
    name=STR,
    builtin=BOOL,
    value=NUM,
    min=maybe(NUM),
    max=maybe(NUM),
    updates=INT,
    location=STR,
    updated_at=maybe(STR),
)


def gauges(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    rows = [_gauge_row(r, store) for r in store.gauges.read()]
    rows = with_children(store, "gauges", "gauges", rows)
    # The program's own gauges first: hotpath's built-in ones are context.
    rows.sort(key=lambda r: (r["builtin"], r["name"]))
    return {
        "sorted_by": "program gauges first, then by name",
        "total_gauges": len(rows),
        "dropped_gauges": store.gauges.dropped,
        "gauges": rows[:limit],
    }


GAUGES = obj(
    sorted_by=STR,
    total_gauges=INT,
    dropped_gauges=INT,
    gauges=schema.array(schema.per_process(GAUGE_ROW)),
)


def gauge_logs(store: Store, gauge_name: str, limit: int = DEFAULT_LIMIT) -> JSON:
    reading = find(store.gauges.read(), gauge_name, "gauge")
    rows = [
        {
            "timestamp": units.timestamp(store.epoch_ns(update.at_ns)),
            "value": update.value,
            "thread_name": update.thread_name,
            "thread_id": update.thread_id,
        }
        for update in newest(reading.history, limit)
    ]
    return logs("gauge", _gauge_row(reading, store), rows)


GAUGE_LOGS = schema.logs(
    "gauge", GAUGE_ROW, obj(timestamp=STR, value=NUM, thread_name=STR, thread_id=INT)
)

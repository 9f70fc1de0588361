"""What hotpath is watching (``profiler_status``)."""

from __future__ import annotations

from hotpath import DISTRIBUTION, __version__
from hotpath.store import Store
from hotpath.views import schema, units
from hotpath.views.common import JSON
from hotpath.views.schema import BOOL, INT, STR, maybe, obj


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
            "functions": len(store.functions.infos()),
            "dropped_functions": store.functions.dropped,
            "events_given_up": store.functions.events_given_up(),
            "threads": store.threads.read().process.threads,
            "gauges": len(store.gauges.all()),
        },
        "problems": list(store.problems),
    }


PROFILER_STATUS = obj(
    hotpath=obj(version=STR, distribution=STR),
    pid=INT,
    argv=schema.array(STR),
    python=STR,
    recorder={"enum": ["c", "python"]},
    uptime_ns=INT,
    uptime=STR,
    running=BOOL,
    filters=obj(
        include=schema.array(STR),
        exclude=schema.array(STR),
        default_roots=schema.array(STR),
        default_roots_chosen=maybe(STR),
    ),
    collectors=schema.mapping(BOOL),
    tracing_memory_sites=BOOL,
    percentiles=schema.array(STR),
    known=obj(functions=INT, dropped_functions=INT, events_given_up=INT, threads=INT, gauges=INT),
    problems=schema.array(STR),
)

"""Threads and the process, as the OS sampler sees them (``threads``)."""

from __future__ import annotations

from hotpath.store import Store
from hotpath.store.functions import Allocations
from hotpath.store.threads import ThreadFigures
from hotpath.views import schema, units
from hotpath.views.common import DEFAULT_LIMIT, JSON, with_children
from hotpath.views.schema import BOOL, INT, NUM, STR, maybe, obj


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


THREAD_ROW = obj(
    os_thread_id=INT,
    name=STR,
    hotpath_own=BOOL,
    status=STR,
    cpu_user_s=NUM,
    cpu_system_s=NUM,
    cpu_total_s=NUM,
    cpu_percent=NUM,
    cpu_percent_max=NUM,
    cpu_percent_avg=NUM,
    allocations=maybe(INT),
    allocated_bytes=maybe(INT),
)


def threads(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    reading = store.threads.read()
    process = reading.process
    counted = store.functions.thread_allocations()  # with --alloc: live, and recently ended
    live = {t.native_id: t.allocations for t in counted if t.alive}
    final = {t.native_id: t.allocations for t in counted if not t.alive}
    alive = [_thread_row(f, live.get(f.native_id)) for f in reading.alive]
    alive = with_children(store, "threads", "threads", alive)
    alive.sort(key=lambda r: (r["cpu_percent"], r["cpu_total_s"]), reverse=True)
    ended = [_thread_row(f, final.get(f.native_id, live.get(f.native_id))) for f in reading.ended]
    ended = with_children(store, "threads", "ended_threads", ended)
    ended.sort(key=lambda r: r["cpu_total_s"], reverse=True)
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
        "threads": alive[:limit],
        "ended_threads": ended[:limit],
    }


THREADS = obj(
    sorted_by=STR,
    sample_interval_ms=INT,
    samples=INT,
    process=obj(
        rss_bytes=INT,
        rss=STR,
        rss_max_bytes=INT,
        rss_max=STR,
        cpu_percent=NUM,
        cpu_user_s=NUM,
        cpu_system_s=NUM,
        threads=INT,
        open_fds=INT,
    ),
    total_threads=INT,
    threads=schema.array(schema.per_process(THREAD_ROW)),
    ended_threads=schema.array(schema.per_process(THREAD_ROW)),
)

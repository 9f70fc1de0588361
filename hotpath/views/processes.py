"""The program's processes: itself and the children hotpath follows (``processes``)."""

from __future__ import annotations

from hotpath.store import Store
from hotpath.store.threads import ProcessFigures
from hotpath.views import schema, units
from hotpath.views.common import DEFAULT_LIMIT, JSON, listing
from hotpath.views.schema import INT, NUM, STR, maybe, obj


def _figures(process: ProcessFigures) -> JSON:
    """CPU and memory, as the process's sampler last saw them (null before its first look)."""
    seen = process.samples > 0
    return {
        "cpu_s": round(process.user_s + process.system_s, 3) if seen else None,
        "rss_bytes": process.rss_bytes if seen else None,
        "rss_max_bytes": process.rss_max_bytes if seen else None,
        "rss": units.size(process.rss_bytes) if seen else None,
    }


def processes(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    parent_calls = sum(s.calls for s in store.functions.snapshot(store.now_ns()))
    rows: list[JSON] = []
    if store.info.pid not in {child.pid for child in store.processes.children()}:
        rows.append(
            {
                "pid": store.info.pid,
                "parent_pid": None,
                "argv": store.info.argv,
                "how": "the program",
                "state": "running" if store.ended_ns is None else "exited",
                "exit": None,
                "batches": None,
                "calls": parent_calls,
                **_figures(store.threads.read().process),
            }
        )
    for child in store.processes.children():
        rows.append(
            {
                "pid": child.pid,
                "parent_pid": child.parent_pid,
                "argv": child.argv,
                "how": child.how,
                "state": "running" if child.exit is None else "ended",
                "exit": child.exit,
                "batches": child.batches,
                "calls": sum(
                    int(w["completed"]) + int(w["running"]) for w in child.functions.values()
                ),
                **_figures(child.process),
            }
        )
    return listing(
        "processes",
        rows[:limit],
        len(rows),
        "the program, then its children as they started",
        "total_processes",
        folded_processes=store.processes.folded_processes,
    )


PROCESS_ROW = obj(
    pid=INT,
    parent_pid=maybe(INT),
    argv=schema.array(STR),
    how=STR,
    state={"enum": ["running", "exited", "ended"]},
    exit=maybe(STR),
    batches=maybe(INT),
    calls=INT,
    cpu_s=maybe(NUM),
    rss_bytes=maybe(INT),
    rss_max_bytes=maybe(INT),
    rss=maybe(STR),
)
PROCESSES = schema.listing("processes", PROCESS_ROW, "total_processes", folded_processes=INT)

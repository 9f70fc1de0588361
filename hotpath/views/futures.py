"""Futures: asyncio tasks grouped by coroutine function (``futures``, ``future_logs``)."""

from __future__ import annotations

from collections import Counter

from hotpath.store import Store
from hotpath.store.futures import FutureReading
from hotpath.views import schema, units
from hotpath.views.common import DEFAULT_LIMIT, JSON, listing, logs, named, spread, with_children
from hotpath.views.lookup import find
from hotpath.views.schema import INT, NUM, STR, maybe, obj

UNFINISHED = ("pending", "running", "suspended")
STATES = (*UNFINISHED, "done", "cancelled", "failed", "dropped_unfinished")


def _future_row(group: FutureReading, store: Store) -> JSON:
    states = Counter(task.state for task in group.live)
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
        "polls": group.polls + sum(task.polls for task in group.live),
        "avg_polls": round(group.polls / finished, 2) if finished else None,
        "active_time": spread(group.active, store),
        "wall_time": spread(group.wall, store),
        "outcomes": dict(group.outcomes.most_common()),
    }


FUTURE_ROW = obj(
    id=INT,
    name=STR,
    location=STR,
    calls=INT,
    states=obj(**dict.fromkeys(STATES, INT)),
    polls=INT,
    avg_polls=maybe(NUM),
    active_time=schema.SPREAD,
    wall_time=schema.SPREAD,
    outcomes=schema.mapping(INT),
)


def futures(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    rows = [_future_row(group, store) for group in store.futures.read()]
    rows = with_children(store, "futures", "futures", rows)
    rows.sort(key=lambda r: (sum(r["states"][s] for s in UNFINISHED), r["calls"]), reverse=True)
    return listing(
        "futures", rows[:limit], len(rows), "unfinished tasks, then calls", "total_groups"
    )


FUTURES = schema.listing("futures", schema.per_process(FUTURE_ROW), "total_groups")


def future_logs(store: Store, future_name: str, limit: int = DEFAULT_LIMIT) -> JSON:
    group = find(store.futures.read(), future_name, "future")
    now = store.now_ns()
    tasks = sorted(store.futures.tasks(group.id), key=lambda t: t.created_ns, reverse=True)
    rows = [
        {
            "task_id": task.id,
            "task_name": task.name,
            "state": task.state,
            "polls": task.polls,
            "active_ns": task.active_ns,
            "wall_ns": (task.done_ns or now) - task.created_ns,
            "outcome": task.outcome,
            "created_at": task.created_at,
            "created": units.timestamp(store.epoch_ns(task.created_ns)),
            "finished": units.timestamp(store.epoch_ns(task.done_ns)) if task.done_ns else None,
        }
        for task in tasks[:limit]
    ]
    return logs("future", named(group), rows)


FUTURE_LOGS = schema.logs(
    "future",
    schema.ENTRY,
    obj(
        task_id=INT,
        task_name=STR,
        state={"enum": list(STATES[:6])},
        polls=INT,
        active_ns=INT,
        wall_ns=INT,
        outcome=maybe(STR),
        created_at=STR,
        created=STR,
        finished=maybe(STR),
    ),
)

"""Locks: contention and holds (``locks``, ``lock_logs``)."""

from __future__ import annotations

from hotpath.store import Store
from hotpath.store.locks import Holder, LockReading
from hotpath.views import schema, units
from hotpath.views.common import (
    DEFAULT_LIMIT,
    JSON,
    listing,
    site_logs,
    spread,
    with_children,
)
from hotpath.views.schema import INT, NUM, STR, maybe, obj

HOLDERS_SHOWN = 20  # a semaphore's holders listed in a row (holders_now counts them all)


def _holder(by: Holder) -> str:
    """A thread's or a task's name; a thread threading does not know, by its ident."""
    return by if isinstance(by, str) else f"thread {by}"


def _function(function: tuple[str, str] | None) -> str:
    if function is None:
        return "?"
    name, location = function
    return f"{name} ({location})"


def _state(lock: LockReading) -> str:
    if lock.waiting:
        return "contended"
    if lock.holders:
        return "held"
    return "free" if lock.live else "gone"


def _lock_row(lock: LockReading, store: Store, now: int) -> JSON:
    longest = max((now - since for _, since in lock.holders), default=None)
    return {
        "id": lock.id,
        "name": lock.name,
        "location": lock.location,
        "kind": lock.kind,
        "instances": {"created": lock.created, "live": lock.live},
        "acquisitions": lock.acquisitions,
        "contended": lock.contended,
        "contended_percent": round(100 * lock.contended / lock.acquisitions, 1)
        if lock.acquisitions
        else 0.0,
        "failed_nonblocking": lock.failed,
        "timeouts": lock.timeouts,
        "wait_total_ns": lock.wait_ns,
        "wait_total": units.duration(lock.wait_ns),
        "wait": spread(lock.wait, store),
        "hold_total_ns": lock.hold.total,
        "hold": spread(lock.hold, store),
        "cond_waits": {**spread(lock.waits, store), "timeouts": lock.wait_timeouts},
        "holders": [
            {"by": _holder(by), "held_ns": now - since}
            for by, since in lock.holders[:HOLDERS_SHOWN]
        ],
        "holders_now": len(lock.holders),
        "waiting_now": lock.waiting,
        "waiting_on_now": lock.waiting_on,
        "longest_hold_now_ns": longest,
        "state": _state(lock),
    }


COND_WAITS = obj(**schema.SPREAD["properties"], timeouts=INT)
LOCK_ROW = obj(
    id=INT,
    name=STR,
    location=STR,
    kind=STR,
    instances=obj(created=INT, live=INT),
    acquisitions=INT,
    contended=INT,
    contended_percent=NUM,
    failed_nonblocking=INT,
    timeouts=INT,
    wait_total_ns=INT,
    wait_total=STR,
    wait=schema.SPREAD,
    hold_total_ns=INT,
    hold=schema.SPREAD,
    cond_waits=COND_WAITS,
    holders=schema.array(obj(by=STR, held_ns=INT)),
    holders_now=INT,
    waiting_now=INT,
    waiting_on_now=INT,
    longest_hold_now_ns=maybe(INT),
    state={"enum": ["contended", "held", "free", "gone"]},
)


def locks(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    now = store.now_ns()
    rows = [_lock_row(lock, store, now) for lock in store.locks.read()]
    rows = with_children(store, "locks", "locks", rows)
    rows.sort(key=lambda r: (r["wait_total_ns"], r["hold_total_ns"]), reverse=True)
    return listing(
        "locks", rows[:limit], len(rows), "wait_total_ns", "total_locks",
        dropped_locks=store.locks.dropped,
    )  # fmt: skip


LOCKS = schema.listing("locks", schema.per_process(LOCK_ROW), "total_locks", dropped_locks=INT)


def lock_logs(store: Store, lock_name: str, limit: int = DEFAULT_LIMIT) -> JSON:
    table = store.locks
    return site_logs(
        store, "lock", table.read(), lock_name, table.events, limit,
        lambda event: {
            "by": _holder(event.by), "wait_ns": event.wait_ns, "hold_ns": event.hold_ns,
            "function": _function(event.function),
        },
    )  # fmt: skip


LOCK_LOGS = schema.logs(
    "lock", schema.ENTRY, obj(timestamp=STR, by=STR, wait_ns=INT, hold_ns=INT, function=STR)
)

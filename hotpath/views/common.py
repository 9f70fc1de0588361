"""What every view module shares: the answer type, argument checks, and the shapes that
repeat from domain to domain (a listing, a log, a spread of values, a rate).

Raw numbers carry their unit in their name (``total_ns``, ``alloc_bytes``); short human strings
sit beside them where that helps a reader. Field meanings are documented in the README.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from hotpath.store import Store
from hotpath.store.channels import RECENT_KEPT, RECENT_WINDOW_NS
from hotpath.store.histogram import DistributionReading, percentiles
from hotpath.views import units
from hotpath.views.lookup import find

JSON = dict[str, Any]
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 10


class BadArgument(ValueError):
    """An argument a tool cannot use; the message says what would work."""


class Entry(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def location(self) -> str: ...


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise BadArgument(f"limit must be a whole number, got {limit!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadArgument(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def listing(
    key: str, shown: list[JSON], total: int, sorted_by: str, total_key: str, **extra: Any
) -> JSON:
    """A summary answer: how it is sorted, how many there are and how many are shown, then
    the rows shown under ``key``. ``extra`` fields go between the counts and the rows."""
    return {"sorted_by": sorted_by, total_key: total, "shown": len(shown), **extra, key: shown}


def with_children(store: Store, tool: str, key: str, rows: list[JSON]) -> list[JSON]:
    """This process's rows, then the followed children's (their rows of the same answer, as
    their last batch had them): every row marked with its process once a child has some."""
    theirs = store.processes.rows(tool, key)
    if not theirs:
        return rows
    return [*({**row, "pid": store.info.pid} for row in rows), *theirs]


def newest[T](entries: list[T], limit: int) -> list[T]:
    """The last ``limit`` of entries kept oldest first, newest first: how every log reads."""
    return entries[::-1][:limit]


def logs(kind: str, entry: JSON, rows: list[JSON], **extra: Any) -> JSON:
    """A log answer: what the log is of, then its rows, newest first."""
    return {kind: entry, "order": "newest_first", **extra, "logs": rows}


def named(entry: Entry) -> JSON:
    """How a log answer names the entry it is of."""
    return {"id": entry.id, "name": entry.name, "location": entry.location}


class Event(Protocol):
    @property
    def at_ns(self) -> int: ...


def site_logs[E: Event](
    store: Store,
    kind: str,
    entries: Sequence[Entry],
    wanted: str,
    events: Callable[[int], list[E]],
    limit: int,
    row: Callable[[E], JSON],
) -> JSON:
    """The log of the entry ``wanted`` names (channels, streams, locks): its newest events,
    each a timestamp then ``row(event)``."""
    entry = find(entries, wanted, kind)
    rows = [
        {"timestamp": units.timestamp(store.epoch_ns(event.at_ns)), **row(event)}
        for event in newest(events(entry.id), limit)
    ]
    return logs(kind, named(entry), rows)


def not_recorded(key: str, note: str) -> JSON:
    """The answer of a section whose collector is off."""
    return {key: [], "recorded": False, "note": note}


def spread(values: DistributionReading, store: Store) -> JSON:
    """Count, average, max and percentiles of a distribution, in ns."""
    return {
        "count": values.count,
        "avg_ns": round(values.total / values.count) if values.count else None,
        "max_ns": values.max if values.count else None,
        "percentiles_ns": {
            units.percentile_key(q): round(v)
            for q, v in percentiles(values.buckets, store.info.percentiles).items()
        }
        if values.count
        else {},
    }


def rate(stamps: list[int], count: int, since_ns: int | None, now: int) -> tuple[float, float]:
    """(recent, lifetime) events per second. Recent covers the last 10 s (or the run, if
    shorter), or only the events kept when more than that happened in it."""
    if since_ns is None or now <= since_ns:
        return 0.0, 0.0
    window = [t for t in stamps if t >= now - RECENT_WINDOW_NS]
    if len(window) >= RECENT_KEPT:
        recent = len(window) / (max(now - window[0], 1) / 1e9)
    else:
        recent = len(window) / (min(RECENT_WINDOW_NS, now - since_ns) / 1e9)
    return round(recent, 2), round(count / ((now - since_ns) / 1e9), 2)

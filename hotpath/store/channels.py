"""Channels: queues between tasks or threads, one entry per creation site.

The channel collector writes each site's counts; what only the live queues know (how many are
still open, how full they are) it tells through the probe it attaches (``attach``), asked once
per ``read``. Views see ``ChannelReading``s, copies that share nothing with the table.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from hotpath import stdlib
from hotpath.store.capped import CappedTable, copies
from hotpath.store.histogram import Distribution, DistributionReading

RECENT_WINDOW_NS = 10 * 10**9  # "recent" rates cover the last 10 seconds
RECENT_KEPT = 4096  # timestamps kept for recent rates


# One per event: not frozen, which costs 650 ns to create against 150 (measured).
@dataclass(slots=True)
class ChannelEvent:
    at_ns: int
    op: str  # "send" or "receive"
    message: str  # a short, safe description of the item
    by: str  # the task, or else the thread
    delay_ns: int | None  # receives: time since the matching send


class ChannelSite:
    """All queues created at one line of the program."""

    def __init__(self, site_id: int, name: str, location: str, kind: str, log_limit: int):
        self.id = site_id
        self.name = name
        self.location = location
        self.kind = kind
        self.lock = stdlib.new_rlock()  # reentrant: see hotpath/store/__init__.py
        self.capacities: set[int] = set()
        self.created = 0
        self.closed = 0  # shut down, or collected
        self.sent = 0
        self.received = 0
        self.max_size = 0
        self.first_ns = stdlib.perf_counter_ns()
        self.recent_sends: deque[int] = deque(maxlen=RECENT_KEPT)
        self.recent_receives: deque[int] = deque(maxlen=RECENT_KEPT)
        self.delay = Distribution()  # send to receive
        self.log: deque[ChannelEvent] = deque(maxlen=log_limit)


class LiveQueues(NamedTuple):
    """What a site's queues that are still alive say now."""

    instances: int  # alive (not collected), shut down or not
    shut: int  # shut down (Queue.shutdown, 3.13)
    size: int  # items in them
    full: int  # bounded ones at their capacity


NO_QUEUES = LiveQueues(0, 0, 0, 0)


class ChannelReading(NamedTuple):
    id: int
    name: str
    location: str
    kind: str
    capacities: list[int]  # sorted; 0 is unbounded
    created: int
    closed: int  # collected, or shut down
    live: int
    sent: int
    received: int
    queue_size: int
    max_size: int
    full_now: int
    delay: DistributionReading
    first_ns: int
    recent_sends: list[int]
    recent_receives: list[int]


class ChannelTable(CappedTable[tuple[str, int], ChannelSite]):
    """Channels by creation site (file, line)."""

    def __init__(self, log_limit: int, max_sites: int = 1_000) -> None:
        super().__init__(max_sites)
        self.log_limit = log_limit
        self._probe: Callable[[ChannelSite], LiveQueues] = lambda site: NO_QUEUES

    def attach(self, probe: Callable[[ChannelSite], LiveQueues]) -> None:
        """The collector's reading of a site's live queues."""
        self._probe = probe

    def site(self, file: str, line: int, name: str, location: str, kind: str) -> ChannelSite | None:
        return self.get(
            (file, line), lambda i: ChannelSite(i, name, location, kind, self.log_limit)
        )

    def read(self) -> list[ChannelReading]:
        sites = self.all()
        # Asked before any site's lock is taken: qsize() takes the queue's own lock, which
        # is held while a put records into the site (the other order would deadlock).
        live = {site.id: self._probe(site) for site in sites}
        return copies(sites, lambda site: _reading(site, live[site.id]))

    def events(self, site_id: int) -> list[ChannelEvent]:
        """A site's logged events, oldest first."""
        site = self.by_id(site_id)
        with site.lock:
            return list(site.log)


def _reading(site: ChannelSite, queues: LiveQueues) -> ChannelReading:
    return ChannelReading(
        id=site.id,
        name=site.name,
        location=site.location,
        kind=site.kind,
        capacities=sorted(site.capacities),
        created=site.created,
        closed=site.closed + queues.shut,
        live=queues.instances - queues.shut,
        sent=site.sent,
        received=site.received,
        queue_size=queues.size,
        max_size=site.max_size,
        full_now=queues.full,
        delay=site.delay.read(),
        first_ns=site.first_ns,
        recent_sends=list(site.recent_sends),
        recent_receives=list(site.recent_receives),
    )

"""Channels: queues between tasks or threads, one entry per creation site."""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from hotpath.store.histogram import add_buckets

RECENT_WINDOW_NS = 10 * 10**9  # "recent" rates cover the last 10 seconds
RECENT_KEPT = 4096  # timestamps kept for recent rates


@dataclass(slots=True, frozen=True)
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
        self.lock = threading.Lock()
        self.capacities: set[int] = set()
        self.created = 0
        self.closed = 0  # shut down, or collected
        self.sent = 0
        self.received = 0
        self.max_size = 0
        self.first_ns = time.perf_counter_ns()
        self.recent_sends: deque[int] = deque(maxlen=RECENT_KEPT)
        self.recent_receives: deque[int] = deque(maxlen=RECENT_KEPT)
        self.delays: list[int] = []  # folded into ``delay_buckets`` in batches
        self.delay_buckets: Counter[int] = Counter()
        self.delay_count = 0
        self.delay_total_ns = 0
        self.log: deque[ChannelEvent] = deque(maxlen=log_limit)
        self.instances: weakref.WeakSet[Any] = weakref.WeakSet()  # live queues, not kept alive

    def fold_delays(self) -> None:
        """Move pending delays into the histogram; the caller holds ``lock``."""
        if self.delays:
            add_buckets(self.delay_buckets, self.delays)
            self.delay_count += len(self.delays)
            self.delay_total_ns += sum(self.delays)
            self.delays = []


@dataclass(slots=True)
class ChannelTable:
    log_limit: int
    max_sites: int = 1_000
    dropped: int = 0
    _sites: dict[tuple[str, int], ChannelSite] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def site(self, file: str, line: int, name: str, location: str, kind: str) -> ChannelSite | None:
        key = (file, line)
        with self._lock:
            found = self._sites.get(key)
            if found is None:
                if len(self._sites) >= self.max_sites:
                    self.dropped += 1
                    return None
                found = ChannelSite(len(self._sites) + 1, name, location, kind, self.log_limit)
                self._sites[key] = found
            return found

    def all(self) -> list[ChannelSite]:
        with self._lock:
            return list(self._sites.values())

"""Streams: async generators, grouped by generator function."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

from hotpath.store.channels import RECENT_KEPT
from hotpath.store.histogram import add_buckets


@dataclass(slots=True, frozen=True)
class StreamItem:
    at_ns: int
    instance: int  # which generator object, numbered from 1 per function
    message: str
    gap_ns: int | None  # time since this instance's previous item


@dataclass(slots=True, eq=False)
class Stream:
    id: int
    name: str  # module.qualname of the async generator function
    location: str
    log_limit: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    instances: int = 0
    exhausted: int = 0  # ran to the end
    closed_early: int = 0  # aclose() or GeneratorExit before the end
    failed: int = 0
    end_reasons: Counter[str] = field(default_factory=Counter)
    items: int = 0
    first_item_ns: int | None = None
    recent_items: deque[int] = field(default_factory=lambda: deque(maxlen=RECENT_KEPT))
    gaps: list[int] = field(default_factory=list)  # folded into gap_buckets in batches
    gap_buckets: Counter[int] = field(default_factory=Counter)
    gap_count: int = 0
    gap_total_ns: int = 0
    log: deque[StreamItem] = field(init=False)

    def __post_init__(self) -> None:
        self.log = deque(maxlen=self.log_limit)

    def fold_gaps(self) -> None:
        """Caller holds ``lock``."""
        if self.gaps:
            add_buckets(self.gap_buckets, self.gaps)
            self.gap_count += len(self.gaps)
            self.gap_total_ns += sum(self.gaps)
            self.gaps = []


class StreamInstance:
    """One generator object's place in its stream, kept on the timing activation."""

    __slots__ = ("last_item_ns", "number", "stream")

    def __init__(self, stream: Stream, number: int) -> None:
        self.stream = stream
        self.number = number
        self.last_item_ns: int | None = None


@dataclass(slots=True)
class StreamTable:
    log_limit: int
    _streams: dict[int, Stream] = field(default_factory=dict)  # by function id
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stream(self, function_id: int, name: str, location: str) -> Stream:
        with self._lock:
            found = self._streams.get(function_id)
            if found is None:
                found = Stream(len(self._streams) + 1, name, location, self.log_limit)
                self._streams[function_id] = found
            return found

    def all(self) -> list[Stream]:
        with self._lock:
            return list(self._streams.values())

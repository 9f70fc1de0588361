"""Memory figures that belong to no function: unattributed windows and live-memory snapshots."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from hotpath import stdlib


@dataclass(slots=True, frozen=True)
class SiteSnapshot:
    """Live traced memory by allocation site (``file:line``) at one moment."""

    at_ns: int  # perf_counter_ns
    traced_bytes: int  # all traced memory then, hotpath's own left out
    sites: dict[tuple[str, int], tuple[int, int]]  # (file, line) -> (bytes, blocks), top sites


class MemoryTable:
    def __init__(self, snapshots_kept: int) -> None:
        self._lock = stdlib.new_lock()
        self.unattributed_allocated = 0
        self.unattributed_freed = 0
        self._snapshots: deque[SiteSnapshot] = deque(maxlen=snapshots_kept)

    def add_unattributed(self, delta: int) -> None:
        # Called on the event path: plain int updates; a torn read costs one window at most.
        if delta >= 0:
            self.unattributed_allocated += delta
        else:
            self.unattributed_freed -= delta

    def add_snapshot(self, snapshot: SiteSnapshot) -> None:
        with self._lock:
            self._snapshots.append(snapshot)

    def snapshots(self) -> list[SiteSnapshot]:
        with self._lock:
            return list(self._snapshots)

"""Live memory by allocation site: snapshots taken by the site tracer (collectors/memory.py).

Tracing is started and stopped on request (the ``trace_memory`` tool, or ``--alloc-sites`` at
start), so this table is how a view asks for it: the tracer attaches itself (``attach``), as
the recorder does to the function table. What it keeps is bounded: the snapshot taken when
tracing started (the baseline growth is measured from) and the last ``snapshots_kept``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from hotpath import stdlib

Site = tuple[str, int]  # file, line


@dataclass(slots=True, frozen=True)
class SiteSnapshot:
    """Live traced memory by allocation site (``file:line``) at one moment."""

    at_ns: int  # perf_counter_ns
    traced_bytes: int  # all traced memory then, hotpath's own left out
    sites: dict[Site, tuple[int, int]]  # site -> (bytes, blocks), the largest sites only
    took_ns: int  # how long taking it paused the program


class SiteSource(Protocol):
    def tracing(self) -> bool: ...

    def start(self) -> bool: ...

    def stop(self) -> bool: ...

    def take(self) -> SiteSnapshot | None: ...


class MemoryTable:
    def __init__(self, snapshots_kept: int) -> None:
        self._lock = stdlib.new_rlock()
        self._source: SiteSource | None = None
        self._baseline: SiteSnapshot | None = None
        self._snapshots: deque[SiteSnapshot] = deque(maxlen=snapshots_kept)

    def attach(self, source: SiteSource) -> None:
        self._source = source

    def tracing(self) -> bool:
        return self._source is not None and self._source.tracing()

    def start_tracing(self) -> bool:
        """Start tracing (if it is not on); True when this call started it. Its first
        snapshot becomes the baseline."""
        if self._source is None or not self._source.start():
            return False
        with self._lock:
            self._baseline = None
            self._snapshots.clear()
        self.take_snapshot()
        return True

    def stop_tracing(self) -> bool:
        """Stop tracing, if hotpath started it; the snapshots stay."""
        return self._source is not None and self._source.stop()

    def take_snapshot(self) -> SiteSnapshot | None:
        """A snapshot now, kept; None when tracing is off."""
        snapshot = self._source.take() if self._source is not None else None
        if snapshot is not None:
            with self._lock:
                if self._baseline is None:
                    self._baseline = snapshot
                self._snapshots.append(snapshot)
        return snapshot

    def snapshots(self) -> tuple[SiteSnapshot | None, list[SiteSnapshot]]:
        """The baseline and the kept snapshots, oldest first."""
        with self._lock:
            return self._baseline, list(self._snapshots)

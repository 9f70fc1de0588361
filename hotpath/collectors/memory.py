"""Live memory by allocation site, with tracemalloc (the ``trace_memory`` tool, ``--alloc-sites``).

Allocation counts come from the compiled recorder's allocator hooks and need no tracemalloc.
tracemalloc answers the other question, what is alive now and where it was allocated (leaks),
at a cost: 3-7x on this machine for ``tracemalloc.start(1)``. So it runs only when asked.

A snapshot groups tracemalloc's raw traces by their newest frame in C (``group_traces``: 0.03 s
for a million traces, where ``Snapshot.statistics`` takes 1.3 s and ``filter_traces`` longer),
then drops hotpath's own sites from the few thousand groups, never trace by trace. Copying the
traces out of tracemalloc holds the GIL: the program pauses about 0.3-0.4 s per million live
blocks, once per snapshot. Snapshots run in the thread that asks (the MCP server's, or the
exit), never in the thread sampler's.
"""

from __future__ import annotations

import _tracemalloc
import os
from collections.abc import Callable, Sequence
from typing import Any

from hotpath import stdlib
from hotpath.collectors import Collector
from hotpath.filters import own_dirs
from hotpath.store.memory import MemoryTable, Site, SiteSnapshot

SITES_KEPT = 2_000  # per snapshot, the largest: enough to find growth, bounded


def _group_in_python(traces: Sequence[Any]) -> dict[Site, tuple[int, int]]:
    """The fallback without the compiled extension: tracemalloc's own grouping."""
    import tracemalloc  # 5 ms of imports (pickle among them): only on this path

    snapshot = tracemalloc.Snapshot(traces, _tracemalloc.get_traceback_limit())
    sites: dict[Site, tuple[int, int]] = {}
    for stat in snapshot.statistics("lineno"):
        frame = stat.traceback[0]
        sites[(frame.filename, frame.lineno)] = (stat.size, stat.count)
    return sites


def _grouper() -> Callable[[Sequence[Any]], dict[Site, tuple[int, int]]]:
    try:
        from hotpath.recorder._crecorder import group_traces
    except ImportError:
        return _group_in_python
    return group_traces


class MemoryCollector(Collector):
    """Puts the site tracer behind the memory table (tools start and stop it through the
    table), and with ``--alloc-sites`` traces from the start."""

    def __init__(self, table: MemoryTable, from_start: bool) -> None:
        self.table = table
        self.from_start = from_start
        table.attach(SiteTracer())

    def install(self) -> None:
        if self.from_start:
            self.table.start_tracing()

    def finish(self) -> str | None:
        self.table.take_snapshot()  # when tracing: the live memory the program leaves
        return None

    def release(self) -> None:
        self.table.stop_tracing()

    def forget_in_child(self) -> None:
        self.table.stop_tracing()  # tracemalloc, if hotpath started it: 3-7x for nothing


class SiteTracer:
    def __init__(self, frames: int = 1) -> None:
        self.frames = frames
        self._started_here = False
        self._group = _grouper()
        self._own = own_files()

    # _tracemalloc, the C half of tracemalloc: the Python half imports pickle (5 ms) for
    # nothing hotpath uses.
    def tracing(self) -> bool:
        return bool(_tracemalloc.is_tracing())

    def start(self) -> bool:
        if _tracemalloc.is_tracing():
            return False  # already on: the program's own, or started earlier
        _tracemalloc.start(self.frames)
        self._started_here = True
        return True

    def stop(self) -> bool:
        """Stop tracing if hotpath started it; the program's own tracing is left alone."""
        if not self._started_here or not _tracemalloc.is_tracing():
            return False
        _tracemalloc.stop()
        self._started_here = False
        return True

    def take(self) -> SiteSnapshot | None:
        if not _tracemalloc.is_tracing():
            return None
        began = stdlib.perf_counter_ns()
        traces = _tracemalloc._get_traces()  # what tracemalloc.take_snapshot() reads
        grouped = self._group(traces)
        del traces
        own = self._own
        sites = {site: figures for site, figures in grouped.items() if not own(site[0])}
        traced = sum(size for size, _ in sites.values())
        largest = sorted(sites.items(), key=lambda item: item[1][0], reverse=True)[:SITES_KEPT]
        now = stdlib.perf_counter_ns()
        return SiteSnapshot(now, traced, dict(largest), now - began)


def own_files() -> Callable[[str], bool]:
    """Whether a file is hotpath's or tracemalloc's. The libraries hotpath's threads use (the
    MCP server's, psutil) are not left out: with one frame per trace, the program's own use of
    starlette or pydantic looks the same, and a leak must not hide there. What hotpath's
    threads keep alive in them is small and does not grow (the server's libraries are
    imported before tracing when it starts with the program)."""
    folders = tuple(os.path.join(folder, "") for folder in own_dirs())
    tracer = os.path.join(os.path.dirname(os.__file__), "tracemalloc.py")

    def own(filename: str) -> bool:
        return filename.startswith(folders) or filename == tracer

    return own

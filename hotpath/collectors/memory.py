"""Allocation profiling with tracemalloc (``--alloc``).

tracemalloc counts traced memory for the whole process (now, and the peak since the last
reset); it cannot say which thread allocated. So hotpath reads both counters at every timed
event and resets the peak, which splits the run into short *windows* between events, and
attributes each window's change to the thread that saw it and to the function on top of that
thread's stack (its "self" figures):

- a window that began in another thread (a thread switch happened in it) is not attributed:
  its change goes to ``unattributed``, so the per-thread figures are never a guess;
- a window's growth is ``allocated``, its shrinkage ``freed``: memory allocated and freed within
  one window shows only in ``peak``, which is why these are named for growth, not for
  allocator calls, and why no count of allocations is given;
- a call's figures include its callees: sums over the windows from its start to its end, and
  ``peak``, the highest traced memory during the call above where it started, tracked per
  thread as a high-water mark that a finishing call hands to its caller.

A thread that allocates while running only code outside the filter fires no events, so its
allocations fall in whichever window is open. That includes hotpath's own threads: the sampler
and the MCP server allocate little, and free it, so they add to ``allocated`` and ``freed`` of
the call in flight but not to what it retains. They do not close windows themselves: closing
the program's window from another thread made the program's allocations unattributed while
their frees were not, which broke ``retained``, the figure a leak shows in. What hotpath
allocates on the event path is never counted: the next window starts when hotpath's work for
the event is done (``reopen``). That is also where site snapshots are taken, at the sampler's
request: building one makes tens of MB of short-lived objects, which would otherwise be charged
to whatever call was running.

The pure-Python recorder's callbacks are wrapped rather than changed, so timing pays nothing
when this is off; --alloc therefore runs on that recorder.
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from typing import Any

from hotpath import stdlib
from hotpath.recorder import EVENTS
from hotpath.recorder.python import (
    Activation,
    Callbacks,
    PythonRecorder,
    RecordMemory,
    ThreadMemory,
    ThreadRecord,
    ThreadState,
)
from hotpath.store.functions import PendingMemory
from hotpath.store.memory import MemoryTable, SiteSnapshot

# Events after which a call may have finished (PY_YIELD only suspends one).
_FINISHING = frozenset({EVENTS.PY_RETURN, EVENTS.PY_UNWIND})
_NOTHING = object()  # "no third argument": PY_START and PY_RESUME have two


class MemoryCollector:
    def __init__(
        self,
        table: MemoryTable,
        recorder: PythonRecorder,
        own_idents: set[int],
        frames: int = 1,
    ) -> None:
        self.table = table
        self.recorder = recorder
        self.own_idents = own_idents  # hotpath's threads: their events leave windows alone
        self.frames = frames
        self._last_traced = 0
        self._last_state: ThreadState | None = None
        self._carried_peak = 0  # the program's peak from before a site snapshot reset it
        self.snapshot_requested: float | None = None  # monotonic time of the sampler's request

    def start(self) -> None:
        """Start tracing, then the recorder with its callbacks wrapped."""
        if not tracemalloc.is_tracing():
            tracemalloc.start(self.frames)
        self._last_traced = tracemalloc.get_traced_memory()[0]
        self.recorder.start(wrap=self.wrap)

    def thread_memory(self) -> dict[int, ThreadMemory]:
        """Memory figures of live threads, by OS thread id."""
        return self.recorder.thread_memory()

    def stop(self) -> None:
        if tracemalloc.is_tracing():
            tracemalloc.stop()

    # -- attribution --------------------------------------------------------------------------

    def observe(self, state: ThreadState) -> None:
        """Close the current window and attribute it to ``state``'s thread, if it is its own.

        Call ``reopen`` when hotpath's own work for the event is done: what hotpath allocates
        between the two falls in no window, so it is never counted as the program's. Every
        object made here is traced too, so the common case, a window in which nothing
        changed, makes none.
        """
        current, peak = tracemalloc.get_traced_memory()
        before = self._last_traced
        seen_by = self._last_state
        # Closed now: a thread that runs while this one is in a callback opens its own.
        self._last_traced = current
        self._last_state = state
        if current == before and peak == before and not self._carried_peak:
            return
        if self._carried_peak:
            peak = max(peak, self._carried_peak)
            self._carried_peak = 0
        delta = current - before
        if seen_by is not state:
            self.table.add_unattributed(delta)
            return
        memory = state.memory
        if memory is None:
            memory = state.memory = ThreadMemory()
        if memory.highs and peak > before:
            high = memory.allocated - memory.freed + (peak - before)  # the window's high water
            if high > memory.highs[-1]:
                memory.highs[-1] = high
        if delta >= 0:
            memory.allocated += delta
        else:
            memory.freed -= delta
        stack = state.stack
        if stack:
            top = stack[-2]
            record = top if isinstance(top, ThreadRecord) else top.record  # type: ignore[attr-defined]
            own = record.memory
            if own is None:
                own = record.memory = RecordMemory()
            if delta >= 0:
                own.self_allocated += delta
            else:
                own.self_freed -= delta

    def reopen(self, state: ThreadState) -> None:
        """Start the next window now, in ``state``'s thread."""
        if self.snapshot_requested is not None:
            self.snapshot_requested = None
            self.snapshot_sites()
        self._last_traced = tracemalloc.get_traced_memory()[0]
        self._last_state = state
        tracemalloc.reset_peak()

    def request_snapshot(self) -> None:
        """Ask for a site snapshot at the program's next event (called by the sampler)."""
        if self.snapshot_requested is None:
            self.snapshot_requested = stdlib.monotonic()
        elif stdlib.monotonic() - self.snapshot_requested > 1.0:
            # No event for a second: the program is idle, so not allocating either.
            self.snapshot_requested = None
            program_peak = tracemalloc.get_traced_memory()[1]
            self.snapshot_sites()
            tracemalloc.reset_peak()
            self._carried_peak = max(self._carried_peak, program_peak)

    def snapshot_sites(self, top: int = 100) -> None:
        """Record live traced memory by allocation site, hotpath's own left out."""
        snapshot = tracemalloc.take_snapshot().filter_traces(own_trace_filters())
        statistics = snapshot.statistics("lineno")
        del snapshot
        sites = {}
        for stat in statistics[:top]:
            frame = stat.traceback[0]
            sites[(frame.filename, frame.lineno)] = (stat.size, stat.count)
        traced = sum(stat.size for stat in statistics)
        del statistics
        self.table.add_snapshot(SiteSnapshot(stdlib.perf_counter_ns(), traced, sites))

    # -- following the timing stack -----------------------------------------------------------

    def wrap(self, callbacks: Callbacks) -> Callbacks:
        return {event: self._wrap(cb, event in _FINISHING) for event, cb in callbacks.items()}

    def _wrap(self, callback: Callable[..., Any], finishing: bool) -> Callable[..., Any]:
        state_of_thread = self.recorder.state_of_thread
        observe = self.observe
        reopen = self.reopen
        opened = self._opened
        closed = self._closed
        own_idents = self.own_idents
        get_ident = stdlib.get_ident
        nothing = _NOTHING

        # One signature for the 2- and 3-argument events: *args would make a tuple per event.
        def wrapped(code: Any, offset: int, argument: Any = nothing) -> Any:
            if get_ident() in own_idents:
                # hotpath's threads see code for the first time too (then it is DISABLEd):
                # closing the program's window there would make its allocations unattributed.
                if argument is nothing:
                    return callback(code, offset)
                return callback(code, offset, argument)
            try:
                state = state_of_thread()
                observe(state)
                stack = state.stack
                depth = len(stack)
                top = stack[-2] if depth else None
                if argument is nothing:
                    result = callback(code, offset)
                else:
                    result = callback(code, offset, argument)
                after = len(stack)
                if after > depth:
                    opened(state)
                elif after < depth:
                    closed(state, top, (depth - after) // 2, finishing)
                reopen(state)
            except RecursionError:
                return None  # as in the timing callbacks: never the program's traceback
            return result

        return wrapped

    @staticmethod
    def _opened(state: ThreadState) -> None:
        memory = state.memory
        if memory is None:
            memory = state.memory = ThreadMemory()
        memory.started_allocated.append(memory.allocated)
        memory.started_freed.append(memory.freed)
        memory.highs.append(memory.allocated - memory.freed)

    @staticmethod
    def _closed(state: ThreadState, top: object, count: int, finishing: bool) -> None:
        memory = state.memory
        if memory is None or not memory.highs:
            return
        highs = memory.highs
        if count > 1:  # the timing stack resynchronised: no figures for what it dropped
            keep = max(0, len(highs) - count)
            del highs[keep:], memory.started_allocated[keep:], memory.started_freed[keep:]
            return
        allocated_at = memory.started_allocated.pop()
        freed_at = memory.started_freed.pop()
        high = highs.pop()
        net = memory.allocated - memory.freed
        if net > high:
            high = net
        if highs and high > highs[-1]:
            highs[-1] = high  # the caller's high-water mark includes its callee's
        allocated = memory.allocated - allocated_at
        freed = memory.freed - freed_at
        peak = high - (allocated_at - freed_at)
        if isinstance(top, ThreadRecord):
            _finish(top, (allocated, freed, peak, top.depth > 0))
        elif isinstance(top, Activation):
            # A generator's call spans its segments: running sums until it finishes.
            so_far = top.memory or (0, 0, 0)
            net_before = so_far[0] - so_far[1]
            total = (so_far[0] + allocated, so_far[1] + freed, max(so_far[2], net_before + peak))
            top.memory = total
            if finishing:
                nested = any(entry.info is top.info for entry in state.stack[::2])  # type: ignore[attr-defined]
                _finish(top.record, (*total, nested))


def _finish(record: ThreadRecord, call: PendingMemory) -> None:
    own = record.memory
    if own is None:
        own = record.memory = RecordMemory()
    if record.ends:
        own.pending[record.ends[-1]] = call


def own_trace_filters() -> list[tracemalloc.Filter]:
    """Leave hotpath's own allocations, and its server's libraries', out of site snapshots."""
    import hotpath

    hotpath_dir = os.path.dirname(os.path.realpath(hotpath.__file__))
    patterns = [os.path.join(hotpath_dir, "*"), tracemalloc.__file__]
    for library in ("mcp", "uvicorn", "starlette", "sse_starlette", "httpx2", "httpcore2"):
        patterns.append(os.path.join("*", "site-packages", library, "*"))
    return [tracemalloc.Filter(False, pattern) for pattern in patterns]

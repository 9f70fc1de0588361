"""The compiled recorder: ``_crecorder.c`` behind the interface of ``hotpath.recorder``.

Python runs here only at start, stop and read time; every event is handled in C.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hotpath.recorder import (
    EVENT_SET,
    EVENTS,
    MAX_OPEN_ACTIVATIONS,
    Decide,
    Exclusion,
    Implementation,
    Listener,
    claim_tool_id,
    monitoring,
    register,
    release_tool_id,
)
from hotpath.recorder._crecorder import Recorder as _Recorder
from hotpath.store.functions import (
    Allocations,
    AllocationTotals,
    CallRecord,
    FunctionInfo,
    FunctionStats,
    ThreadAllocations,
    ThreadIdentity,
    Totals,
)


def _identity() -> ThreadIdentity:
    """The calling thread's identity; asked for at its first timed call, which runs inside
    Thread.run, where the thread is registered (and so has its name)."""
    identity = ThreadIdentity()
    identity.resolve()
    return identity


class CompiledRecorder:
    implementation: Implementation = "c"

    def __init__(
        self,
        decide: Decide,
        listener: Listener | None,
        log_limit: int,
        count_allocations: bool = False,
    ) -> None:
        self._log_limit = log_limit
        self.counts_allocations = count_allocations
        self._core = _Recorder(
            decide=decide,
            listener=listener,
            new_identity=_identity,
            disable=monitoring.DISABLE,
            log_limit=log_limit,
            max_activations=MAX_OPEN_ACTIVATIONS,
            count_allocations=count_allocations,
        )
        self.tool_id: int | None = None
        self.exclusion: Exclusion | None = self._core.held_call if count_allocations else None

    def start(self) -> None:
        self.tool_id = claim_tool_id()
        core = self._core
        callbacks: dict[int, Callable[..., object]] = {
            EVENTS.PY_START: core.on_start,
            EVENTS.PY_RETURN: core.on_return,
            EVENTS.PY_UNWIND: core.on_unwind,
            EVENTS.PY_RESUME: core.on_resume,
            EVENTS.PY_THROW: core.on_throw,
            EVENTS.PY_YIELD: core.on_yield,
        }
        if self.counts_allocations:
            core.start_counting()
        register(self.tool_id, callbacks)

    def stop(self) -> bool:
        self._core.stop_counting()
        tool, self.tool_id = self.tool_id, None
        return tool is None or release_tool_id(tool, EVENT_SET)

    def read(self, now_ns: int) -> list[FunctionStats]:
        stats = []
        for (
            info,
            completed,
            all_ns,
            total_ns,
            child_ns,
            active_ns,
            starts,
            errors,
            min_ns,
            max_ns,
            error_types,
            buckets,
            first,
            (running, running_ns, running_own_ns, running_child_ns),
            counted,
        ) in self._core.read(now_ns):
            totals = Totals(
                self._log_limit,
                completed=completed,
                all_ns=all_ns,
                min_ns=min_ns,
                max_ns=max_ns,
                total_ns=total_ns,
                child_ns=child_ns,
                active_ns=active_ns,
                starts=starts,
                errors=errors,
                error_types=Counter(error_types or {}),
                buckets=Counter(buckets),
                first=first,
            )
            allocations = None
            if counted is not None:
                every, total, child, per_call, running_total, running_own, running_child = counted
                allocations = AllocationTotals(
                    Allocations(*every),
                    Allocations(*total),
                    Allocations(*child),
                    Counter(per_call),
                    Allocations(*running_total),
                    Allocations(*running_own),
                    Allocations(*running_child),
                )
            stats.append(
                FunctionStats(
                    info, totals, running, running_ns, running_own_ns, running_child_ns, allocations
                )
            )
        return stats

    def recent_calls(self, info: FunctionInfo, limit: int) -> list[CallRecord]:
        return [
            CallRecord(
                end_ns,
                duration_ns,
                thread,
                outcome,
                Allocations(*counted) if counted is not None else None,
            )
            for end_ns, duration_ns, thread, outcome, counted in self._core.recent(info, limit)
        ]

    def thread_allocations(self) -> list[ThreadAllocations]:
        return [
            ThreadAllocations(native_id, Allocations(count, size), alive)
            for native_id, count, size, alive in self._core.thread_allocations()
        ]

    def live_threads(self) -> int:
        count: int = self._core.live_threads()
        return count

    def given_up(self) -> int:
        count: int = self._core.given_up()
        return count

    def open_activations(self) -> int:
        count: int = self._core.open_activations()
        return count

"""The pure-Python recorder: the fallback twin of the compiled one (same contract, see
``hotpath.recorder``), used where the extension is not built. It cannot count allocations:
Python has no allocator hook, so ``counts_allocations`` is False and --alloc falls back to
tracemalloc's live memory by site.

The callbacks are closures over local names (a cell read is the cheapest lookup Python has) and
do as little as possible per event: no locks, no allocation on the plain-function path beyond the
int the clock returns, and nothing hashed but ``id(code)``: hashing a code object walks its
bytecode. Each thread writes only its own ``ThreadRecord`` per function: a duration is appended
to a pending list and folded into the record's ``Totals`` in batches (``flush_at`` calls), under
the recorder's lock. Readers take the same lock and merge the totals, the pending lists and the
in-flight calls of every thread. When a thread ends, its records are merged into the function's
retired totals, so memory follows the live threads, not every thread that ever ran.

A call of a generator or coroutine lasts from its first start to its final return, however
often it suspends; its state lives in an ``Activation`` keyed by the frame's id.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from hotpath import stdlib
from hotpath.recorder import (
    EVENTS,
    MAX_OPEN_ACTIVATIONS,
    WRAPPED_ITEM,
    Decide,
    Exclusion,
    Implementation,
    Listener,
    TaskProgress,
    claim_tool_id,
    monitoring,
    register,
    release_tool_id,
)
from hotpath.store.functions import (
    CallRecord,
    FunctionInfo,
    FunctionStats,
    ThreadAllocations,
    ThreadIdentity,
    Totals,
)

DISABLE = monitoring.DISABLE
# Verdicts on code hotpath does not time. Each holds its code object (so that its id stays its
# own), which for generated code is memory the program would have freed: cleared when full,
# at the cost of deciding again (100,000 generated functions kept 114 MiB alive at 200,000).
MAX_VERDICTS = 4_096

Callbacks = dict[int, Callable[..., Any]]


class ThreadRecord:
    """One function's data as written by one thread; the hot fields of the event path."""

    __slots__ = (
        "active_ns",
        "buf",
        "child_ns",
        "code",
        "depth",
        "ends",
        "failed",
        "gen",
        "info",
        "starts",
        "thread",
        "total_ns",
        "totals",
    )

    def __init__(self, info: FunctionInfo, thread: ThreadIdentity) -> None:
        self.info = info
        self.code = info.code
        self.gen = info.kind != "function"
        self.thread = thread
        self.depth = 0
        self.total_ns = 0
        self.child_ns = 0
        self.active_ns = 0
        self.starts = 0
        self.buf: list[int] = []  # durations of finished calls not yet folded into totals
        self.ends: list[int] = []  # their end timestamps, for the call log
        self.failed: dict[int, str] = {}  # end timestamp -> exception type, for failed calls
        self.totals = Totals(info.log_limit)

    def fold_pending(self) -> None:
        """Move pending calls into ``totals``; the caller holds the recorder's lock."""
        count = len(self.buf)
        durations = self.buf[:count]
        ends = self.ends[:count]
        failed = self.failed
        self.failed = {}
        self.totals.add_calls(durations, ends, failed, self.thread)
        del self.buf[:count]
        del self.ends[:count]

    def view(self) -> Totals:
        """Totals including pending calls and the running accumulators, without changing self."""
        view = self.totals.copy()
        count = len(self.buf)
        view.add_calls(self.buf[:count], self.ends[:count], dict(self.failed), self.thread)
        view.total_ns += self.total_ns
        view.child_ns += self.child_ns
        view.active_ns += self.active_ns
        view.starts += self.starts
        return view


class ThreadState:
    """Everything one thread's events touch. Only that thread writes to it."""

    __slots__ = ("identity", "records", "stack")

    def __init__(self, identity: ThreadIdentity) -> None:
        self.identity = identity
        self.records: dict[int, ThreadRecord] = {}  # id(code) -> record
        # Flat pairs (record or activation, start ns): two appends cost no allocation.
        self.stack: list[object] = []


class Activation:
    """One call of a generator or coroutine, alive across its suspensions."""

    __slots__ = (
        "active_ns",
        "child_ns",
        "code",
        "error",
        "gen",
        "info",
        "key",
        "record",
        "start_ns",
        "stream",
        "watcher",
    )

    def __init__(self, record: ThreadRecord, key: int, start_ns: int) -> None:
        self.record = record
        self.info = record.info
        self.code = record.code
        self.gen = True
        self.key = key
        self.start_ns = start_ns
        self.active_ns = 0
        self.child_ns = 0
        self.error: str | None = None  # the exception type it ended with, if it raised
        self.watcher: TaskProgress | None = None  # the asyncio task running this coroutine
        self.stream: object | None = None  # async generators: its stream


class _ThreadHandle:
    """Lives exactly as long as its thread's ``threading.local`` slot: its death retires it."""

    __slots__ = ("__weakref__",)


class PythonRecorder:
    implementation: Implementation = "python"
    counts_allocations = False  # Python has no allocator hook
    exclusion: Exclusion | None = None

    def __init__(
        self,
        decide: Decide,
        listener: Listener | None,
        log_limit: int,
        flush_at: int = 256,
    ) -> None:
        self._decide = decide
        self._listener = listener
        self.log_limit = log_limit
        self.flush_at = flush_at
        # Reentrant: a signal handler (SIGTERM's report) may run while this thread holds it.
        self.lock = stdlib.new_rlock()
        self._local = threading.local()
        self._infos: dict[int, FunctionInfo] = {}  # id(code) -> info; the info holds the code
        self._rejected: dict[int, CodeType] = {}  # id(code) -> code, kept so the id stays its own
        self._activations: dict[int, Activation] = {}  # id(frame) -> open generator call
        # Threads with records, by id(state); ended ones leave when they are folded.
        self._threads: dict[int, ThreadState] = {}
        self._watchers: dict[int, tuple[weakref.ref[object], ThreadState]] = {}
        self._ended: deque[weakref.ref[object]] = deque()  # watchers of threads that ended
        self._records: dict[int, list[ThreadRecord]] = {}  # info.id -> live threads' records
        self._retired: dict[int, Totals] = {}  # info.id -> ended threads' totals
        self._events: tuple[int, ...] = ()
        self._given_up = [0]  # a cell the callbacks can bump
        self.tool_id: int | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        tool = claim_tool_id()
        callbacks = self._callbacks()
        self._events = tuple(callbacks)
        self.tool_id = tool
        register(tool, callbacks)

    def stop(self) -> bool:
        tool, self.tool_id = self.tool_id, None
        return tool is None or release_tool_id(tool, self._events)

    # -- reading ------------------------------------------------------------------------------

    def read(self, now_ns: int) -> list[FunctionStats]:
        with self.lock:
            self._fold_retired_threads()
            in_flight = InFlight()
            for state in self._threads.values():
                in_flight.add_stack(state.stack[:], now_ns)
            # A C-level copy: the callbacks change the dict without the lock.
            in_flight.add_activations(list(self._activations.values()), now_ns)
            return [
                FunctionStats(
                    info,
                    self._totals(info),
                    in_flight.running[info.id],
                    in_flight.total_ns[info.id],
                    in_flight.own_ns[info.id],
                    in_flight.child_ns[info.id],
                )
                for info in list(self._infos.values())
            ]

    def recent_calls(self, info: FunctionInfo, limit: int) -> list[CallRecord]:
        with self.lock:
            self._fold_retired_threads()
            return self._totals(info).recent_calls(limit)

    def given_up(self) -> int:
        return self._given_up[0]

    def thread_allocations(self) -> list[ThreadAllocations]:
        return []

    def live_threads(self) -> int:
        with self.lock:
            self._fold_retired_threads()
            return len(self._threads)

    def _totals(self, info: FunctionInfo) -> Totals:
        retired = self._retired.get(info.id)
        totals = retired.copy() if retired is not None else Totals(info.log_limit)
        for record in self._records.get(info.id, ()):
            totals.merge(record.view())
        return totals

    # -- threads ------------------------------------------------------------------------------

    def state_of_thread(self) -> ThreadState:
        try:
            state: ThreadState = self._local.state
        except AttributeError:
            state = self._new_thread_state()
        return state

    def _new_thread_state(self) -> ThreadState:
        state = ThreadState(ThreadIdentity())
        handle: object = _ThreadHandle()
        # Retire ``state`` when ``handle`` dies, which it does when its thread ends. The
        # weakref's callback is a C-level ``deque.append``: it runs while the thread is torn
        # down, where any Python code would fire monitoring events in a thread whose state is
        # gone. The folding waits for the next reader or new thread, under the lock.
        watcher = weakref.ref(handle, self._ended.append)
        with self.lock:
            self._fold_retired_threads()  # a new thread keeps the ended ones bounded
            self._watchers[id(watcher)] = (watcher, state)
        self._local.state = state
        self._local.handle = handle
        return state

    def _fold_retired_threads(self) -> None:
        """Merge ended threads' records into their functions' retired totals; lock held."""
        while self._ended:
            _, state = self._watchers.pop(id(self._ended.popleft()))
            self._threads.pop(id(state), None)
            for record in state.records.values():
                record.fold_pending()
                info = record.info
                retired = self._retired.get(info.id)
                if retired is None:
                    retired = self._retired[info.id] = Totals(info.log_limit)
                retired.merge(record.view())
                retired.compact()
                self._records[info.id].remove(record)
            state.records.clear()

    def _flush(self, record: ThreadRecord) -> None:
        with self.lock:
            record.fold_pending()

    # -- decisions, once per code object ------------------------------------------------------

    def _info_for(self, code: CodeType, frame: FrameType | None) -> FunctionInfo | None:
        key = id(code)
        info = self._infos.get(key)
        if info is not None:
            return info
        if self._rejected.get(key) is code:
            return None
        info = self._decide(code, frame)
        if info is None:
            if len(self._rejected) >= MAX_VERDICTS:
                self._rejected.clear()
            self._rejected[key] = code
            return None
        self._infos[key] = info
        return info

    def _record_for(
        self, state: ThreadState, code: CodeType, frame: FrameType | None
    ) -> ThreadRecord | None:
        info = self._info_for(code, frame)
        if info is None:
            return None
        # The first timed function of a thread runs inside Thread.run: it is registered now.
        state.identity.resolve()
        record = ThreadRecord(info, state.identity)
        with self.lock:
            self._fold_retired_threads()
            self._threads[id(state)] = state
            self._records.setdefault(info.id, []).append(record)
            state.records[id(info.code)] = record
        return record

    # -- the callbacks ------------------------------------------------------------------------

    def _callbacks(self) -> Callbacks:
        clock = time.perf_counter_ns
        local = self._local
        new_thread_state = self._new_thread_state
        record_for = self._record_for
        info_for = self._info_for
        activations = self._activations
        flush = self._flush
        flush_at = self.flush_at
        getframe = sys._getframe
        listener = self._listener
        get_referents = gc.get_referents
        given_up = self._given_up

        # Every callback gives the event up on an Exception, as the compiled recorder does: at
        # the program's recursion limit hotpath's own calls fail first (RecursionError), and a
        # failure in deciding or in the listener must not surface in the program. The event is
        # lost; the stack resynchronises at the next matching end. Other BaseExceptions (a
        # KeyboardInterrupt raised by a signal handler that ran here) reach the program.

        caller = 1  # frames between a callback and the code its event is about

        def event_frame(code: CodeType, depth: int) -> FrameType | None:
            """The frame an event is about, ``depth`` frames above the caller of this.

            Asking for the exact depth matters: each frame object that ``_getframe`` and
            ``f_back`` bring into being is an allocation. Walking up is the fallback, for a
            callback that another one called.
            """
            frame: FrameType | None = getframe(depth + 1)
            while frame is not None and frame.f_code is not code:
                frame = frame.f_back
            return frame

        # The hot callbacks repeat its lookup inline: a call costs more than the lookup.
        state_of_thread = self.state_of_thread

        def on_start(code: CodeType, offset: int) -> object:
            try:
                try:
                    state: ThreadState = local.state
                except AttributeError:
                    state = new_thread_state()
                record = state.records.get(id(code))
                if record is None:
                    record = record_for(state, code, event_frame(code, caller))
                    if record is None:
                        return DISABLE
                if record.gen:
                    open_activation(state, record, event_frame(code, caller))
                    return None
                record.depth += 1
                stack = state.stack
                stack.append(record)
                stack.append(clock())
                return None
            except Exception:
                given_up[0] += 1
                return None  # give the event up (see above)

        def open_activation(
            state: ThreadState, record: ThreadRecord, frame: FrameType | None
        ) -> None:
            key = id(frame)
            if len(activations) >= MAX_OPEN_ACTIVATIONS:
                del activations[next(iter(activations))]
            activation = Activation(record, key, clock())
            activations[key] = activation
            record.starts += 1
            if listener is not None:
                try:
                    kind = record.info.kind
                    if kind == "coroutine":
                        watcher = listener.task_started(key)
                        if watcher is not None:
                            activation.watcher = watcher
                            watcher.polls = 1
                    elif kind == "async_generator":
                        activation.stream = listener.stream_opened(record.info)
                except Exception:
                    given_up[0] += 1  # the listener's failure: the call is still timed
            state.stack.append(activation)
            state.stack.append(clock())  # its first run starts after hotpath's bookkeeping

        def on_return(code: CodeType, offset: int, value: object) -> object:
            try:
                now = clock()
                try:
                    state: ThreadState = local.state
                except AttributeError:
                    state = new_thread_state()
                stack = state.stack
                if not stack or stack[-2].code is not code:  # type: ignore[attr-defined]
                    return unmatched_end(state, code, now)
                started: int = stack.pop()  # type: ignore[assignment]
                entry = stack.pop()
                if entry.gen:  # type: ignore[attr-defined]
                    return close_activation(state, entry, now, started)  # type: ignore[arg-type]
                record: ThreadRecord = entry  # type: ignore[assignment]
                duration = now - started
                buf = record.buf
                if len(buf) >= flush_at:
                    flush(record)
                buf.append(duration)
                record.ends.append(now)
                record.depth -= 1
                if not record.depth:
                    record.total_ns += duration
                if stack:
                    stack[-2].child_ns += duration  # type: ignore[attr-defined]
                return record
            except Exception:
                given_up[0] += 1
                return None  # give the event up (see above)

        def unmatched_end(state: ThreadState, code: CodeType, now: int) -> object:
            """An end whose start is not on top of this thread's stack."""
            if info_for(code, event_frame(code, caller + 1)) is None:
                return DISABLE
            stack = state.stack
            for index in range(len(stack) - 2, -1, -2):
                if stack[index].code is code:  # type: ignore[attr-defined]
                    # Entries above it missed their ends: drop them and finish this one.
                    for entry in stack[index + 2 :: 2]:
                        if not entry.gen:  # type: ignore[attr-defined]
                            entry.depth -= 1  # type: ignore[attr-defined]
                    del stack[index + 2 :]
                    return on_return(code, 0, None)
            return None  # started before hotpath was watching

        def close_activation(
            state: ThreadState, activation: Activation, now: int, resumed: int
        ) -> ThreadRecord:
            running = now - resumed
            activation.active_ns += running
            stack = state.stack
            if stack:
                stack[-2].child_ns += running  # type: ignore[attr-defined]
            activations.pop(activation.key, None)
            if activation.watcher is not None:
                activation.watcher.active_ns = activation.active_ns
            record = activation.record
            duration = now - activation.start_ns
            if len(record.buf) >= flush_at:
                flush(record)
            record.buf.append(duration)
            record.ends.append(now)
            record.active_ns += activation.active_ns
            record.child_ns += activation.child_ns
            info = activation.info
            # Recursion: an enclosing call of the same function already counts this time.
            if not any(entry.info is info for entry in stack[::2]):  # type: ignore[attr-defined]
                record.total_ns += duration
            if activation.stream is not None:
                try:
                    listener.stream_ended(activation.stream, activation.error)  # type: ignore[union-attr]
                except Exception:
                    given_up[0] += 1  # the listener's failure: the call is counted all the same
            return record

        def on_unwind(code: CodeType, offset: int, exception: BaseException) -> None:
            try:
                # Never DISABLE from PY_UNWIND: sys.monitoring raises and removes the callback.
                stack = state_of_thread().stack
                if stack and stack[-2].code is code and stack[-2].gen:  # type: ignore[attr-defined]
                    stack[-2].error = type(exception).__name__  # type: ignore[attr-defined]
                record = on_return(code, offset, None)
                if isinstance(record, ThreadRecord) and record.ends:
                    record.failed[record.ends[-1]] = type(exception).__name__
            except Exception:
                given_up[0] += 1
                return None  # give the event up (see above)

        def resume(code: CodeType, frame: FrameType | None) -> object:
            state = state_of_thread()
            activation = activations.get(id(frame))
            if activation is None or activation.code is not code:
                record = state.records.get(id(code)) or record_for(state, code, frame)
                if record is None:
                    return DISABLE
                # Started before hotpath watched, or its activation was evicted: count it anew.
                open_activation(state, record, frame)
                return None
            if activation.watcher is not None:
                activation.watcher.polls += 1
            state.stack.append(activation)
            state.stack.append(clock())
            return None

        def on_resume(code: CodeType, offset: int) -> object:
            try:
                return resume(code, event_frame(code, caller))
            except Exception:
                given_up[0] += 1
                return None  # give the event up (see above)

        def on_throw(code: CodeType, offset: int, exception: BaseException) -> None:
            try:
                resume(code, event_frame(code, caller))  # like PY_UNWIND, PY_THROW never DISABLEs
            except Exception:
                given_up[0] += 1
                return None  # give the event up (see above)

        def on_yield(code: CodeType, offset: int, value: object) -> object:
            try:
                now = clock()
                stack = state_of_thread().stack
                if not stack or stack[-2].code is not code:  # type: ignore[attr-defined]
                    return DISABLE if info_for(code, event_frame(code, caller)) is None else None
                resumed: int = stack.pop()  # type: ignore[assignment]
                activation: Activation = stack.pop()  # type: ignore[assignment]
                running = now - resumed
                activation.active_ns += running
                if stack:
                    stack[-2].child_ns += running  # type: ignore[attr-defined]
                if activation.watcher is not None:
                    activation.watcher.active_ns = activation.active_ns
                if activation.stream is not None and type(value).__name__ == WRAPPED_ITEM:
                    inner = get_referents(value)
                    if len(inner) == 1:
                        listener.stream_yielded(activation.stream, inner[0])  # type: ignore[union-attr]
                return None
            except Exception:
                given_up[0] += 1
                return None  # give the event up (see above)

        return {
            EVENTS.PY_START: on_start,
            EVENTS.PY_RETURN: on_return,
            EVENTS.PY_UNWIND: on_unwind,
            EVENTS.PY_RESUME: on_resume,
            EVENTS.PY_THROW: on_throw,
            EVENTS.PY_YIELD: on_yield,
        }


class InFlight:
    """Calls in progress, counted up to now, as the compiled recorder's read() counts them."""

    def __init__(self) -> None:
        self.running: Counter[int] = Counter()
        self.total_ns: Counter[int] = Counter()  # inclusive, the outermost call per thread
        self.own_ns: Counter[int] = Counter()  # every call's own running time (as all_ns)
        self.child_ns: Counter[int] = Counter()  # profiled callees' time inside them

    def add_stack(self, stack: list[object], now_ns: int) -> None:
        outermost: set[int] = set()
        caller: int | None = None
        for index in range(0, len(stack) - 1, 2):
            entry = stack[index]
            started = stack[index + 1]
            assert isinstance(entry, ThreadRecord | Activation) and isinstance(started, int)
            function_id = entry.info.id
            so_far = now_ns - started
            self.own_ns[function_id] += so_far
            if caller is not None:
                self.child_ns[caller] += so_far
            caller = function_id
            if isinstance(entry, Activation):
                continue  # counted with the open activations
            self.running[function_id] += 1
            if function_id not in outermost:
                outermost.add(function_id)
                self.total_ns[function_id] += so_far

    def add_activations(self, activations: list[Activation], now_ns: int) -> None:
        """Open generator calls, from their starts. One whose generator was collected without
        an event (3.13 sends none) counts as running until it is evicted: Python gives no way
        from a frame to its generator before 3.14. The compiled recorder can tell."""
        for activation in activations:
            function_id = activation.info.id
            self.running[function_id] += 1
            self.total_ns[function_id] += now_ns - activation.start_ns
            self.own_ns[function_id] += activation.active_ns
            self.child_ns[function_id] += activation.child_ns

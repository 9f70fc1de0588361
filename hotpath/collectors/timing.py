"""Function timing with PEP 669 ``sys.monitoring``.

The callbacks are closures over local names (a cell read is the cheapest lookup Python has) and
do as little as possible per event: no locks, no allocation on the plain-function path beyond the
int the clock returns, and nothing hashed but ``id(code)``: hashing a code object walks its
bytecode. Histograms, logs and sums are built later in batches by ``FunctionTable.flush``.

Whether a function is timed is decided once per code object: code outside the filter gets
``DISABLE`` at each of its event locations and is never seen again.

A call of a generator or coroutine lasts from its first start to its final return, however
often it suspends; its state lives in an ``Activation`` keyed by the frame's id.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from hotpath.filters import FunctionFilter, qualified_name
from hotpath.store.functions import (
    FunctionInfo,
    FunctionKind,
    FunctionTable,
    ThreadIdentity,
    ThreadRecord,
    ThreadState,
)
from hotpath.store.futures import TaskRecord
from hotpath.store.streams import StreamInstance

if TYPE_CHECKING:
    from hotpath.collectors.streams import StreamCollector

monitoring = sys.monitoring
EVENTS = monitoring.events
DISABLE = monitoring.DISABLE

# 3 and 4 belong to no standard tool: debuggers (0), coverage (1), profilers such as cProfile
# (2) and optimizers (5) keep theirs, so a program can still run them under hotpath.
PREFERRED_TOOL_IDS = (3, 4, 5, 2, 1, 0)

# Generators that are dropped while suspended may never report an end (3.13.0 sends no event
# for it), so their activations are capped rather than trusted to finish.
MAX_OPEN_ACTIVATIONS = 100_000
# Verdicts on code hotpath does not time. Each holds its code object (so that its id stays its
# own), which for generated code is memory the program would have freed: cleared when full,
# at the cost of deciding again (100,000 generated functions kept 114 MiB alive at 200,000).
MAX_VERDICTS = 4_096

_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200


Callbacks = dict[int, Callable[..., Any]]
Wrapper = Callable[[Callbacks], Callbacks]


class NoToolIdError(RuntimeError):
    """Every sys.monitoring tool id is taken by other tools."""


def _kind(code: CodeType) -> FunctionKind:
    flags = code.co_flags
    if flags & _CO_ASYNC_GENERATOR:
        return "async_generator"
    if flags & _CO_COROUTINE:
        return "coroutine"
    if flags & _CO_GENERATOR:
        return "generator"
    return "function"


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
        "memory",
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
        self.memory: tuple[int, int, int] | None = None  # --alloc: allocated, freed, peak
        self.error: str | None = None  # the exception type it ended with, if it raised
        self.watcher: TaskRecord | None = None  # the asyncio task running this coroutine
        self.stream: StreamInstance | None = None  # async generators: its stream


class _ThreadHandle:
    """Lives exactly as long as its thread's ``threading.local`` slot: its death retires it."""

    __slots__ = ("__weakref__",)


class TimingCollector:
    def __init__(
        self,
        table: FunctionTable,
        function_filter: FunctionFilter,
        main_name: str,
        watchers: dict[int, TaskRecord] | None = None,
        streams: StreamCollector | None = None,
    ) -> None:
        self._table = table
        # id(coroutine frame) -> task, filled by the task collector, emptied as frames start.
        self._watchers = watchers if watchers is not None else {}
        self._streams = streams
        self._filter = function_filter
        self._main_name = main_name
        self._local = threading.local()
        self._infos: dict[int, FunctionInfo] = {}  # id(code) -> info; the info holds the code
        self._rejected: dict[int, CodeType] = {}  # id(code) -> code, kept so the id stays its own
        self._activations: dict[int, Activation] = {}  # id(frame) -> open generator call
        self._events: tuple[int, ...] = ()
        self.tool_id: int | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, wrap: Wrapper | None = None) -> None:
        """Start timing; ``wrap`` may wrap the callbacks (the allocation collector does)."""
        self.tool_id = self._claim_tool_id()
        callbacks = self._callbacks(wrapped=wrap is not None)
        if wrap is not None:
            callbacks = wrap(callbacks)
        for event, callback in callbacks.items():
            monitoring.register_callback(self.tool_id, event, callback)
        self._events = tuple(callbacks)
        monitoring.set_events(self.tool_id, sum(self._events))

    def stop(self) -> None:
        tool = self.tool_id
        if tool is None:
            return
        self.tool_id = None
        # On 3.12 and 3.13 free_tool_id leaves callbacks and events in place: clear them first.
        monitoring.set_events(tool, 0)
        for event in self._events:
            monitoring.register_callback(tool, event, None)
        monitoring.free_tool_id(tool)

    @staticmethod
    def _claim_tool_id() -> int:
        for tool in PREFERRED_TOOL_IDS:
            if monitoring.get_tool(tool) is None:
                try:
                    monitoring.use_tool_id(tool, "hotpath")
                except ValueError:  # taken between the check and the claim
                    continue
                return tool
        raise NoToolIdError("every sys.monitoring tool id (0-5) is already in use")

    # -- decisions, once per code object ------------------------------------------------------

    def _info_for(self, code: CodeType, frame: FrameType | None) -> FunctionInfo | None:
        key = id(code)
        info = self._infos.get(key)
        if info is not None:
            return info
        if self._rejected.get(key) is code:
            return None
        name = qualified_name(code, frame, self._main_name)
        if self._filter.selects(name, code.co_filename):
            module = name.removesuffix(code.co_qualname).removesuffix(".")
            info = self._table.add_function(name, module, code.co_qualname, code, _kind(code))
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
        return self._table.add_record(state, info)

    def state_of_thread(self) -> ThreadState:
        try:
            state: ThreadState = self._local.state
        except AttributeError:
            state = self._new_thread_state()
        return state

    def _new_thread_state(self) -> ThreadState:
        state = ThreadState(ThreadIdentity())
        handle = _ThreadHandle()
        self._table.watch_thread(state, handle)
        self._local.state = state
        self._local.handle = handle
        return state

    # -- the callbacks ------------------------------------------------------------------------

    def _callbacks(self, wrapped: bool = False) -> Callbacks:
        clock = time.perf_counter_ns
        local = self._local
        new_thread_state = self._new_thread_state
        record_for = self._record_for
        info_for = self._info_for
        activations = self._activations
        flush = self._table.flush
        flush_at = self._table.flush_at
        getframe = sys._getframe
        watchers = self._watchers
        streams = self._streams

        # Every callback gives up on RecursionError: at the program's recursion limit hotpath's
        # own calls fail first, and that error must not surface in the program's traceback.
        # The event is lost; the stack resynchronises at the next matching end.

        # Frames between a callback and the code its event is about: one more when the
        # allocation collector wraps the callbacks.
        caller = 2 if wrapped else 1

        def event_frame(code: CodeType, depth: int) -> FrameType | None:
            """The frame an event is about, ``depth`` frames above the caller of this.

            Asking for the exact depth matters: each frame object that ``_getframe`` and
            ``f_back`` bring into being is an allocation, which --alloc would count as the
            program's. Walking up is the fallback, for a callback that another one called.
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
            except RecursionError:
                return None  # at the recursion limit: no room for hotpath

        def open_activation(
            state: ThreadState, record: ThreadRecord, frame: FrameType | None
        ) -> None:
            key = id(frame)
            if len(activations) >= MAX_OPEN_ACTIVATIONS:
                del activations[next(iter(activations))]
            now = clock()
            activation = Activation(record, key, now)
            activations[key] = activation
            record.starts += 1
            if watchers:
                watcher = watchers.pop(key, None)
                if watcher is not None:
                    activation.watcher = watcher
                    watcher.state, watcher.started_ns, watcher.polls = "started", now, 1
            if streams is not None and record.info.kind == "async_generator":
                activation.stream = streams.opened(record.info)
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
            except RecursionError:
                return None  # at the recursion limit: no room for hotpath

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
            if activation.stream is not None:
                streams.ended(activation.stream, activation.error)  # type: ignore[union-attr]
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
            except RecursionError:
                return None  # at the recursion limit: no room for hotpath

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
            except RecursionError:
                return None  # at the recursion limit: no room for hotpath

        def on_throw(code: CodeType, offset: int, exception: BaseException) -> None:
            try:
                resume(code, event_frame(code, caller))  # like PY_UNWIND, PY_THROW never DISABLEs
            except RecursionError:
                return None  # at the recursion limit: no room for hotpath

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
                if activation.stream is not None:
                    streams.yielded(activation.stream, value)  # type: ignore[union-attr]
                return None
            except RecursionError:
                return None  # at the recursion limit: no room for hotpath

        return {
            EVENTS.PY_START: on_start,
            EVENTS.PY_RETURN: on_return,
            EVENTS.PY_UNWIND: on_unwind,
            EVENTS.PY_RESUME: on_resume,
            EVENTS.PY_THROW: on_throw,
            EVENTS.PY_YIELD: on_yield,
        }

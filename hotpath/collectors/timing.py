"""Function timing: which code is timed (the filter and the store's cap), and the recorder that
times it (``hotpath.recorder``: compiled, or its pure-Python twin).

Whether a function is timed is decided once per code object, at its first event: code outside
the filter gets ``DISABLE`` at each of its event locations and is never seen again.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from hotpath.collectors import Collector
from hotpath.collectors.streams import StreamCollector
from hotpath.collectors.tasks import TaskCollector
from hotpath.filters import FunctionFilter, qualified_name
from hotpath.recorder import Implementation, NoToolIdError, Recorder, TaskProgress, create
from hotpath.store.functions import FunctionInfo, FunctionKind, FunctionTable

__all__ = ["AsyncioListener", "NoToolIdError", "TimingCollector"]

_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200


def _kind(code: CodeType) -> FunctionKind:
    flags = code.co_flags
    if flags & _CO_ASYNC_GENERATOR:
        return "async_generator"
    if flags & _CO_COROUTINE:
        return "coroutine"
    if flags & _CO_GENERATOR:
        return "generator"
    return "function"


class AsyncioListener:
    """The recorder's listener (``hotpath.recorder.Listener``): tasks and streams. Bound
    methods, not wrappers: a wrapper would add a Python call to every async generator item."""

    def __init__(self, tasks: TaskCollector, streams: StreamCollector) -> None:
        self.task_started: Callable[[int], TaskProgress | None] = tasks.started
        self.stream_opened: Callable[[FunctionInfo], Any] = streams.opened
        self.stream_yielded: Callable[[Any, object], None] = streams.yielded
        self.stream_ended: Callable[[Any, str | None], None] = streams.ended


class TimingCollector(Collector):
    def __init__(
        self,
        table: FunctionTable,
        function_filter: FunctionFilter,
        main_name: str,
        implementation: Implementation,
        listener: AsyncioListener | None = None,
        count_allocations: bool = False,
    ) -> None:
        self._table = table
        self._filter = function_filter
        self._main_name = main_name
        self._counts = count_allocations and implementation == "c"
        self.recorder: Recorder = create(
            implementation, self.decide, listener, table.log_limit, count_allocations
        )
        table.attach(self.recorder)

    def decide(self, code: CodeType, frame: FrameType | None) -> FunctionInfo | None:
        """The recorder asks this once per code object: timed (its identity), or not."""
        name = qualified_name(code, frame, self._main_name)
        if not self._filter.selects(name, code.co_filename):
            self._table.note_declined(name)
            return None
        module = name.removesuffix(code.co_qualname).removesuffix(".")
        return self._table.add_function(name, module, code.co_qualname, code, _kind(code))

    def provides(self) -> dict[str, bool]:
        return {"timing": True, "alloc": self._counts}

    def start(self) -> None:
        """Last of all: from here on every call is timed (hotpath's own setup is not)."""
        self.recorder.start()

    def finish(self) -> str | None:
        if self.recorder.stop():
            return None
        return (
            "the program freed or took over hotpath's sys.monitoring tool id; timing stopped "
            "there, and the report shows what was recorded"
        )

    def forget_in_child(self) -> None:
        self.recorder.stop()

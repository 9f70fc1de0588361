"""Futures: asyncio tasks, however they are created, with no code changes.

Every path to a task (``create_task``, ``gather``, ``ensure_future``, ``TaskGroup``,
``asyncio.run``, eager task factories) ends in ``asyncio.tasks.Task(...)``, looked up when it
is called: hotpath puts a subclass of the C Task there, so ``isinstance`` and ``repr`` stay as
they were. It records the task, and leaves its figures to the recorder, which already follows
the coroutine's frame: when that frame first starts, the recorder asks ``started`` whose it is,
and then writes the task's steps and running time as they happen.

Only tasks whose coroutine function the filter selects are recorded: hotpath's own server and
the program's libraries are not.
"""

from __future__ import annotations

import asyncio
import asyncio.tasks
import os
import sys
import weakref
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from hotpath import stdlib
from hotpath.collectors import Collector
from hotpath.filters import shown_path
from hotpath.recorder import Exclusion, excluded
from hotpath.store.futures import FutureTable, TaskRecord

Selects = Callable[[str, str], bool]  # (module.qualname, file) -> timed?

_ASYNCIO_DIR = os.path.join(os.path.dirname(asyncio.__file__), "")


class TaskCollector(Collector):
    def __init__(
        self,
        table: FutureTable,
        selects: Selects,
        main_name: str,
        root: str,
        exclusion: Exclusion | None = None,
    ) -> None:
        """With ``exclusion`` (--alloc), what the Task subclass allocates in the program's
        calls and callbacks is not counted as the program's."""
        self.exclusion = exclusion
        self.table = table
        self.selects = selects
        self.main_name = main_name
        self.root = root
        # id(coroutine frame) -> its task, until the recorder sees the frame start.
        self._waiting: dict[int, TaskRecord] = {}
        self._original: type | None = None
        table.attach(running)

    def provides(self) -> dict[str, bool]:
        return {"futures": True}

    def install(self) -> None:
        """Put a Task subclass in place."""
        exclusion = self.exclusion
        original: type = asyncio.tasks.Task
        self._original = original
        created = excluded(self._created, exclusion)
        follow = excluded(_follow, exclusion)

        class Task(original):  # type: ignore[misc]
            __doc__ = original.__doc__

            def __init__(self, coro: Any, *args: Any, **kwargs: Any) -> None:
                record = created(coro)
                super().__init__(coro, *args, **kwargs)
                if record is not None:
                    follow(self, record, exclusion)

        Task.__module__ = original.__module__
        Task.__qualname__ = original.__qualname__
        setattr(asyncio.tasks, "Task", Task)  # noqa: B010 - typeshed's Task is generic
        setattr(asyncio, "Task", Task)  # noqa: B010

    def forget_in_child(self) -> None:
        self.uninstall()

    def uninstall(self) -> None:
        if self._original is not None:
            setattr(asyncio.tasks, "Task", self._original)  # noqa: B010
            setattr(asyncio, "Task", self._original)  # noqa: B010

    def _created(self, coro: object) -> _Record | None:
        code: CodeType | None = getattr(coro, "cr_code", None)
        frame: FrameType | None = getattr(coro, "cr_frame", None)
        if code is None or frame is None:
            return None  # not a coroutine, or one already finished
        module = frame.f_globals.get("__name__", "")
        if module == "__main__":
            module = self.main_name
        name = f"{module}.{code.co_qualname}"
        if not self.selects(name, code.co_filename):
            return None
        location = f"{shown_path(code.co_filename, self.root)}:{code.co_firstlineno}"
        group = self.table.group(code.co_filename, code.co_firstlineno, name, location)
        if group is None:
            return None
        record = _Record(
            self.table.next_task_id(), group, "", _created_at(self.root), stdlib.perf_counter_ns()
        )
        record.task = None
        with group.lock:
            group.created += 1
            group.live[record.id] = record
        key = id(frame)
        self._waiting[key] = record
        record.forget = lambda: self._waiting.pop(key, None)  # a task that never started
        return record

    def started(self, frame_id: int) -> TaskRecord | None:
        """The recorder saw this coroutine frame start: the task it belongs to, if any."""
        record = self._waiting.pop(frame_id, None)
        if record is not None:
            record.state = "started"
        return record


def running(records: list[TaskRecord]) -> set[int]:
    """The store's probe: which of these started tasks are running now (the others are
    waiting). Running means current in its event loop's thread."""
    current = {id(task) for task in list(getattr(asyncio.tasks, "_current_tasks", {}).values())}
    found = set()
    for record in records:
        task = record.task() if isinstance(record, _Record) and record.task is not None else None
        if task is not None and id(task) in current:
            found.add(record.id)
    return found


class _Record(TaskRecord):
    """A task record with the callbacks its task calls: when done, and when collected; and
    the task itself, not kept alive (only this collector touches it)."""

    __slots__ = ("forget", "task")

    forget: Callable[[], object]
    task: weakref.ref[Any] | None

    def group_done(self, task: Any) -> None:
        now = stdlib.perf_counter_ns()
        self.forget()
        if task.cancelled():
            state, outcome = "cancelled", "CancelledError"
        else:
            # _exception, not exception(): that would mark it retrieved and silence asyncio's
            # "exception was never retrieved" warning.
            error = getattr(task, "_exception", None)
            if error is not None:
                state, outcome = "failed", type(error).__name__
            else:
                state, outcome = "done", type(getattr(task, "_result", None)).__name__
        group = self.group
        with group.lock:
            self.state, self.outcome, self.done_ns = state, outcome, now
            group.finished(self)

    def group_collected(self, _reference: object) -> None:
        self.forget()
        group = self.group
        with group.lock:
            if group.live.pop(self.id, None) is not None:
                group.collected_unfinished += 1


def _follow(task: Any, record: _Record, exclusion: Exclusion | None) -> None:
    """Hear of ``task``'s end and of its collection."""
    record.name = task.get_name()
    record.task = weakref.ref(task, record.group_collected)
    task.add_done_callback(excluded(record.group_done, exclusion))


def _created_at(root: str) -> str:
    """Where the program asked for the task: the first frame outside asyncio and hotpath."""
    frame: FrameType | None = sys._getframe(3)
    own = os.path.join(os.path.dirname(os.path.dirname(__file__)), "")
    while frame is not None:
        file = frame.f_code.co_filename
        if not file.startswith((_ASYNCIO_DIR, own)):
            return f"{shown_path(file, root)}:{frame.f_lineno}"
        frame = frame.f_back
    return "unknown"

"""The recorder: sys.monitoring callbacks that time calls, behind one small interface.

Two implementations keep this contract, and the whole test suite runs on each:
``hotpath.recorder.compiled`` (the callbacks in C, ``_crecorder.c``) and
``hotpath.recorder.python`` (its pure-Python twin, the fallback where the extension is not
built). ``HOTPATH_RECORDER=c|python`` chooses; by default the compiled one when it imports.

What a recorder is given
------------------------
- ``decide(code, frame) -> FunctionInfo | None``: asked once per code object, at its first
  event, whether it is timed (the filter, and the store's cap on functions). Code it declines
  gets ``DISABLE`` at each of its event locations and costs nothing after.
- ``listener``: the asyncio collectors, told only about generator-like calls (see
  ``Listener``); ``None`` when nobody listens.
- ``log_limit``: how many recent calls to keep per function.
- ``count_allocations`` (--alloc): count allocations too; only the compiled recorder can
  (``counts_allocations`` says whether this one does).

What it records
---------------
Per function (FunctionInfo), from the events PY_START, PY_RETURN, PY_UNWIND, PY_RESUME,
PY_THROW and PY_YIELD of every thread:

- a *call* of a plain function lasts from PY_START to PY_RETURN or PY_UNWIND; a call of a
  generator, coroutine or async generator (an *activation*, found again by its frame) from its
  first start to its final return, however often it suspends, and ``active_ns`` sums the time
  it actually ran;
- finished calls: count, sum of durations (``all_ns``), min, max, a log-bucketed histogram,
  errors by exception type name, and the last ``log_limit`` calls (end, duration, thread,
  outcome);
- ``total_ns``: inclusive time with recursive or overlapping calls in one thread counted once;
  ``child_ns``: time spent in timed functions called directly from it (self = all - child);
- an end whose start is not on top of the thread's stack drops the entries above its start
  (they missed their ends); an end with no start at all (begun before hotpath watched) is
  ignored;
- allocations, when counted: per call, the allocator requests the thread made from its start
  to its end (a generator's: while it ran) and the bytes they asked for, callees included;
  summed over every call, over outermost calls (recursion counted once) and over callees
  (own = every - child), with a histogram of bytes per call and the figures in the call log;
  per thread, its running totals. What is counted: requests to Python's MEM and OBJ
  allocators (``PyMem_Malloc``, ``PyObject_Malloc`` and their calloc/realloc; a realloc counts
  as a request of its new size), which is where objects, their buffers, lists and dicts get
  memory. Not counted: objects reused from CPython's free lists (small ints, floats, tuples,
  frames of finished calls: they never reach the allocator), memory that C libraries take from
  ``malloc`` or the RAW domain directly (numpy's arrays), and what hotpath's callbacks allocate.
  Frees are not counted at all: a free does not pass its size, and tracking every block's size
  costs what tracemalloc costs. A thread is counted from its first event under hotpath (the
  thread that starts the recorder, from then). ``exclusion`` (``held_call``) lets hotpath's
  own code that runs inside the program's calls leave its allocations uncounted.

What it answers
---------------
``read(now_ns)`` gives every function's cumulative figures (``FunctionStats``), including calls
in progress: plain calls on some thread's stack now, and the time so far of the outermost one
per thread. ``recent_calls(info, limit)`` gives a function's newest logged calls. Both may be
called from any thread while the program runs. ``live_threads()`` counts threads with state
(ended threads' state is freed); ``given_up()`` counts failures inside the callbacks (an
Exception from deciding or from the listener, an allocation that failed): an event given up
is missing from the figures; a listener's failure loses only what the listener was told.
``thread_allocations()`` gives the per-thread totals of live threads and of the last 100 that
ended. ``start()`` claims a tool id and registers the callbacks; ``stop()`` releases them, and
leaves alone a tool id the program has freed or taken over (then it returns False).

Timestamps are ``time.perf_counter_ns()`` readings (the C recorder reads the same clock).
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
from collections.abc import Callable, Mapping
from types import CodeType, FrameType
from typing import Any, Literal, Protocol

from hotpath.store.functions import CallRecord, FunctionInfo, FunctionStats, ThreadAllocations

monitoring = sys.monitoring
EVENTS = monitoring.events
TOOL_NAME = "hotpath"
# 3 and 4 belong to no standard tool: debuggers (0), coverage (1), profilers such as cProfile
# (2) and optimizers (5) keep theirs, so a program can still run them under hotpath.
PREFERRED_TOOL_IDS = (3, 4, 5, 2, 1, 0)
# Generators that are dropped while suspended may never report an end (3.13.0 sends no event
# for it), so their activations are capped rather than trusted to finish.
MAX_OPEN_ACTIVATIONS = 100_000
WRAPPED_ITEM = "async_generator_wrapped_value"
EVENT_SET = (
    EVENTS.PY_START,
    EVENTS.PY_RETURN,
    EVENTS.PY_UNWIND,
    EVENTS.PY_RESUME,
    EVENTS.PY_THROW,
    EVENTS.PY_YIELD,
)

Implementation = Literal["c", "python"]
Decide = Callable[[CodeType, FrameType | None], FunctionInfo | None]


class NoToolIdError(RuntimeError):
    """Every sys.monitoring tool id is taken by other tools."""


class RecorderUnavailable(RuntimeError):
    """The recorder asked for cannot run here; the message says why."""


class TaskProgress(Protocol):
    """An asyncio task's figures, written by the recorder as its coroutine runs."""

    polls: int  # steps: the first run, then every resume
    active_ns: int  # time the coroutine actually ran


class Listener(Protocol):
    """What the recorder tells the asyncio collectors. Called only for generator-like calls,
    never for plain ones; an exception raised here gives the event up, silently."""

    def task_started(self, frame_id: int) -> TaskProgress | None:
        """A coroutine's first start: the task running it (whose coroutine's frame has this
        id), or None when it is not a task's."""

    def stream_opened(self, function: FunctionInfo) -> Any:
        """An async generator's first start: a stream handle, or None."""

    def stream_yielded(self, stream: Any, item: object) -> None:
        """It yielded ``item``. Only items: an async generator's frame also suspends (and
        fires PY_YIELD) at every ``await`` that waits; the recorder tells them apart by the
        value, which for an item is CPython's internal ``async_generator_wrapped_value``
        around it (gh-129013), whose one referent is the item. Should a later CPython hand
        over the bare item, awaits would count as items: the tests pin this down."""

    def stream_ended(self, stream: Any, error: str | None) -> None:
        """Its call finished: returned (None) or raised (the exception type's name)."""


# held_call(func, *args): func(*args), what it allocates not counted (see excluded).
Exclusion = Callable[..., Any]


class Recorder(Protocol):
    implementation: Implementation
    tool_id: int | None
    counts_allocations: bool
    exclusion: Exclusion | None  # while it counts allocations

    def start(self) -> None: ...

    def stop(self) -> bool: ...

    def read(self, now_ns: int) -> list[FunctionStats]: ...

    def recent_calls(self, info: FunctionInfo, limit: int) -> list[CallRecord]: ...

    def live_threads(self) -> int: ...

    def given_up(self) -> int: ...

    def thread_allocations(self) -> list[ThreadAllocations]: ...


def excluded[**P, R](work: Callable[P, R], exclusion: Exclusion | None) -> Callable[P, R]:
    """``work``, with what it allocates not counted as the program's: for hotpath's own code
    that runs inside the program's calls (the asyncio collectors' records). ``work`` itself
    when nothing is counted, so that it costs nothing then."""
    if exclusion is None:
        return work
    # A partial of the C held_call: called through vectorcall, it makes no argument tuple
    # (a Python wrapper's *args was one, and counted as the program's).
    return functools.partial(exclusion, work)


def claim_tool_id() -> int:
    for tool in PREFERRED_TOOL_IDS:
        if monitoring.get_tool(tool) is None:
            try:
                monitoring.use_tool_id(tool, TOOL_NAME)
            except ValueError:  # taken between the check and the claim
                continue
            return tool
    raise NoToolIdError("every sys.monitoring tool id (0-5) is already in use")


def register(tool: int, callbacks: dict[int, Callable[..., object]]) -> None:
    for event, callback in callbacks.items():
        monitoring.register_callback(tool, event, callback)
    monitoring.set_events(tool, sum(callbacks))


def release_tool_id(tool: int, events: tuple[int, ...]) -> bool:
    """Give the tool id back; False when the program freed it or took it over first (then
    nothing of it is touched: it is the program's now)."""
    if monitoring.get_tool(tool) != TOOL_NAME:
        return False
    # On 3.12 and 3.13 free_tool_id leaves callbacks and events in place: clear them first.
    monitoring.set_events(tool, 0)
    for event in events:
        monitoring.register_callback(tool, event, None)
    monitoring.free_tool_id(tool)
    return True


def compiled_unavailable() -> str | None:
    """Why the compiled recorder cannot run here, or None when it can."""
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        # Its tables rely on the GIL; on a free-threaded build the callbacks run in parallel.
        return "this is a free-threaded build of Python, and the compiled recorder needs the GIL"
    try:
        from hotpath.recorder import _crecorder  # noqa: F401
    except ImportError as error:
        return f"its extension module was not built ({error})"
    return None


def choose(environ: Mapping[str, str] | None = None) -> Implementation:
    """The recorder to use: HOTPATH_RECORDER if set, else the compiled one when it can run.
    Raises RecorderUnavailable for a forced ``c`` that cannot run, ValueError for a bad name."""
    wanted = (environ if environ is not None else os.environ).get("HOTPATH_RECORDER", "")
    wanted = wanted.strip().lower()
    if wanted not in ("", "c", "python"):
        raise ValueError(f"HOTPATH_RECORDER must be c or python, got {wanted!r}")
    if wanted == "python":
        return "python"
    why = compiled_unavailable()
    if why is None:
        return "c"
    if wanted == "c":
        raise RecorderUnavailable(f"HOTPATH_RECORDER=c, but {why}")
    return "python"


def create(
    implementation: Implementation,
    decide: Decide,
    listener: Listener | None,
    log_limit: int,
    count_allocations: bool = False,
) -> Recorder:
    """A recorder; ``count_allocations`` is honoured by the compiled one only."""
    if implementation == "c":
        from hotpath.recorder.compiled import CompiledRecorder

        return CompiledRecorder(decide, listener, log_limit, count_allocations)
    from hotpath.recorder.python import PythonRecorder

    return PythonRecorder(decide, listener, log_limit)

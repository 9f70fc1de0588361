"""What hotpath calls from the standard library, taken before the program runs.

A program may replace these names: a time-freezing library swaps `time.perf_counter_ns` and
friends for fakes and also rewrites every module attribute that still refers to the real
ones (freezegun scans `sys.modules`); a test suite may swap `threading.Lock` for a wrapper.
hotpath's clocks and locks must stay real whatever the program does, so the real functions
are held here as default values of functions, where no such patch reaches them, never as
module attributes. Everything in hotpath calls these instead of `time.*` and `threading.*`.
"""

from __future__ import annotations

import _thread
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

# Each thread's own CPU clock: Linux and most Unixes, not Windows or macOS.
HAS_THREAD_CPU_CLOCKS = hasattr(time, "pthread_getcpuclockid") and hasattr(time, "clock_gettime_ns")
_CPU_CLOCK_OF: Callable[[int], int] = getattr(time, "pthread_getcpuclockid", int)
_READ_CLOCK_NS: Callable[[int], int] = getattr(time, "clock_gettime_ns", int)


def perf_counter_ns(clock: Callable[[], int] = time.perf_counter_ns) -> int:
    return clock()


def time_ns(clock: Callable[[], int] = time.time_ns) -> int:
    return clock()


def monotonic(clock: Callable[[], float] = time.monotonic) -> float:
    return clock()


def sleep(seconds: float, wait: Callable[[float], None] = time.sleep) -> None:
    wait(seconds)


def get_ident(ident: Callable[[], int] = _thread.get_ident) -> int:
    return ident()


def get_native_id(native_id: Callable[[], int] = _thread.get_native_id) -> int:
    return native_id()


def thread_of_caller(
    active: dict[int, threading.Thread] = threading._active,  # type: ignore[attr-defined]
    ident: Callable[[], int] = _thread.get_ident,
) -> threading.Thread | int:
    """The calling thread's Thread, or its ident for a thread threading does not know
    (current_thread() would register a dummy Thread for it, which the program would see)."""
    key = ident()
    return active.get(key) or key


def new_lock(allocate: Callable[[], Any] = _thread.allocate_lock) -> _thread.LockType:
    lock: _thread.LockType = allocate()
    return lock


def new_rlock(make: Callable[[], Any] = _thread.RLock) -> Any:
    return make()


def current_thread(
    current: Callable[[], threading.Thread] = threading.current_thread,
) -> threading.Thread:
    return current()


def all_threads(
    enumerate_: Callable[[], list[threading.Thread]] = threading.enumerate,
) -> list[threading.Thread]:
    return enumerate_()


def main_thread(main: Callable[[], threading.Thread] = threading.main_thread) -> threading.Thread:
    return main()


def current_frames(
    frames: Callable[[], dict[int, FrameType]] = sys._current_frames,
) -> dict[int, FrameType]:
    return frames()


def thread_cpu_clock(ident: int, clock: Callable[[int], int] = _CPU_CLOCK_OF) -> int:
    """The id of thread ``ident``'s CPU clock (only where ``HAS_THREAD_CPU_CLOCKS``)."""
    return clock(ident)


def clock_ns(clock_id: int, read: Callable[[int], int] = _READ_CLOCK_NS) -> int:
    return read(clock_id)

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
import threading
import time
from collections.abc import Callable
from typing import Any


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

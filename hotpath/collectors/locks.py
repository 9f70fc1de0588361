"""Locks: who waits, who holds, for how long, with no code changes.

What the program's own code creates (the function filter decides, by the creating frame, as
for queues) is tracked; everything else is left exactly as it was and costs nothing per
operation:

- ``threading.Lock`` and ``RLock`` are factories (3.13's ``Lock`` a type, which stays one for
  ``isinstance``): the program's calls get a tracked lock of ``hotpath.recorder.locks`` (C or
  Python, with the recorder), the standard library's and hotpath's the real one, after one
  look at the calling frame (a verdict kept per code object).
- ``Condition``, ``Semaphore``/``BoundedSemaphore`` and ``Event`` of both ``threading`` and
  ``asyncio``, and ``asyncio.Lock``, keep their classes: their ``__init__`` is wrapped in
  place, and a tracked instance gets its own ``acquire``/``release``/``wait`` attributes
  (``async with`` and ``Condition`` look those up on the instance). The one change at class
  level is ``threading.Semaphore.__enter__``, which calls ``self.acquire()`` instead of being
  the class's ``acquire``, so that ``with semaphore:`` reaches a tracked instance's own.
- A ``Condition`` created without a lock gets a tracked ``RLock`` (``asyncio``: ``Lock``)
  counted at the condition's own site; one given a lock leaves its acquisitions to that
  lock's site and reports its ``wait()`` calls.

Errors a tracked semaphore, condition, event or asyncio lock raises (a release too many, a
cancelled wait) pass through one frame of this module: an uncaught one's traceback drops it
(hotpath/launcher.py), one the program prints itself shows it. The compiled thread locks add
no frame.
"""

from __future__ import annotations

import _thread
import asyncio
import asyncio.locks
import functools
import os
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable
from types import CodeType, FrameType
from typing import Any

from hotpath import stdlib
from hotpath.collectors import Collector
from hotpath.collectors.sites import (
    Patches,
    Selects,
    Verdicts,
    creating_frame,
    kind_name,
    site_name,
)
from hotpath.filters import shown_path
from hotpath.recorder import Exclusion, excluded
from hotpath.recorder.locks import LockAccount, Who, lock_kit
from hotpath.store.locks import Holder, LiveLocks, LockSite, LockTable, Names

ATTRIBUTE = "_hotpath_lock"
MAX_PROBED = 10_000  # live objects of one site whose holders a reading looks at
# Holds of one semaphore not released yet that are timed: one acquired again and again and
# never released (a counter of permits) would otherwise grow a list for ever. Past it,
# acquisitions are still counted, their holds are not.
MAX_OPEN = 1_000
_PASSING = frozenset(  # files whose frames are the lock's, not the function that takes it
    os.path.normcase(os.path.abspath(module.__file__ or ""))
    for module in (threading, asyncio.locks, sys.modules[__name__])
)


class Holds:
    """A tracked semaphore's, asyncio lock's, condition's or event's state: acquisitions not
    released yet, who waits to acquire, who waits in ``wait()``. ``who`` is a thread (as
    hotpath.recorder.locks logs it) or a task's name, ``key`` the thread's ident or the
    task's ``id``."""

    __slots__ = ("account", "guard", "lock", "open", "waiting", "waiting_on")

    def __init__(self, account: Any, lock: Any = None) -> None:
        self.account = account  # a LockAccount, but a condition's (which only counts waits)
        self.guard = stdlib.new_rlock()  # reentrant, as a site's lock is
        self.lock = lock  # a condition's own tracked lock, counted at the condition's site
        self.open: list[tuple[int, int, int, Who, CodeType | None]] = []
        self.waiting = 0
        self.waiting_on = 0

    def begin(self, now: int, wait: int | None, code: CodeType | None) -> None:
        """An acquisition: at once (``wait`` None), or after waiting ``wait`` ns."""
        key, who = _holder()
        with self.guard:
            if len(self.open) < MAX_OPEN:
                self.open.append((now, wait or 0, key, who, code))
        if wait is None:
            self.account.took()
        else:
            self.account.waited(True, wait)

    def end(self) -> None:
        """A release: the releasing holder's newest hold ends, or else the oldest one (a
        semaphore may be released by anyone)."""
        now = stdlib.perf_counter_ns()
        key, _ = _holder()
        with self.guard:
            if not self.open:
                return
            index = next(
                (i for i in range(len(self.open) - 1, -1, -1) if self.open[i][2] == key), 0
            )
            since, wait, _, who, code = self.open.pop(index)
        self.account.held(since, now - since, wait, who, code)

    def count(self, attribute: str, step: int) -> None:
        with self.guard:
            setattr(self, attribute, getattr(self, attribute) + step)

    def state(self) -> tuple[list[tuple[Who, int]], int, int]:
        """(holders and since when, waiting to acquire, waiting in wait()) now."""
        with self.guard:
            holders = [(hold[3], hold[0]) for hold in self.open]
            waiting, waiting_on = self.waiting, self.waiting_on
        if self.lock is not None:
            more, also_waiting, _ = _state(self.lock)
            holders += more
            waiting += also_waiting
        return holders, waiting, waiting_on


def _state(instance: Any) -> tuple[list[tuple[Who, int]], int, int]:
    """What a tracked object says now: (holders and since when, waiting, waiting in wait())."""
    holds = getattr(instance, ATTRIBUTE, None)
    if holds is not None:
        state: tuple[list[tuple[Who, int]], int, int] = holds.state()
        return state
    who, since, waiting = instance._hotpath_state()  # a tracked thread lock
    return ([(who, since)] if who is not None else []), waiting, 0


def _holder() -> tuple[int, Who]:
    """(key, who) of the running task, or else of the thread."""
    loop = asyncio.events._get_running_loop()
    task = asyncio.tasks.current_task(loop) if loop is not None else None
    if task is not None:
        return id(task), task.get_name()
    return stdlib.get_ident(), stdlib.thread_of_caller()


def _taker(frame: FrameType | None) -> CodeType | None:
    """The program's function that asked for the lock: past the lock's own frames."""
    while frame is not None and os.path.normcase(frame.f_code.co_filename) in _PASSING:
        frame = frame.f_back
    return frame.f_code if frame is not None else None


def _semaphore_enter(self: Any, *args: Any, **kwargs: Any) -> Any:
    """``with semaphore:`` calls the instance's ``acquire``: a tracked one's own."""
    return self.acquire(*args, **kwargs)


_KINDS = (
    (threading.BoundedSemaphore, "threading.BoundedSemaphore"),
    (threading.Semaphore, "threading.Semaphore"),
    (threading.Condition, "threading.Condition"),
    (threading.Event, "threading.Event"),
    (asyncio.BoundedSemaphore, "asyncio.BoundedSemaphore"),
    (asyncio.Semaphore, "asyncio.Semaphore"),
    (asyncio.Lock, "asyncio.Lock"),
    (asyncio.Condition, "asyncio.Condition"),
    (asyncio.Event, "asyncio.Event"),
)


class LockCollector(Collector):
    def __init__(
        self,
        table: LockTable,
        selects: Selects,
        root: str,
        log_limit: int,
        implementation: str,
        exclusion: Exclusion | None = None,
    ) -> None:
        """``implementation``: the recorder's, whose twin of the thread locks is used. With
        ``exclusion`` (--alloc), what tracking allocates in the program's calls (a new
        site, a tracked object's notes) is not counted as the program's."""
        self.table = table
        self.exclusion = exclusion
        self.root = root
        self.log_limit = log_limit
        # A Condition's wait runs through _timed_wait: the lock's taker is above it.
        self.kit = lock_kit(implementation, (_timed_wait.__code__,))
        self._verdicts = Verdicts(selects)
        self._patches = Patches()
        # The live objects of each site, not kept alive. Their own lock (see channels.py).
        self._instances: dict[LockSite, weakref.WeakSet[Any]] = {}
        self._instances_lock = stdlib.new_rlock()
        table.attach(self.live, self.names)

    def provides(self) -> dict[str, bool]:
        return {"locks": True}

    # -- installing ---------------------------------------------------------------------------

    def install(self) -> None:
        patches = self._patches
        exclusion = self.exclusion
        patches.replace(threading, "Lock", self._lock_factory(threading.Lock))
        patches.replace(threading, "RLock", self._rlock_factory(threading.RLock))
        for condition in (threading.Condition, asyncio.Condition):
            self._wrap_condition_init(condition)
        for holder in (threading.Semaphore, asyncio.Semaphore, asyncio.Lock):
            patches.wrap_init(holder, excluded(self._holder_created, exclusion))
        for event in (threading.Event, asyncio.Event):
            patches.wrap_init(event, excluded(self._event_created, exclusion))
        patches.replace(threading.Semaphore, "__enter__", _semaphore_enter)

    def forget_in_child(self) -> None:
        """The program's objects tracked before the fork go on recording in the child, into
        notes nobody reads there; any Python lock of those notes a thread of hotpath's (a
        reading) held at the fork would stay held for ever: they start afresh. (The compiled
        accounts have no lock: the GIL guards them.)"""
        self.uninstall()
        self._instances_lock._at_fork_reinit()
        for site, objects in self._instances.items():
            site.lock._at_fork_reinit()
            if isinstance(site.account, LockAccount):
                site.account.lock._at_fork_reinit()
            for instance in objects:
                holds = getattr(instance, ATTRIBUTE, None)
                while holds is not None:  # a condition's, then its own lock's
                    holds.guard._at_fork_reinit()
                    holds = getattr(holds.lock, ATTRIBUTE, None)

    def uninstall(self) -> None:
        self._patches.undo()

    def _allocator(
        self, make: Callable[..., Any], tracked: Callable[[Any, Any], Any], kind: str
    ) -> Callable[..., Any]:
        """``allocate(frame, *args)``: a real lock, made by ``make(*args)``, tracked when
        ``frame`` is the program's. What tracking allocates is hotpath's (``exclusion``); the
        lock itself stands for the program's own."""
        site_at = excluded(self._site_at, self.exclusion)
        counted = excluded(self._counted, self.exclusion)

        def allocate(frame: FrameType, *args: Any, **kwargs: Any) -> Any:
            site = site_at(frame, kind, True)
            if site is None:
                return make(*args, **kwargs)
            return counted(site, tracked(make(*args, **kwargs), site.account))

        return allocate

    def _lock_factory(self, real: Any) -> Any:
        allocate = self._allocator(_thread.allocate_lock, self.kit.lock, "threading.Lock")
        if isinstance(real, type):  # 3.13: a type, and isinstance() against it must hold
            return _lock_type(real, allocate)

        def allocate_lock() -> Any:
            return allocate(sys._getframe(1))

        allocate_lock.__name__ = allocate_lock.__qualname__ = real.__name__
        allocate_lock.__doc__ = real.__doc__
        # A staticmethod: the builtin it replaces does not bind as a method when a class
        # keeps it as an attribute (werkzeug's ``lock_class = threading.Lock``, called
        # ``self.lock_class()``); a function would, and be given the instance.
        return staticmethod(allocate_lock)

    def _rlock_factory(self, real: Callable[..., Any]) -> Callable[..., Any]:
        allocate = self._allocator(_thread.RLock, self.kit.rlock, "threading.RLock")

        def RLock(*args: Any, **kwargs: Any) -> Any:
            return allocate(sys._getframe(1), *args, **kwargs)

        RLock.__doc__ = real.__doc__
        return RLock

    def _wrap_condition_init(self, cls: type) -> None:
        """A Condition made without a lock gets a tracked one, counted at its own site (its
        ``__init__`` runs again with it: all it does is take the lock's methods)."""
        original = cls.__dict__["__init__"]
        created = excluded(self._condition_created, self.exclusion)

        def __init__(self: Any, lock: Any = None) -> None:
            original(self, lock)
            created(self, original, lock is None)

        __init__.__qualname__ = original.__qualname__
        __init__.__doc__ = original.__doc__
        self._patches.replace(cls, "__init__", __init__)

    # -- an object is created -----------------------------------------------------------------

    def _site_at(self, frame: FrameType | None, kind: str, thread_lock: bool) -> LockSite | None:
        """The site of an object the program creates at ``frame``; None when it is not the
        program's (or past the cap on sites). A site of thread locks (and of threading
        conditions, which own one) gets its account from the kit, the others a Python one."""
        if frame is None or not self._verdicts(frame):
            return None

        def new(site_id: int) -> LockSite:
            name, location = site_name(frame, self.root)
            account = (self.kit.account if thread_lock else LockAccount)(self.log_limit)
            return LockSite(site_id, name, location, kind, account)

        return self.table.site(frame.f_code.co_filename, frame.f_lineno, thread_lock, new)

    def _counted(self, site: LockSite, instance: Any) -> Any:
        with site.lock:
            site.created += 1
        with self._instances_lock:
            self._instances.setdefault(site, weakref.WeakSet()).add(instance)
        return instance

    def _created(self, instance: Any, thread_lock: bool = False) -> LockSite | None:
        """The site of an object whose ``__init__`` just ran (patched): 1 up from here is the
        collector's hook, 2 the patched ``__init__``, 3 its caller."""
        kind = kind_name(instance, _KINDS)
        site = self._site_at(creating_frame(instance, 3), kind, thread_lock)
        if site is not None:
            self._counted(site, instance)
        return site

    def _condition_created(
        self, instance: Any, original: Callable[[Any, Any], None], own_lock: bool
    ) -> None:
        asynchronous = isinstance(instance, asyncio.Condition)
        site = self._created(instance, thread_lock=not asynchronous)
        if site is None:
            return
        lock: Any = None
        if own_lock:
            if asynchronous:
                lock = asyncio.Lock()  # hotpath's frame: the program's count nothing for it
                _track_holder(lock, Holds(site.account))
            else:
                lock = self.kit.rlock(_thread.RLock(), site.account)
            original(instance, lock)
        holds = Holds(site.account, lock)
        setattr(instance, ATTRIBUTE, holds)
        instance.wait = _wait_method(instance, site, holds, asynchronous)

    def _holder_created(self, instance: Any) -> None:
        """A semaphore (threading, asyncio) or an asyncio lock."""
        site = self._created(instance)
        if site is not None:
            _track_holder(instance, Holds(site.account))

    def _event_created(self, instance: Any) -> None:
        site = self._created(instance)
        if site is not None:
            holds = Holds(site.account)
            setattr(instance, ATTRIBUTE, holds)
            instance.wait = _wait_method(instance, site, holds, isinstance(instance, asyncio.Event))

    # -- what the store asks ------------------------------------------------------------------

    def live(self, site: LockSite) -> LiveLocks:
        """The store's probe: what a site's live objects say now (the first MAX_PROBED of
        them: holders and waiters of more are not looked for)."""
        with self._instances_lock:  # a WeakSet added to while it is listed raises
            objects = list(self._instances.get(site, ()))
        name = self.names()
        holders: list[tuple[Holder, int]] = []
        waiting = waiting_on = 0
        for instance in objects[:MAX_PROBED]:
            held, waits, waits_on = _state(instance)
            holders += [(name(who, None)[0], since) for who, since in held]
            waiting += waits
            waiting_on += waits_on
        return LiveLocks(len(objects), holders, waiting, waiting_on)

    def names(self) -> Names:
        """How logged holders and functions are named: a thread by its name now, a task by
        its own; a function by its qualified name and where it is defined."""
        root = self.root

        def name(who: Who, code: CodeType | None) -> tuple[Holder, tuple[str, str] | None]:
            by = who.name if isinstance(who, threading.Thread) else who
            if code is None:
                return by, None
            return by, (
                code.co_qualname,
                f"{shown_path(code.co_filename, root)}:{code.co_firstlineno}",
            )

        return name


# The tracked methods are partials of the functions below, given a weak reference to their
# object and its class's own method: a bound method kept in the object's __dict__ would make
# a reference cycle, and the object would then outlive its last use until a collection.
Ref = Callable[[], Any]


def _track_holder(instance: Any, holds: Holds) -> None:
    """Give a semaphore (threading, asyncio) or an asyncio lock its tracked methods."""
    setattr(instance, ATTRIBUTE, holds)
    ref, cls = weakref.ref(instance), type(instance)
    semaphore = isinstance(instance, threading.Semaphore)
    if semaphore:
        instance.acquire = functools.partial(_semaphore_acquire, ref, cls.acquire, holds)
        instance.release = functools.partial(_semaphore_release, ref, cls.release, holds)
    else:
        instance.acquire = functools.partial(_async_acquire, ref, cls.acquire, cls.locked, holds)
        instance.release = functools.partial(_async_release, ref, cls.release, holds)


def _semaphore_acquire(
    ref: Ref,
    acquire: Callable[..., bool],
    holds: Holds,
    blocking: bool = True,
    timeout: float | None = None,
) -> bool:
    semaphore = ref()
    code = _taker(sys._getframe(1))
    if blocking or timeout is None:  # else: the semaphore's own error
        if acquire(semaphore, False):
            holds.begin(stdlib.perf_counter_ns(), None, code)
            return True
        if not blocking:
            holds.account.refused()
            return False
    start = stdlib.perf_counter_ns()
    holds.count("waiting", 1)
    try:
        got = acquire(semaphore, blocking, timeout)
    finally:
        holds.count("waiting", -1)
    now = stdlib.perf_counter_ns()
    if got:
        holds.begin(now, now - start, code)
    else:
        holds.account.waited(False, now - start)
    return got


def _semaphore_release(ref: Ref, release: Callable[..., None], holds: Holds, n: int = 1) -> None:
    release(ref(), n)
    for _ in range(min(n, len(holds.open))):
        holds.end()


async def _async_acquire(
    ref: Ref, acquire: Callable[[Any], Awaitable[bool]], locked: Callable[[Any], bool], holds: Holds
) -> bool:
    lock = ref()
    code = _taker(sys._getframe(1))
    start = stdlib.perf_counter_ns()
    contended = locked(lock)  # it will wait
    if contended:
        holds.count("waiting", 1)
    try:
        await acquire(lock)
    except BaseException:  # cancelled while waiting: asyncio's timeouts end so
        if contended:
            holds.account.waited(False, stdlib.perf_counter_ns() - start)
        raise
    finally:
        if contended:
            holds.count("waiting", -1)
    now = stdlib.perf_counter_ns()
    holds.begin(now, now - start if contended else None, code)
    return True


def _async_release(ref: Ref, release: Callable[[Any], None], holds: Holds) -> None:
    release(ref())
    holds.end()


def _wait_method(instance: Any, site: LockSite, holds: Holds, asynchronous: bool) -> Any:
    """A condition's or event's ``wait``, timed: a wait that times out (asyncio: is
    cancelled) counts as timed out."""
    timed = _timed_async_wait if asynchronous else _timed_wait
    return functools.partial(timed, weakref.ref(instance), type(instance).wait, site, holds)


def _timed_wait(
    ref: Ref,
    wait: Callable[[Any, float | None], bool],
    site: LockSite,
    holds: Holds,
    timeout: float | None = None,
) -> bool:
    start = stdlib.perf_counter_ns()
    holds.count("waiting_on", 1)
    got = False
    try:
        got = wait(ref(), timeout)
        return got
    finally:
        holds.count("waiting_on", -1)
        site.waited(stdlib.perf_counter_ns() - start, bool(got))


async def _timed_async_wait(
    ref: Ref, wait: Callable[[Any], Awaitable[bool]], site: LockSite, holds: Holds
) -> bool:
    start = stdlib.perf_counter_ns()
    holds.count("waiting_on", 1)
    got = False
    try:
        result = await wait(ref())
        got = True
        return result
    finally:
        holds.count("waiting_on", -1)
        site.waited(stdlib.perf_counter_ns() - start, got)


def _lock_type(real: type, allocate: Callable[[FrameType], Any]) -> type:
    """3.13's ``threading.Lock``, a type: calling it makes a lock (tracked or not), and
    ``isinstance``/``issubclass`` against it answer for the real type."""

    class LockMeta(type):
        def __instancecheck__(cls, instance: object) -> bool:
            return isinstance(instance, real)

        def __subclasscheck__(cls, subclass: type) -> bool:
            return issubclass(subclass, real)

        def __call__(cls, *args: Any, **kwargs: Any) -> Any:
            if args or kwargs:
                return real(*args, **kwargs)  # the real one's error
            return allocate(sys._getframe(1))

    class lock(metaclass=LockMeta):
        __doc__ = real.__doc__

        def __init_subclass__(cls, **kwargs: Any) -> None:
            name = f"{real.__module__}.{real.__qualname__}"
            raise TypeError(f"type '{name}' is not an acceptable base type")

    lock.__module__ = real.__module__
    lock.__qualname__ = real.__qualname__
    return lock

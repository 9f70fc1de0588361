"""Tracked thread locks: ``threading.Lock`` and ``RLock`` objects the program creates, timed.

Two implementations keep this contract, and the whole test suite runs on each:
``hotpath.recorder._locks`` (C, ``_locks.c``) and this module, its pure-Python twin, chosen
with the recorder (``HOTPATH_RECORDER``; ``lock_kit``).

A tracked lock wraps a real lock (``_thread.lock`` or ``_thread.RLock``, made by the caller)
and behaves as it: ``acquire(blocking, timeout)`` with the real one's argument checks and
errors, ``release``, ``with``, the attributes it does not wrap (``locked``, ``_is_owned``,
``_recursion_count``, ...) looked up on the real lock, ``isinstance`` against the real type
(``__class__`` says it), the real lock's ``repr`` with this object's address, pickling and
copying refused with the real message. ``type()`` shows hotpath's class, named as the real
one. An RLock's ``_release_save`` and ``_acquire_restore`` (what ``Condition.wait`` calls)
end the hold and take the lock again, so a hold never spans a wait.

What it records, into the ``LockAccount`` of its creation site (shared by every lock made at
that line), read whole by ``read()``:

- counts: acquisitions (an RLock's outermost ones only: a lock taken recursively is one
  hold), contended ones (the first, non-blocking try failed and the thread waited), failed
  non-blocking tries, timed-out waits, and the time spent waiting (contended and timed-out
  waits together), each counted when it happens;
- the distribution of hold times (a hold ends at ``release``) and of contended waits, as
  log-bucketed histograms (count, total, max, ``{bucket: count}`` as
  ``hotpath.store.histogram`` keeps them);
- the last ``log_limit`` holds, oldest first: ``(acquired_at_ns, hold_ns, wait_ns, who,
  code)``, ``who`` the thread that took the lock (its ``threading.Thread``, found once per
  thread: an ident is reused once its thread ends, and a name is wanted after that; the ident
  of a thread threading does not know), ``code`` the code object of the function that called
  ``acquire`` (or ran the ``with``), the first above Condition's frames.

``Condition._is_owned``, which asks a plain lock whether it is held by trying it without
blocking, is not counted at all: that try is no acquisition of the program's.

Timestamps are ``time.perf_counter_ns()`` readings. A lock's own state (its holder, since
when, the waiters now: ``_hotpath_state()``) is written only by the thread that holds it,
or by a waiter under the account's lock.
"""

from __future__ import annotations

import _thread
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, NamedTuple, Protocol

from hotpath import stdlib
from hotpath.store.histogram import Distribution, DistributionReading

Who = threading.Thread | int | str  # a thread, a thread threading does not know, a task
Logged = tuple[int, int, int, Who, CodeType | None]
Hold = tuple[int, int, Who | None, CodeType | None]  # since, wait, who, code
_IS_OWNED = threading.Condition._is_owned.__code__  # type: ignore[attr-defined]
# Frames that call a lock's methods for another function: the taker is the first above them.
_CONDITION_PASSING = (
    threading.Condition.__enter__.__code__,
    threading.Condition.wait.__code__,
    threading.Condition.wait_for.__code__,
)
_passing = frozenset(_CONDITION_PASSING)
_TIMEOUT_MAX = _thread.TIMEOUT_MAX


class AccountReading(NamedTuple):
    acquisitions: int
    contended: int
    failed: int  # non-blocking tries that found the lock taken
    timeouts: int
    wait_ns: int  # all time spent waiting, timed-out waits included
    hold: DistributionReading
    wait: DistributionReading  # contended acquisitions' waits
    log: list[Logged]  # the last holds, oldest first


class Account(Protocol):
    """A creation site's account, as the store reads it (either twin's)."""

    def read(self) -> AccountReading: ...


class LockAccount:
    """What the locks of one creation site record (see the module's docstring). Also used,
    from Python, by the semaphores and asyncio locks of hotpath.collectors.locks."""

    __slots__ = (
        "acquisitions",
        "contended",
        "failed",
        "hold",
        "lock",
        "log",
        "timeouts",
        "wait",
        "wait_ns",
    )

    def __init__(self, log_limit: int) -> None:
        # Reentrant: a record allocates, which can run a finalizer that releases a lock of
        # the same site, in the same thread.
        self.lock = stdlib.new_rlock()
        self.acquisitions = 0
        self.contended = 0
        self.failed = 0
        self.timeouts = 0
        self.wait_ns = 0
        self.hold = Distribution()
        self.wait = Distribution()
        self.log: deque[Logged] = deque(maxlen=log_limit)

    def read(self) -> AccountReading:
        with self.lock:
            return AccountReading(
                self.acquisitions,
                self.contended,
                self.failed,
                self.timeouts,
                self.wait_ns,
                self.hold.read(),
                self.wait.read(),
                list(self.log),
            )

    def took(self) -> None:
        """An acquisition that did not wait."""
        with self.lock:
            self.acquisitions += 1

    def refused(self) -> None:
        with self.lock:
            self.failed += 1

    def waited(self, got: bool, wait_ns: int) -> None:
        """A wait ended: the lock was got, or the wait timed out."""
        with self.lock:
            self.wait_ns += wait_ns
            if got:
                self.acquisitions += 1
                self.contended += 1
                self.wait.add(wait_ns)
            else:
                self.timeouts += 1

    def held(
        self, since_ns: int, hold_ns: int, wait_ns: int, who: Who, code: CodeType | None
    ) -> None:
        with self.lock:
            self.hold.add(hold_ns)
            self.log.append((since_ns, hold_ns, wait_ns, who, code))


def _arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any] | None:
    """(blocking, timeout) of an ``acquire`` call; None for arguments the real lock refuses."""
    if not args and not kwargs:
        return True, -1
    if len(args) > 2 or not kwargs.keys() <= {"blocking", "timeout"}:
        return None
    given = dict(zip(("blocking", "timeout"), args, strict=False))
    if given.keys() & kwargs.keys():
        return None
    given.update(kwargs)
    return given.get("blocking", True), given.get("timeout", -1)


def _quick(blocking: object, timeout: object) -> bool:
    """Whether a first try without blocking can stand for this call: its arguments are ones
    the real lock accepts (the others go to it as they are, for its own errors)."""
    if type(timeout) not in (int, float):
        return False
    if timeout == -1:
        return True
    return bool(blocking) and 0 <= timeout <= _TIMEOUT_MAX  # type: ignore[operator]


def _taker(frame: FrameType) -> CodeType:
    """The code of the function that takes the lock: the caller's, or the first above the
    frames that pass a lock on for another function (``configure``)."""
    code = frame.f_code
    while code in _passing and frame.f_back is not None:
        frame = frame.f_back
        code = frame.f_code
    return code


class _Tracked:
    """What a tracked Lock and RLock share (see the module's docstring)."""

    __slots__ = (
        "__weakref__",
        "_account",
        "_code",
        "_inner",
        "_since",
        "_wait",
        "_waiting",
        "_who",
    )

    def __init__(self, inner: Any, account: LockAccount) -> None:
        self._inner = inner
        self._account = account
        self._since = 0
        self._wait = 0
        self._who: Who | None = None  # the holder; None: free
        self._code: CodeType | None = None
        self._waiting = 0

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance() against the real lock's type holds
        return type(self._inner)

    def __getattr__(self, name: str) -> Any:
        if name == "_inner":  # not set yet: no lock to ask
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"{repr(self._inner).rpartition(' at 0x')[0]} at {id(self):#x}>"

    def __reduce_ex__(self, protocol: object) -> Any:
        kind = type(self._inner)
        raise TypeError(f"cannot pickle '{kind.__module__}.{kind.__qualname__}' object")

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        """``acquire(blocking=True, timeout=-1)``, taking what the real one takes."""
        return self._take(sys._getframe(1), args, kwargs)

    def __enter__(self) -> bool:
        return self._take(sys._getframe(1))

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _take(
        self, frame: FrameType, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> bool:
        inner = self._inner
        kwargs = kwargs or {}
        blocking, timeout = _arguments(args, kwargs) or (True, None)
        # Who and where, found before the real lock is asked for (see _locks.c).
        who, code = stdlib.thread_of_caller(), _taker(frame)
        if _quick(blocking, timeout):
            if inner.acquire(False):
                # Condition._is_owned's try is not the program's: no hold begins.
                if code is not _IS_OWNED and self._begin(stdlib.perf_counter_ns(), 0, who, code):
                    self._account.took()
                return True
            if not blocking:
                if code is not _IS_OWNED:
                    self._account.refused()
                return False
        # It waits, or has arguments the real lock must judge: the call goes to it as made.
        start = self._waiting_now(1)
        try:
            got = inner.acquire(*args, **kwargs)
        finally:
            now = self._waiting_now(-1)
        if got and not self._begin(now, now - start, who, code):
            return True  # an RLock its holder took again, with arguments only it could judge
        self._account.waited(got, now - start)
        return bool(got)

    def _waiting_now(self, step: int) -> int:
        """One thread more (or fewer) waits for it; the time."""
        with self._account.lock:
            self._waiting += step
        return stdlib.perf_counter_ns()

    def _begin(self, now: int, wait: int, who: Who, code: CodeType, depth: int = 1) -> bool:
        """The lock was just got: start a hold (False: it was already held by this thread)."""
        self._since = now
        self._wait = wait
        self._who = who
        self._code = code
        return True

    def _let_go(self) -> Hold:
        """The hold now, cleared: done before the real lock is released, after which another
        thread's acquire writes the fields (a release that fails found no hold to clear)."""
        hold = (self._since, self._wait, self._who, self._code)
        self._who = None
        self._code = None
        return hold

    def _log(self, now: int, hold: Hold) -> None:
        """Log a hold that ended at ``now`` (none when Condition._is_owned's try held it)."""
        since, wait, who, code = hold
        if who is not None:
            self._account.held(since, now - since, wait, who, code)

    def _at_fork_reinit(self) -> None:
        self._inner._at_fork_reinit()
        self._who = None
        self._code = None
        self._waiting = 0

    def _hotpath_state(self) -> tuple[Who | None, int, int]:
        """(holder or None, held since, threads waiting now)."""
        return self._who, self._since, self._waiting


class TrackedLock(_Tracked):
    """A ``threading.Lock`` of the program's."""

    __slots__ = ()

    def release(self) -> None:
        now = stdlib.perf_counter_ns()
        hold = self._let_go()
        self._inner.release()
        self._log(now, hold)

    acquire_lock = _Tracked.acquire
    release_lock = release


class TrackedRLock(_Tracked):
    """A ``threading.RLock`` of the program's: only its outermost acquisitions are holds."""

    __slots__ = ("_depth",)

    def __init__(self, inner: Any, account: LockAccount) -> None:
        super().__init__(inner, account)
        self._depth = 0  # acquisitions by the holder not yet released; the real lock's count

    def _begin(self, now: int, wait: int, who: Who, code: CodeType, depth: int = 1) -> bool:
        if self._depth:
            self._depth += 1
            return False
        self._depth = depth
        return super()._begin(now, wait, who, code)

    def _mine(self) -> bool:
        """Held by this thread (else the real lock's release raises its own error)."""
        return bool(self._depth) and bool(self._inner._is_owned())

    def release(self) -> None:
        inner = self._inner
        if self._depth > 1 and self._mine():
            self._depth -= 1
            inner.release()
        elif self._mine():
            now = stdlib.perf_counter_ns()
            hold = self._let_go()
            self._depth = 0
            inner.release()
            self._log(now, hold)
        else:
            inner.release()

    def _release_save(self) -> Any:
        """Condition.wait lets the lock go, however deep: the hold ends."""
        inner = self._inner
        if not self._mine():
            return inner._release_save()
        now = stdlib.perf_counter_ns()
        hold = self._let_go()
        self._depth = 0
        state = inner._release_save()
        self._log(now, hold)
        return state

    def _acquire_restore(self, state: Any) -> None:
        """Condition.wait takes the lock back, as deep as it was: a new hold."""
        inner = self._inner
        if not (isinstance(state, tuple) and state and type(state[0]) is int and state[0] > 0):
            inner._acquire_restore(state)  # the real lock's error
            return
        who, code = stdlib.thread_of_caller(), _taker(sys._getframe(1))
        count = state[0]
        if inner.acquire(False):
            for _ in range(count - 1):  # the owner's: at once
                inner.acquire()
            self._begin(stdlib.perf_counter_ns(), 0, who, code, count)
            self._account.took()
            return
        start = self._waiting_now(1)
        try:
            inner._acquire_restore(state)
        finally:
            now = self._waiting_now(-1)
        self._begin(now, now - start, who, code, count)
        self._account.waited(True, now - start)


def _named_like(cls: type, real: type) -> None:
    cls.__module__ = real.__module__
    cls.__qualname__ = cls.__name__ = real.__qualname__


_named_like(TrackedLock, _thread.LockType)
_named_like(TrackedRLock, _thread.RLock)


class LockKit(NamedTuple):
    """One implementation of the contract: its account and its two lock types."""

    account: Callable[[int], Account]  # (log_limit)
    lock: Callable[[Any, Any], Any]
    rlock: Callable[[Any, Any], Any]


PYTHON_KIT = LockKit(LockAccount, TrackedLock, TrackedRLock)


def lock_kit(implementation: str, passing: tuple[CodeType, ...] = ()) -> LockKit:
    """The twin that goes with the recorder chosen (the compiled one with the compiled), set
    up to see past ``passing``, the codes of hotpath's frames that call a lock's methods for
    the program (besides Condition's own)."""
    global _passing
    _passing = frozenset((*_CONDITION_PASSING, *passing))
    if implementation != "c":
        return PYTHON_KIT
    try:
        from hotpath.recorder import _locks
    except ImportError:  # built without it (a failed compile): the twin keeps the contract
        return PYTHON_KIT

    class CompiledAccount(_locks.LockAccount):
        """The compiled account, read as the Python one is."""

        __slots__ = ()

        def read(self) -> AccountReading:
            acquisitions, contended, failed, timeouts, wait_ns, hold, wait, log = self.raw()
            return AccountReading(
                acquisitions, contended, failed, timeouts, wait_ns,
                _distribution(hold), _distribution(wait), list(log),
            )  # fmt: skip

    _locks.configure(_IS_OWNED, tuple(_passing), _TIMEOUT_MAX, stdlib.thread_of_caller)
    return LockKit(CompiledAccount, _locks.TrackedLock, _locks.TrackedRLock)


def _distribution(raw: tuple[int, int, int, dict[int, int]]) -> DistributionReading:
    count, total, largest, buckets = raw
    return DistributionReading(count, total, largest, Counter(buckets))

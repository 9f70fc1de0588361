"""Channels: asyncio and thread-safe queues report their traffic, with no code changes.

The queue classes keep their identity (``isinstance``, subclassing, every method): hotpath
patches their internal ``_init``-time and ``_put``/``_get`` hooks in place. Those run only once
a put or get is certain (after the full/empty checks, under the queue's own lock for the
thread-safe ones), so ``QueueFull``, ``Empty`` and timeouts never pass through hotpath's frames
and a traceback reads as without hotpath. ``queue.SimpleQueue`` is written in C and has no such
hooks: it is replaced by a subclass of itself.

Only queues created by the program's own code (the function filter decides, by the creating
frame) are tracked: the event loop's, the thread pool's and hotpath's own queues cost one
attribute read per operation and are never reported.
"""

from __future__ import annotations

import asyncio
import queue
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from hotpath import stdlib
from hotpath.collectors import Collector
from hotpath.collectors.messages import describe, who
from hotpath.collectors.sites import Patches, Selects, creating_frame, kind_name, site_name
from hotpath.recorder import Exclusion, excluded
from hotpath.store.channels import ChannelEvent, ChannelSite, ChannelTable, LiveQueues

ATTRIBUTE = "_hotpath_channel"


class TrackedQueue:
    """hotpath's notes on one queue: which site it counts for, and its sends in flight."""

    __slots__ = ("main_name", "order", "pending", "pending_by_item", "site", "unmatched")

    def __init__(self, site: ChannelSite, order: str, main_name: str) -> None:
        self.site = site
        self.main_name = main_name
        self.order = order  # "fifo", "lifo" or "priority": how receives match sends
        self.pending: deque[int] = deque()  # send times of items in the queue
        self.pending_by_item: dict[int, deque[int]] = {}  # priority queues: by id(item)
        self.unmatched = 0  # receives recorded before their send (thread races)

    def sent(self, item: object, size_of: Callable[[Any], int], instance: Any) -> None:
        """``item`` went into ``instance``; its size is asked here, so that with --alloc no
        hotpath code runs outside the excluded call (its first run allocates)."""
        size = size_of(instance)
        now = stdlib.perf_counter_ns()
        site = self.site
        with site.lock:
            site.sent += 1
            site.recent_sends.append(now)
            if size > site.max_size:
                site.max_size = size
            if self.unmatched:
                self.unmatched -= 1
            elif self.order == "priority":
                self.pending_by_item.setdefault(id(item), deque()).append(now)
            else:
                self.pending.append(now)
            site.log.append(ChannelEvent(now, "send", describe(item, self.main_name), who(), None))

    def received(self, item: object) -> None:
        now = stdlib.perf_counter_ns()
        site = self.site
        with site.lock:
            site.received += 1
            site.recent_receives.append(now)
            sent_at = self._match(item)
            delay = now - sent_at if sent_at is not None else None
            if delay is not None:
                site.delay.add(delay)
            site.log.append(
                ChannelEvent(now, "receive", describe(item, self.main_name), who(), delay)
            )

    def _match(self, item: object) -> int | None:
        if self.order == "priority":
            times = self.pending_by_item.get(id(item))
            if times:
                sent_at = times.popleft()
                if not times:
                    del self.pending_by_item[id(item)]
                return sent_at
        elif self.pending:
            return self.pending.pop() if self.order == "lifo" else self.pending.popleft()
        self.unmatched += 1
        return None


class ChannelCollector(Collector):
    def __init__(
        self,
        table: ChannelTable,
        selects: Selects,
        root: str,
        main_name: str,
        exclusion: Exclusion | None = None,
    ) -> None:
        """With ``exclusion`` (--alloc), what hotpath's patches allocate in the program's
        calls is not counted as the program's."""
        self.exclusion = exclusion
        self.table = table
        self.main_name = main_name
        self.selects = selects
        self.root = root
        self._patches = Patches()
        # The live queues of each site, not kept alive: only this collector touches them.
        # Their own lock, never a site's: adding to a WeakSet makes a weakref, which can set
        # off a garbage collection, whose finalizers (``_collected``) take the site's lock.
        # Reentrant: a finalizer of the program's may create a queue in the middle of it.
        self._instances: dict[ChannelSite, weakref.WeakSet[Any]] = {}
        self._instances_lock = stdlib.new_rlock()
        table.attach(self.live_queues)

    def live_queues(self, site: ChannelSite) -> LiveQueues:
        """The store's probe: what a site's queues say now. A bounded queue's ``qsize`` is
        exact; one being put to or read in another thread may be one item off."""
        with self._instances_lock:  # a WeakSet added to while it is listed raises
            queues = list(self._instances.get(site, ()))
        shut = sum(
            1
            for q in queues
            if getattr(q, "_is_shutdown", False) or getattr(q, "is_shutdown", False)
        )
        sizes = [q.qsize() for q in queues]
        full = sum(
            1 for q, size in zip(queues, sizes, strict=True) if 0 < getattr(q, "maxsize", 0) <= size
        )
        return LiveQueues(len(queues), shut, sum(sizes), full)

    # -- installing ---------------------------------------------------------------------------

    def provides(self) -> dict[str, bool]:
        return {"channels": True}

    def install(self) -> None:
        """Patch the queue classes."""
        exclusion = self.exclusion
        created = excluded(self._created, exclusion)
        for base in (asyncio.Queue, queue.Queue):
            self._patches.wrap_init(base, created)
        for cls in (
            asyncio.Queue,
            asyncio.PriorityQueue,
            asyncio.LifoQueue,
            queue.Queue,
            queue.PriorityQueue,
            queue.LifoQueue,
        ):
            self._wrap_put_get(cls, exclusion)
        simple = _simple_queue_class(created, exclusion)
        self._patches.replace(queue, "SimpleQueue", simple)

    def _wrap_put_get(self, cls: type, exclusion: Exclusion | None) -> None:
        put = cls.__dict__["_put"]
        get = cls.__dict__["_get"]
        # _put runs under queue.Queue's mutex: its qsize() would take it again and deadlock.
        size: Callable[[Any], int] = (
            (lambda q: len(q._queue))
            if issubclass(cls, asyncio.Queue)
            else (lambda q: len(q.queue))
        )

        sent = excluded(TrackedQueue.sent, exclusion)
        received = excluded(TrackedQueue.received, exclusion)

        def _put(self: Any, item: Any) -> None:
            put(self, item)
            tracked = getattr(self, ATTRIBUTE, None)
            if tracked is not None:
                sent(tracked, item, size, self)

        def _get(self: Any) -> Any:
            item = get(self)
            tracked = getattr(self, ATTRIBUTE, None)
            if tracked is not None:
                received(tracked, item)
            return item

        self._patches.replace(cls, "_put", _put)
        self._patches.replace(cls, "_get", _get)

    def forget_in_child(self) -> None:
        self.uninstall()

    def uninstall(self) -> None:
        self._patches.undo()

    # -- a queue is created -------------------------------------------------------------------

    def _created(self, instance: Any) -> None:
        setattr(instance, ATTRIBUTE, None)
        # 2 up from here: 1 the patched __init__, 2 its caller (the program's, or a subclass's)
        frame = creating_frame(instance, 2)
        if frame is None or not self.selects(frame):
            return
        kind, order = _kind(instance)
        name, location = site_name(frame, self.root)
        site = self.table.site(frame.f_code.co_filename, frame.f_lineno, name, location, kind)
        if site is None:
            return
        with site.lock:
            site.created += 1
            site.capacities.add(getattr(instance, "maxsize", 0) or 0)
        with self._instances_lock:
            self._instances.setdefault(site, weakref.WeakSet()).add(instance)
        weakref.finalize(instance, _collected, site)
        setattr(instance, ATTRIBUTE, TrackedQueue(site, order, self.main_name))


def _collected(site: ChannelSite) -> None:
    with site.lock:
        site.closed += 1


_KINDS = (
    (asyncio.PriorityQueue, "asyncio.PriorityQueue"),
    (asyncio.LifoQueue, "asyncio.LifoQueue"),
    (asyncio.Queue, "asyncio.Queue"),
    (queue.PriorityQueue, "queue.PriorityQueue"),
    (queue.LifoQueue, "queue.LifoQueue"),
    (queue.Queue, "queue.Queue"),
    (object, "queue.SimpleQueue"),
)


def _kind(instance: object) -> tuple[str, str]:
    """The queue class a channel is (with the program's own subclass), and its order: how
    receives match sends."""
    name = kind_name(instance, _KINDS)
    base = name.partition(" (")[0]
    order = "priority" if "Priority" in base else "lifo" if "Lifo" in base else "fifo"
    return name, order


def _simple_queue_class(created: Callable[[Any], None], exclusion: Exclusion | None) -> type:
    base: type = queue.SimpleQueue
    qsize: Callable[[Any], int] = queue.SimpleQueue.qsize
    sent = excluded(TrackedQueue.sent, exclusion)
    received = excluded(TrackedQueue.received, exclusion)

    class SimpleQueue(base):  # type: ignore[misc]
        __doc__ = base.__doc__

        def __init__(self) -> None:
            super().__init__()
            created(self)

        def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
            super().put(item, block, timeout)
            tracked = getattr(self, ATTRIBUTE, None)
            if tracked is not None:
                sent(tracked, item, qsize, self)

        def put_nowait(self, item: Any) -> None:
            self.put(item, False)

        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            item = super().get(block, timeout)
            tracked = getattr(self, ATTRIBUTE, None)
            if tracked is not None:
                received(tracked, item)
            return item

        def get_nowait(self) -> Any:
            return self.get(False)

    SimpleQueue.__module__ = base.__module__
    SimpleQueue.__qualname__ = "SimpleQueue"
    return SimpleQueue

"""A run of known events, on a clock that moves only when told: every figure is fixed.

The golden test answers every tool from the store this builds and compares with what main
answered when the test was written (``answers.json``, ``report.txt``): a change to views,
registry or store that alters one byte of an answer shows there. Line numbers and names in
this file are part of the expected answers: append, never edit in place.

Queues and tasks go through the real collectors (installed for the scenario, removed after);
functions, threads, allocations and memory sites come from fixed sources, as the recorder and
the samplers would write them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import queue
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import CodeType

from hotpath.collectors.channels import ChannelCollector
from hotpath.collectors.locks import LockCollector
from hotpath.collectors.sql import SqlCollector
from hotpath.collectors.streams import StreamCollector
from hotpath.collectors.tasks import TaskCollector
from hotpath.filters import FunctionFilter
from hotpath.store import RunInfo, Store
from hotpath.store.functions import (
    Allocations,
    AllocationTotals,
    CallRecord,
    FunctionInfo,
    FunctionStats,
    ThreadAllocations,
    ThreadIdentity,
    Totals,
)
from hotpath.store.histogram import add_buckets
from hotpath.store.memory import SiteSnapshot
from hotpath.store.operations import Done, Figures
from hotpath.store.threads import ProcessFigures, ThreadFigures

HERE = str(Path(__file__).resolve().parent)
FILE = str(Path(__file__).resolve())
MS = 1_000_000


class Clock:
    """perf_counter_ns and time_ns for the scenario: both move only with ``advance``."""

    def __init__(self) -> None:
        self.now = 5_000 * MS

    def perf_counter_ns(self) -> int:
        return self.now

    def time_ns(self) -> int:
        return 1_767_225_600 * 10**9 + self.now  # 2026-01-01T00:00:00Z at perf 0

    def advance(self, ms: float) -> None:
        self.now += round(ms * MS)


class FakeThread:
    """What ``stdlib.current_thread`` gives gauges and channel logs: a fixed identity."""

    name = "MainThread"
    native_id = 1001
    ident = 1001


# -- functions: the code objects the fixed figures belong to ---------------------------------


def handle_request(order: int) -> int:
    return order * 2


def checksum(data: bytes) -> int:
    total = 0
    for byte in data:
        total += byte
    return total


def rows() -> Iterator[int]:
    yield 1


async def fetch() -> int:
    return 1


async def ticks() -> object:
    yield 1


def never_called() -> None:
    pass


def _identity(native_id: int) -> ThreadIdentity:
    identity = ThreadIdentity()
    identity.ident = identity.native_id = native_id
    identity.thread = None  # named thread-<native_id>
    return identity


class FixedFunctions:
    """The recorder's part: fixed totals, calls in progress and logs."""

    def __init__(self, store: Store) -> None:
        table = store.functions
        self.stats: list[FunctionStats] = []
        self.logs: dict[int, list[CallRecord]] = {}
        worker, main = _identity(7), _identity(1001)
        spec: list[tuple[CodeType, str, list[int], int, dict[int, str]]] = [
            (handle_request.__code__, "function", [3 * MS, 5 * MS, 40 * MS, 4 * MS], 0, {}),
            (checksum.__code__, "function", [MS * (i % 7 + 1) for i in range(40)], 1, {}),
            (rows.__code__, "generator", [2 * MS, 2 * MS], 0, {}),
            (fetch.__code__, "coroutine", [10 * MS, 12 * MS, 9 * MS], 2, {}),
            (ticks.__code__, "async_generator", [], 1, {}),
            (never_called.__code__, "function", [], 0, {}),
        ]
        for number, (code, kind, durations, running, failures) in enumerate(spec):
            info = table.add_function(
                f"app.{code.co_qualname}",
                "app",
                code.co_qualname,
                code,
                kind,  # type: ignore[arg-type]
            )
            assert info is not None
            totals = Totals(table.log_limit)
            ends = [6_000 * MS + i * 10 * MS + number for i in range(len(durations))]
            failed = dict(failures)
            if code is handle_request.__code__:
                failed = {ends[2]: "ValueError"}
            totals.add_calls(durations, ends, failed, worker if number % 2 else main)
            totals.total_ns = sum(durations)
            totals.child_ns = sum(durations) // 4 if code is handle_request.__code__ else 0
            totals.active_ns = sum(durations) // 3 if kind != "function" else 0
            totals.starts = len(durations) * 2 if kind != "function" else 0
            allocations = None
            if code is not never_called.__code__:
                buckets = type(totals.buckets)()
                add_buckets(buckets, [1000 * (number + 1)] * len(durations))
                allocations = AllocationTotals(
                    every=Allocations(50 * (number + 1), 9000 * (number + 1)),
                    total=Allocations(40 * (number + 1), 8000 * (number + 1)),
                    child=Allocations(10 * number, 2000 * number),
                    buckets=buckets,
                    running_total=Allocations(running, 100 * running),
                    running_own=Allocations(running, 60 * running),
                    running_child=Allocations(0, 10 * running),
                )
            self.stats.append(
                FunctionStats(
                    info,
                    totals,
                    running,
                    running * 7 * MS,
                    running * 5 * MS,
                    running * 2 * MS,
                    allocations,
                )
            )
            self.logs[info.id] = list(totals.recent_calls(table.log_limit))
            for record in self.logs[info.id]:
                record.allocations = Allocations(3, 300 + record.duration_ns // MS)

    def read(self, now_ns: int) -> list[FunctionStats]:
        return list(self.stats)

    def recent_calls(self, info: FunctionInfo, limit: int) -> list[CallRecord]:
        return self.logs[info.id][-limit:] if limit else []

    def given_up(self) -> int:
        return 3

    def thread_allocations(self) -> list[ThreadAllocations]:
        return [
            ThreadAllocations(1001, Allocations(900, 120_000), True),
            ThreadAllocations(7, Allocations(300, 40_000), False),
            ThreadAllocations(99, Allocations(5, 500), True),  # hotpath's own: left out
        ]


class FixedSites:
    """The site tracer's part: three snapshots of live memory."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.on = False
        line = checksum.__code__.co_firstlineno + 2
        self.frames = [
            {(FILE, line): (1_000, 10), ("<frozen os>", 3): (500, 2)},
            {(FILE, line): (5_000, 50), ("<frozen os>", 3): (400, 1)},
            {(FILE, line): (9_000, 90), ("<frozen os>", 3): (400, 1), (FILE, 12): (64, 1)},
        ]

    def tracing(self) -> bool:
        return self.on

    def start(self) -> bool:
        started, self.on = not self.on, True
        return started

    def stop(self) -> bool:
        stopped, self.on = self.on, False
        return stopped

    def take(self) -> SiteSnapshot | None:
        if not self.on or not self.frames:
            return None
        sites = self.frames.pop(0)
        self.clock.advance(1000)
        traced = sum(size for size, _ in sites.values())
        return SiteSnapshot(self.clock.now, traced, sites, 2 * MS)


def _threads(store: Store, clock: Clock) -> None:
    def figures(native_id: int, name: str, own: bool, cpu: float, percent: float) -> ThreadFigures:
        return ThreadFigures(
            native_id=native_id,
            name=name,
            own=own,
            status="running" if percent else "sleeping",
            user_s=cpu * 0.75,
            system_s=cpu * 0.25,
            cpu_percent=percent,
            cpu_percent_max=percent + 10,
            first_seen_ns=5_000 * MS,
            last_seen_ns=clock.now,
            cpu_at_first_seen_s=0.1,
        )

    process = ProcessFigures(
        rss_bytes=50_000_000, rss_max_bytes=60_000_000, cpu_percent=87.5, user_s=3.5,
        system_s=0.5, threads=3, open_fds=9, samples=12,
    )  # fmt: skip
    store.threads.update(
        {
            1001: figures(1001, "MainThread", False, 3.0, 80.0),
            7: figures(7, "worker-1", False, 0.8, 7.5),
            99: figures(99, "hotpath-sampler", True, 0.2, 1.0),
        },
        process,
    )
    clock.advance(500)
    store.threads.update(
        {
            1001: figures(1001, "MainThread", False, 3.4, 80.0),
            99: figures(99, "hotpath-sampler", True, 0.2, 1.0),
        },
        process,
    )


def _queues(clock: Clock) -> None:
    inbox = queue.Queue()  # type: ignore[var-type]
    inbox.put(("order", 1))
    clock.advance(2)
    inbox.put({"id": 2})
    clock.advance(3)
    inbox.get()
    results = queue.SimpleQueue()  # type: ignore[var-type]
    results.put(3.5)
    clock.advance(1)
    results.get()
    results.put("done")
    scratch = queue.LifoQueue()  # type: ignore[var-type]
    scratch.put(1)
    del scratch
    gc.collect()


async def _producer(jobs: asyncio.Queue[int], clock: Clock) -> None:
    for job in range(3):
        await jobs.put(job)
        clock.advance(4)


async def _consumer(jobs: asyncio.Queue[int], clock: Clock, tasks: TaskCollector) -> None:
    tasks.started(id(sys._getframe()))  # as the recorder does at the coroutine's first start
    for _ in range(2):
        await jobs.get()
        clock.advance(1)


async def _fails() -> None:
    raise ValueError("scripted")


async def _stuck(forever: asyncio.Event, tasks: TaskCollector) -> None:
    tasks.started(id(sys._getframe()))
    await forever.wait()


async def _main(clock: Clock, tasks: TaskCollector, during: Callable[[], object]) -> None:
    tasks.started(id(sys._getframe()))
    current = asyncio.current_task()
    assert current is not None
    current.set_name("main")  # asyncio.run numbers it from a process-wide counter
    jobs: asyncio.Queue[int] = asyncio.Queue(maxsize=2)
    # asyncio.Task(name=...), not create_task: 3.12's create_task names the task after
    # making it, 3.13's as it makes it, and the collector reads the name then.
    consumer = asyncio.Task(_consumer(jobs, clock, tasks), name="consumer-1")
    await asyncio.Task(_producer(jobs, clock), name="producer-1")
    await consumer
    with_error = asyncio.Task(_fails(), name="fails-1")
    await asyncio.sleep(0)
    clock.advance(5)
    assert with_error.done()
    forever = asyncio.Event()
    stuck = asyncio.Task(_stuck(forever, tasks), name="stuck-1")
    await asyncio.sleep(0)
    cancelled = asyncio.Task(_stuck(forever, tasks), name="stuck-2")
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    waiting = asyncio.Task(_stuck(forever, tasks), name="stuck-3")  # never started
    await jobs.put(7)  # full now: 2 and 7
    clock.advance(3)
    during()  # answers taken while tasks are alive
    stuck.cancel()
    waiting.cancel()
    await asyncio.sleep(0)
    with_error.exception()


HELD: list[object] = []  # what the scenario leaves held, alive while its answers are read


def _locks(clock: Clock) -> None:
    guard = threading.Lock()
    HELD.append(guard)
    for hold in (2, 5):
        with guard:
            clock.advance(hold)
    guard.acquire()
    assert not guard.acquire(False)  # held: a failed try
    clock.advance(4)  # and still held at the end
    nested = threading.RLock()
    with nested, nested:
        clock.advance(3)
    slots = threading.Semaphore(2)
    with slots:
        clock.advance(1)
    ready = threading.Event()
    ready.set()
    ready.wait(0)


def _sql(clock: Clock) -> None:
    """Statements through sqlite3, each advancing the clock by what it says (a function of
    the scenario's, called by the statement)."""
    db = sqlite3.connect(":memory:")
    db.create_function("work", 1, lambda ms: clock.advance(ms) or 0)
    db.execute("CREATE TABLE t (v INTEGER)")
    for value in range(3):
        db.execute(f"INSERT INTO t SELECT {value} + work(1)")
    db.execute("SELECT v, work(4) FROM t WHERE v > 1").fetchall()
    with contextlib.suppress(sqlite3.OperationalError):
        db.execute("SELECT * FROM missing")
    db.close()


def _served(store: Store, clock: Clock) -> None:
    """HTTP calls and requests as their collectors file them (no server in a golden test)."""
    caller = ("app.fetch", "app.py:93")
    for status, ms in ((200, 12), (200, 8), (404, 3)):
        outcome = f"{status // 100}xx"
        done = Done(ms * 1_000_000, outcome, False, caller, status, None, 120, 512)
        store.http.record("GET api.example.com/users/{id}", "app.py:93", "http.client", done)
        clock.advance(ms)
    failed = Done(30_000_000, "ConnectTimeout", True, caller, None, None, 0, None)
    store.http.record("POST api.example.com/orders", "app.py:93", "httpx", failed)
    inside = {
        ("sql", "SELECT v, work(?) FROM t WHERE v > ?"): Figures(2, 8_000_000),
        ("http", "GET api.example.com/users/{id}"): Figures(1, 12_000_000),
    }
    for status in (200, 500):
        done = Done(25_000_000, f"{status // 100}xx", status >= 500, None, status, inside=inside)
        store.routes.record("GET /orders/{id}", "app.py:76", "starlette", done)
        clock.advance(25)


def _streams(store: Store, clock: Clock, streams: StreamCollector) -> None:
    info = next(f for f in store.functions.functions if f.qualname == "ticks")
    first = streams.opened(info)
    second = streams.opened(info)
    assert first is not None and second is not None
    for item in (1, "two", [3]):
        streams.yielded(first, item)
        clock.advance(10)
    streams.yielded(second, None)
    streams.ended(first, None)
    streams.ended(second, "GeneratorExit")
    third = streams.opened(info)
    assert third is not None
    streams.ended(third, "KeyError")


def _gauges(store: Store, clock: Clock) -> None:
    depth = store.gauges.gauge("queue.depth")
    depth.set(3)
    clock.advance(1)
    depth.inc(2)
    clock.advance(1)
    depth.dec()
    store.gauges.gauge("cache.size_bytes").set(2_048)
    store.gauges.gauge("process.rss_bytes", builtin=True).set(50_000_000)
    store.gauges.gauge("never.set")


def build(clock: Clock, during: Callable[[Store], object]) -> Store:
    """The store after the scenario; ``during`` is called with it while asyncio tasks are alive."""
    function_filter = FunctionFilter([], [], roots=[HERE], roots_chosen="the script's folder")
    info = RunInfo(
        argv=["app.py", "--orders", "3"],
        filters=function_filter.describe(),
        collectors={
            "timing": True,
            "alloc": True,
            "channels": True,
            "futures": True,
            "streams": True,
            "locks": True,
            "sql": True,
            "http": True,
            "routes": True,
            "threads": True,
            "gauges": True,
            "cpu": True,
            "mcp": True,
        },
        percentiles=(50.0, 95.0, 99.0),
        sample_interval_s=0.5,
        pid=4242,
        python="3.12.0",
        cpu_interval_s=0.01,
    )
    store = Store(info, log_limit=100, max_functions=100)
    store.functions.attach(FixedFunctions(store))
    store.functions.note_declined("requests.api.get")
    store.own_native_ids.add(99)
    store.note_problem("thread sampler: OSError(24, 'Too many open files')")
    sites = FixedSites(clock)
    store.memory.attach(sites)
    store.memory.start_tracing()

    def selects(frame: object) -> bool:
        return getattr(getattr(frame, "f_code", None), "co_filename", None) == FILE

    channels = ChannelCollector(store.channels, selects, HERE, "app")
    tasks = TaskCollector(store.futures, lambda name, file: file == FILE, "app", HERE)
    # The Python twin of the tracked locks: it reads the scenario's clock.
    locks = LockCollector(store.locks, selects, HERE, 100, "python")
    sql = SqlCollector(store.sql, selects, HERE, "app", store.own_idents)
    channels.install()
    tasks.install()
    locks.install()
    sql.install()
    try:
        _queues(clock)
        asyncio.run(_main(clock, tasks, lambda: during(store)))
        _locks(clock)
        _sql(clock)
    finally:
        sql.release()
        locks.uninstall()
        tasks.uninstall()
        channels.uninstall()
    _streams(store, clock, StreamCollector(store.streams, HERE, "app"))
    _gauges(store, clock)
    _served(store, clock)
    _threads(store, clock)
    store.memory.take_snapshot()
    _cpu(store)
    clock.advance(250)
    return store


def _cpu(store: Store) -> None:
    """Stack samples as the sampler writes them: code objects and lines, outermost first
    (``rows`` plays json.dumps: a real one's path and line differ from Python to Python)."""
    table = store.cpu
    main, handler, sums, dumps = (
        _main.__code__, handle_request.__code__, checksum.__code__, rows.__code__
    )  # fmt: skip
    for code, name in ((main, "app.main"), (handler, "app.handle_request"), (sums, "app.checksum")):
        table.name(code, name)
    table.name(dumps, "json.dumps")
    at = main.co_firstlineno
    serve = [(id(main), at + 3), (id(handler), handler.co_firstlineno + 1)]
    table.add([([*serve, (id(dumps), 231)], 9 * MS)] * 6)
    table.add([([*serve, (id(sums), sums.co_firstlineno + 3)], 10 * MS)] * 3)
    table.add([([(id(main), at + 3), (id(sums), sums.co_firstlineno + 2)], 4 * MS)])
    table.add([([(id(main), at + 1)], 2 * MS)])
    deep = [(id(handler), handler.co_firstlineno + 1)] * 20  # a recursion: counted once
    table.add([([(id(main), at + 3), *deep, (id(dumps), 240)], 7 * MS)])

"""The recorder's contract (hotpath/recorder/__init__.py), in process, on the recorder under test
(HOTPATH_RECORDER; CI runs the suite once on each), and the odd paths where a compiled
recorder could crash: exceptions, generators closed early or dropped, threads ending, fork, a
tool id taken away, Python running inside a callback, reads from other threads."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import pytest
from support import RECORDER

from hotpath.collectors.timing import TimingCollector
from hotpath.filters import FunctionFilter
from hotpath.recorder import MAX_OPEN_ACTIVATIONS, NoToolIdError, Recorder, create
from hotpath.store.functions import FunctionInfo, FunctionStats, FunctionTable

HERE = str(Path(__file__).resolve().parent)
Start = Callable[..., tuple[Recorder, FunctionTable, Callable[[], dict[str, FunctionStats]]]]


@pytest.fixture
def timed() -> Iterator[Start]:
    """Starts the recorder under test on this file's functions; ``stats()`` stops and reads."""
    recorders: list[Recorder] = []

    def start(
        log_limit: int = 100,
        max_functions: int = 5000,
        decide: Callable[[CodeType, FrameType | None], FunctionInfo | None] | None = None,
        listener: Any = None,
        count_allocations: bool = False,
    ) -> tuple[Recorder, FunctionTable, Callable[[], dict[str, FunctionStats]]]:
        table = FunctionTable(log_limit, max_functions)
        if decide is None:
            collector = TimingCollector(table, FunctionFilter(roots=[HERE]), "tr", RECORDER)
            decide = collector.decide
        recorder = create(RECORDER, decide, listener, log_limit, count_allocations)
        table.attach(recorder)
        recorder.start()
        recorders.append(recorder)

        def stats() -> dict[str, FunctionStats]:
            recorder.stop()
            # By the last part of the name: ``look`` for ``test_x.<locals>.look``.
            return {
                s.info.qualname.split(".")[-1]: s for s in table.snapshot(time.perf_counter_ns())
            }

        return recorder, table, stats

    yield start
    for recorder in recorders:
        recorder.stop()


def work(x: int) -> int:
    return x + 1


def outer(n: int) -> int:
    return sum(work(i) for i in range(n))


def fails(kind: type[Exception]) -> None:
    raise kind("no")


def countdown(n: int) -> Generator[int]:
    while n:
        yield n
        n -= 1


def deep(n: int) -> int:
    return 0 if n == 0 else deep(n - 1) + 1


def test_counts_totals_and_self_time_of_nested_calls(timed: Start) -> None:
    _, _, stats = timed()
    for _ in range(10):
        outer(100)
    rows = stats()
    assert rows["work"].calls == 1000
    assert rows["outer"].calls == 10
    outer_row = rows["outer"]
    # outer's self time excludes work's calls (and the genexpr's, also timed here).
    assert outer_row.self_ns < outer_row.total_ns
    assert rows["work"].totals.total_ns <= outer_row.total_ns
    assert rows["work"].totals.min_ns <= rows["work"].totals.max_ns


def test_recursion_counts_every_call_and_the_outermost_time_once(timed: Start) -> None:
    _, _, stats = timed()
    deep(50)
    row = stats()["deep"]
    assert row.calls == 51
    assert row.totals.completed == 51
    # Inclusive time counts the outermost call only: no more than the sum of durations.
    assert row.totals.total_ns <= row.totals.all_ns
    assert row.totals.total_ns == row.totals.max_ns


def test_exceptions_count_as_errors_by_type_and_show_in_the_log(timed: Start) -> None:
    recorder, _, stats = timed()
    for kind in (ValueError, ValueError, KeyError):
        with pytest.raises(kind):
            fails(kind)
    row = stats()["fails"]
    assert row.calls == 3
    assert row.totals.errors == 3
    assert dict(row.totals.error_types) == {"ValueError": 2, "KeyError": 1}
    outcomes = [call.outcome for call in recorder.recent_calls(row.info, 10)]
    assert outcomes == ["ValueError", "ValueError", "KeyError"]


def test_the_log_keeps_the_newest_calls_oldest_first(timed: Start) -> None:
    recorder, _, stats = timed(log_limit=25)
    for i in range(1000):
        work(i)
    row = stats()["work"]
    assert row.calls == 1000
    log = recorder.recent_calls(row.info, 1000)
    assert len(log) == 25
    assert [entry.end_ns for entry in log] == sorted(entry.end_ns for entry in log)
    assert all(entry.thread.ident == threading.get_ident() for entry in log)
    assert recorder.recent_calls(row.info, 5) == log[-5:]


def test_a_generator_is_one_call_from_start_to_end(timed: Start) -> None:
    _, _, stats = timed()
    assert list(countdown(5)) == [5, 4, 3, 2, 1]
    row = stats()["countdown"]
    assert (row.calls, row.totals.completed, row.running) == (1, 1, 0)
    assert 0 < row.totals.active_ns <= row.totals.total_ns


def test_generators_closed_early_or_dropped_end_or_stay_bounded(timed: Start) -> None:
    _recorder, _, stats = timed()
    closed = countdown(3)
    next(closed)
    closed.close()
    dropped = countdown(3)
    next(dropped)
    del dropped
    gc.collect()
    row = stats()["countdown"]
    assert row.calls == 2
    if sys.version_info < (3, 13):
        # 3.12 reports both ends (GeneratorExit).
        assert row.totals.error_types["GeneratorExit"] == 2
        assert row.totals.completed == 2 and row.running == 0
        return
    # 3.13 sends no event for a suspended generator that is closed or collected: those stay
    # started but not finished. The compiled recorder sees that they ended (not running);
    # the Python one cannot, and counts them as running until they are evicted.
    assert row.totals.completed == 0
    assert row.running == (2 if RECORDER == "python" else 0)


def test_open_generator_calls_are_capped(timed: Start) -> None:
    recorder, _, stats = timed()
    kept = []
    for _ in range(MAX_OPEN_ACTIVATIONS + 500):
        generator = countdown(2)
        next(generator)
        kept.append(generator)  # suspended and alive: their calls stay open
    open_calls = getattr(recorder, "open_activations", None)
    if open_calls is not None:
        assert open_calls() <= MAX_OPEN_ACTIVATIONS
    for generator in kept:
        generator.close()  # an evicted one counts anew when it runs again: no crash
    assert stats()["countdown"].calls >= MAX_OPEN_ACTIVATIONS


def test_ended_threads_leave_no_state_behind(timed: Start) -> None:
    recorder, _, stats = timed()

    def run() -> None:
        for i in range(10):
            work(i)

    for _ in range(5):
        threads = [threading.Thread(target=run) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert stats()["work"].calls == 500
    # A thread's state is torn down just after join() returns: allow it a moment.
    deadline = time.monotonic() + 2
    while recorder.live_threads() > threading.active_count() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert recorder.live_threads() <= threading.active_count()


def run_with_a_reader(
    work: Callable[[], None], workers: int, read: Callable[[], None], done: threading.Event
) -> None:
    """``workers`` threads run ``work`` while one more reads, until they have all finished."""
    threads = [threading.Thread(target=work) for _ in range(workers)]
    reader = threading.Thread(target=read)
    for thread in [*threads, reader]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()


def test_many_threads_and_a_reader_at_once(timed: Start) -> None:
    recorder, table, stats = timed()
    barrier = threading.Barrier(9)
    done = threading.Event()
    reads = []

    def run() -> None:
        barrier.wait()
        for i in range(2_000):
            work(i)
            if i % 500 == 0:
                list(countdown(3))

    def read() -> None:
        barrier.wait()
        while not done.is_set():
            reads.append(len(table.snapshot(time.perf_counter_ns())))
            for row in table.snapshot(time.perf_counter_ns()):
                recorder.recent_calls(row.info, 10)

    run_with_a_reader(run, 8, read, done)
    rows = stats()
    assert rows["work"].calls == 16_000
    assert rows["countdown"].calls == 32
    assert reads


def test_calls_in_progress_count_up_to_now(timed: Start) -> None:
    _, table, stats = timed()
    seen: list[FunctionStats] = []

    def look() -> None:
        now = time.perf_counter_ns()
        seen.extend(s for s in table.snapshot(now) if s.info.qualname.endswith(".look"))

    look()
    row = seen[0]
    assert (row.running, row.totals.completed) == (1, 0)
    assert row.running_ns > 0
    assert stats()["look"].running == 0


def test_percentiles_of_few_calls_are_exact(timed: Start) -> None:
    recorder, _, stats = timed()
    countdown_total(3)  # one call
    for i in range(10):
        outer(i)  # ten calls, and 45 of work inside them: past the exact ones
    rows = stats()
    one, ten, many = rows["countdown_total"], rows["outer"], rows["work"]
    assert (one.totals.completed, ten.totals.completed, many.totals.completed) == (1, 10, 45)
    assert set(one.percentiles_ns((50.0, 95.0, 99.0)).values()) == {float(one.totals.max_ns)}
    durations = sorted(call.duration_ns for call in recorder.recent_calls(ten.info, 100))
    assert ten.percentiles_ns((50.0, 90.0, 100.0)) == {
        50.0: durations[4],
        90.0: durations[8],
        100.0: durations[9],
    }
    # From the histogram, within the calls' range.
    spread = many.percentiles_ns((50.0, 99.0))
    assert many.totals.min_ns <= spread[50.0] <= spread[99.0] <= many.totals.max_ns


def countdown_total(n: int) -> int:
    return sum(countdown(n))


def test_a_sleeping_coroutine_counts_its_time_so_far(timed: Start) -> None:
    """Read while it runs: total so far for the suspended coroutine, its own time for the
    plain call busy inside the caller, which gets none of it as self time."""
    _, table, stats = timed()
    seen: dict[str, FunctionStats] = {}

    def busy(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    def caller() -> None:
        busy(0.2)
        seen.update(
            {s.info.qualname.split(".")[-1]: s for s in table.snapshot(time.perf_counter_ns())}
        )

    async def sleeper() -> None:
        await asyncio.sleep(0.6)

    async def main() -> None:
        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0.3)
        caller()
        await task

    asyncio.run(main())
    sleeping, outer = seen["sleeper"], seen["caller"]
    assert sleeping.running == 1 and sleeping.totals.completed == 0
    assert 0.45e9 < sleeping.total_ns < 0.7e9  # 0.3 s asleep, then 0.2 s busy in caller
    assert sleeping.active_ns < 0.05e9  # suspended nearly all along
    assert outer.running == 1 and 0.2e9 <= outer.total_ns < 0.3e9
    assert outer.self_ns < 0.05e9  # its time so far is busy's, a callee that finished
    rows = stats()
    assert rows["sleeper"].running == 0 and rows["sleeper"].totals.completed == 1


def test_a_generator_dropped_while_suspended_stops_counting(timed: Start) -> None:
    _, table, stats = timed()
    lazy = countdown(5)
    next(lazy)
    del lazy  # suspended outside any try: Python 3.13 sends no event for it
    gc.collect()
    time.sleep(0.05)
    [row] = [s for s in table.snapshot(time.perf_counter_ns()) if s.info.qualname == "countdown"]
    if RECORDER == "python" and sys.version_info >= (3, 13):
        pytest.xfail("Python gives no way from a frame to its generator before 3.14")
    assert row.running == 0
    assert row.total_ns < 0.04e9
    stats()


def test_deep_recursion_to_the_limit_reaches_the_program_unchanged(timed: Start) -> None:
    _, _, stats = timed()
    with pytest.raises(RecursionError):
        deep(10**6)
    assert stats()["deep"].totals.error_types["RecursionError"] > 0


def test_a_failing_decision_gives_the_event_up_and_the_program_runs_on(timed: Start) -> None:
    asked = []

    def decide(code: CodeType, frame: FrameType | None) -> FunctionInfo | None:
        asked.append(code.co_name)
        raise ValueError("a bug in hotpath's filter")

    recorder, _, stats = timed(decide=decide)
    assert work(1) == 2
    assert work(2) == 3
    assert "work" in asked
    assert stats() == {}
    assert recorder.given_up() >= 1


def test_a_failing_listener_gives_the_event_up_and_the_program_runs_on(timed: Start) -> None:
    class Broken:
        def task_started(self, frame_id: int) -> None:
            raise RuntimeError("listener bug")

        def stream_opened(self, function: FunctionInfo) -> object:
            return object()

        def stream_yielded(self, stream: object, value: object) -> None:
            raise RuntimeError("listener bug")

        def stream_ended(self, stream: object, error: str | None) -> None:
            raise RuntimeError("listener bug")

    async def ticks() -> Any:
        for i in range(3):
            yield i

    async def main() -> list[int]:
        return [i async for i in ticks()]

    import asyncio

    recorder, _, stats = timed(listener=Broken())
    assert asyncio.run(main()) == [0, 1, 2]
    rows = stats()
    assert rows["ticks"].calls == 1
    assert recorder.given_up() >= 3  # three items and the end: the listener was told nothing


def test_a_program_that_takes_the_tool_id_away(timed: Start) -> None:
    recorder, _, stats = timed()
    work(1)
    tool = recorder.tool_id
    assert tool is not None
    monitoring = sys.monitoring
    monitoring.set_events(tool, 0)
    monitoring.free_tool_id(tool)
    monitoring.use_tool_id(tool, "the program")
    try:
        assert recorder.stop() is False  # left alone: it is the program's now
        assert monitoring.get_tool(tool) == "the program"
        assert stats()["work"].calls == 1
    finally:
        monitoring.free_tool_id(tool)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_runs_on_with_the_recorder_inherited(timed: Start) -> None:
    recorder, _, stats = timed()
    work(1)
    pid = os.fork()
    if pid == 0:  # the child: calls, threads and reads must all work
        try:
            thread = threading.Thread(target=outer, args=(10,))
            thread.start()
            thread.join()
            ok = outer(10) == 55 and recorder.live_threads() >= 1
            os._exit(0 if ok else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert stats()["work"].calls == 1


def test_a_clear_error_when_every_tool_id_is_taken() -> None:
    monitoring = sys.monitoring
    taken = [tool for tool in range(6) if monitoring.get_tool(tool) is None]
    for tool in taken:
        monitoring.use_tool_id(tool, "someone else")
    try:
        collector = TimingCollector(
            FunctionTable(10, 10), FunctionFilter(roots=[HERE]), "t", RECORDER
        )
        with pytest.raises(NoToolIdError, match=r"every sys\.monitoring tool id"):
            collector.start()
    finally:
        for tool in taken:
            monitoring.free_tool_id(tool)


def test_hotpath_prefers_a_tool_id_no_standard_tool_uses(timed: Start) -> None:
    timed()
    assert sys.monitoring.get_tool(3) == "hotpath"
    assert {sys.monitoring.get_tool(tool) for tool in (0, 1, 2)} == {None}


def test_the_function_table_is_capped_and_counts_what_it_turns_away(timed: Start) -> None:
    _, table, stats = timed(max_functions=50)
    for i in range(300):
        namespace: dict[str, Any] = {}
        exec(compile(f"def generated_{i}():\n    return {i}\n", __file__, "exec"), namespace)
        namespace[f"generated_{i}"]()
    stats()
    assert len(table.functions) == 50
    # Each exec'd source is two code objects (its module and its function): 600 in all.
    assert table.dropped >= 550
    # Functions seen only returning (they started before hotpath did) have no calls.
    assert all(row.calls == 1 for row in table.snapshot(0) if row.calls)


@pytest.mark.parametrize("count_allocations", [False, True])
def test_what_a_recorder_holds_is_released_with_it(count_allocations: bool) -> None:
    """Reference counts: what the recorder was given and what it timed are released when it
    goes, exceptions and logs included; nothing it kept outlives it (counting allocations,
    the allocator hooks hold it until it stops)."""
    table = FunctionTable(10, 100)
    infos: list[FunctionInfo] = []

    def decide(code: CodeType, frame: FrameType | None) -> FunctionInfo | None:
        if code not in (work.__code__, fails.__code__):
            return None
        info = table.add_function(code.co_name, "tr", code.co_qualname, code, "function")
        assert info is not None
        infos.append(info)
        return info

    listener = object()
    decide_refs, listener_refs = sys.getrefcount(decide), sys.getrefcount(listener)
    recorder = create(RECORDER, decide, listener, 10, count_allocations)  # type: ignore[arg-type]
    recorder.start()
    for i in range(100):
        work(i)
    for _ in range(20):
        with pytest.raises(ValueError):
            fails(ValueError)
    recorder.stop()
    rows = {s.info.qualname: s for s in recorder.read(time.perf_counter_ns())}
    assert (rows["work"].calls, rows["fails"].totals.errors) == (100, 20)
    del rows, recorder
    gc.collect()
    assert sys.getrefcount(decide) == decide_refs
    assert sys.getrefcount(listener) == listener_refs
    # Left: the table's list, the test's list, the loop's name and getrefcount's argument.
    assert [sys.getrefcount(info) for info in infos] == [4, 4]


@pytest.mark.skipif(RECORDER != "c", reason="the compiled recorder's clock")
def test_the_compiled_recorder_reads_the_clock_python_reads() -> None:
    from hotpath.recorder import _crecorder

    before = time.perf_counter_ns()
    reading = _crecorder.clock_ns()
    after = time.perf_counter_ns()
    assert before <= reading <= after


# -- allocations (the compiled recorder's allocator hooks) ---------------------------------

ARRAY = 10**5
ARRAY_BYTES = sys.getsizeof(bytearray(ARRAY))  # its object and its buffer: two requests
counting = pytest.mark.skipif(RECORDER != "c", reason="allocation counts need the C recorder")


def two_arrays() -> None:
    # Nothing else: even an int above 256 (a len() of them) would be a request of its own.
    bytearray(ARRAY)
    bytearray(ARRAY)


def array_then_fail() -> None:
    bytearray(ARRAY)
    raise ValueError("after allocating")


def arrays_lazily(n: int) -> Generator[bytearray]:
    while n:
        yield bytearray(ARRAY)
        n -= 1


def test_the_python_recorder_says_it_cannot_count(timed: Start) -> None:
    recorder, _, stats = timed(count_allocations=True)
    two_arrays()
    rows = stats()
    assert recorder.counts_allocations is (RECORDER == "c")
    assert (rows["two_arrays"].allocations is not None) is (RECORDER == "c")


@counting
def test_calls_that_raise_count_what_they_allocated(timed: Start) -> None:
    recorder, _, stats = timed(count_allocations=True)
    for _ in range(3):
        with pytest.raises(ValueError):
            array_then_fail()
    two_arrays()
    rows = stats()
    failing = rows["array_then_fail"].allocations
    assert failing is not None and rows["array_then_fail"].totals.errors == 3
    # Each call: the array (2 requests) and the exception with its traceback.
    assert failing.every.bytes >= 3 * ARRAY_BYTES and failing.every.count >= 6
    assert failing.every.bytes < 3 * (ARRAY_BYTES + 4096)
    plain = rows["two_arrays"].allocations
    assert plain is not None and (plain.every.count, plain.every.bytes) == (4, 2 * ARRAY_BYTES)
    log = recorder.recent_calls(rows["two_arrays"].info, 10)
    assert [call.allocations for call in log] == [plain.every]


def take_two_and_close() -> None:
    lazy = arrays_lazily(5)
    next(lazy)
    next(lazy)
    lazy.close()


@counting
def test_a_generator_closed_early_counts_the_segments_it_ran(timed: Start) -> None:
    _, _, stats = timed(count_allocations=True)
    take_two_and_close()
    rows = stats()
    row, consumer = rows["arrays_lazily"], rows["take_two_and_close"]
    assert row.calls == 1 and row.allocations is not None and consumer.allocations is not None
    # The arrays were made inside the consumer's call: its figure has them on any version.
    assert 2 * ARRAY_BYTES < consumer.allocations.total.bytes < 2 * ARRAY_BYTES + 1024
    if sys.version_info >= (3, 13):
        # 3.13 sends no event when a generator suspended outside any try is closed: its call
        # is started, never finished, so it has no per-call figures.
        assert row.totals.completed == 0 and row.allocations.every.count == 0
        return
    # Two arrays, and the GeneratorExit that close() raised inside it.
    assert row.allocations.total.count == 4 + 1
    assert 2 * ARRAY_BYTES < row.allocations.total.bytes < 2 * ARRAY_BYTES + 256


@counting
def test_an_ended_threads_allocations_are_kept_and_its_record_freed(timed: Start) -> None:
    recorder, _, stats = timed(count_allocations=True)
    before = recorder.live_threads()
    native: list[int] = []

    def body() -> None:
        native.append(threading.get_native_id())
        for _ in range(10):
            two_arrays()

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert recorder.live_threads() == before
    ended = [t for t in recorder.thread_allocations() if t.native_id == native[0]]
    assert len(ended) == 1 and not ended[0].alive
    # Its 20 arrays, and a little of the thread's own start-up.
    assert 20 * ARRAY_BYTES <= ended[0].allocations.bytes < 20 * ARRAY_BYTES + 64 * 1024
    assert stats()["two_arrays"].allocations.every.count == 40  # type: ignore[union-attr]


@counting
def test_tracemalloc_started_and_stopped_meanwhile_leaves_counting_intact(timed: Start) -> None:
    import tracemalloc

    recorder, _, stats = timed(count_allocations=True)
    tracemalloc.start(1)  # installs its hooks over hotpath's
    two_arrays()
    traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()  # puts hotpath's back
    two_arrays()
    assert traced[1] >= ARRAY_BYTES  # tracemalloc saw them too (one at a time: each is dropped)
    row = stats()["two_arrays"].allocations
    assert row is not None and row.every.bytes == 4 * ARRAY_BYTES
    two_arrays()  # after stop: counting is off, the program runs on
    assert recorder.read(time.perf_counter_ns()) is not None


@counting
def test_only_one_recorder_counts_at_a_time(timed: Start) -> None:
    timed(count_allocations=True)
    second = create(RECORDER, lambda code, frame: None, None, 10, count_allocations=True)
    with pytest.raises(RuntimeError, match="another recorder is counting allocations"):
        second.start()
    second.stop()
    assert second.tool_id is None


@counting
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_allocates_under_the_inherited_hooks(timed: Start) -> None:
    _, _, stats = timed(count_allocations=True)
    two_arrays()
    pid = os.fork()
    if pid == 0:
        try:
            for _ in range(100):
                two_arrays()
            os._exit(0)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert stats()["two_arrays"].allocations.every.count == 4  # type: ignore[union-attr]


@counting
def test_counting_threads_abandoning_generators_while_another_thread_reads(timed: Start) -> None:
    """The odd paths together: generators dropped or closed mid-way (swept by the reader on
    3.13), threads ending, per-thread totals and reads from another thread, all at once."""
    recorder, table, stats = timed(count_allocations=True)
    barrier = threading.Barrier(5)
    done = threading.Event()
    reads: list[int] = []

    def run() -> None:
        barrier.wait()
        for i in range(300):
            lazy = arrays_lazily(3)
            next(lazy)
            if i % 2:
                lazy.close()
            del lazy  # the other half are dropped while suspended
            two_arrays()

    def read() -> None:
        barrier.wait()
        while not done.is_set():
            reads.append(sum(row.running for row in table.snapshot(time.perf_counter_ns())))
            recorder.thread_allocations()

    run_with_a_reader(run, 4, read, done)
    gc.collect()
    rows = stats()
    assert reads
    assert rows["two_arrays"].allocations.every.count == 4 * 300 * 4  # type: ignore[union-attr]
    assert rows["arrays_lazily"].calls == 1_200
    assert rows["arrays_lazily"].running == 0  # every one ended, seen or swept


@counting
def test_allocations_of_calls_in_progress_count_up_to_now(timed: Start) -> None:
    """As time is counted: a function still running has its own allocations so far, and its
    finished callee's are its child's, never more than it made itself (own stays >= 0)."""
    _, table, stats = timed(count_allocations=True)
    seen: dict[str, FunctionStats] = {}

    def running_caller() -> None:
        bytearray(ARRAY)  # its own
        two_arrays()  # a callee's, finished
        seen.update(
            {s.info.qualname.split(".")[-1]: s for s in table.snapshot(time.perf_counter_ns())}
        )

    running_caller()
    caller = seen["running_caller"].allocations
    assert caller is not None and seen["running_caller"].totals.completed == 0
    assert caller.so_far.bytes >= 3 * ARRAY_BYTES  # its own and the callee's, so far
    assert ARRAY_BYTES <= caller.own.bytes < ARRAY_BYTES + 4096
    assert caller.own.count >= 2
    done = stats()["running_caller"].allocations
    assert done is not None and done.running_own.bytes == 0 and done.own.bytes >= ARRAY_BYTES


@pytest.mark.skipif(RECORDER != "c", reason="the compiled core's procfs reader")
def test_the_procfs_reader_reads_this_process() -> None:
    from hotpath.recorder._crecorder import read_proc_self

    found = read_proc_self()
    if not sys.platform.startswith("linux"):
        assert found is None
        return
    assert found is not None
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        for _ in range(200):  # repeated: under -X dev, a reference miscounted shows
            stat, statm, tasks, fds = read_proc_self() or (b"", b"", {}, 0)
        assert int(stat.split()[0]) == os.getpid()
        assert int(statm.split()[1]) > 0  # resident pages
        assert {t.native_id for t in threading.enumerate()} <= set(tasks)
        assert all(text.split()[0] == str(tid).encode() for tid, text in tasks.items())
        assert fds == len(os.listdir("/proc/self/fd")) - 1  # not the listing's own
    finally:
        stop.set()
        helper.join()

"""The stack sampler: every interval (10 ms by default), the Python stack of every thread of
the program that used CPU since the last look, for all code, into the CPU table.

How a running thread is told from a waiting one: each thread's own CPU clock
(``pthread_getcpuclockid``). A thread blocked on a lock, in ``sleep``, in ``select`` or
waiting for the GIL uses no CPU, so its clock has not moved and it is not sampled; a thread in
a long C call (``json.dumps``'s encoder, a regex, zlib) has, and its stack ends at the Python
function that made the call. "Has moved" means by at least 1% of the time since the last look
(a thread that woke for a few microseconds is still waiting where it is seen), and for a
thread seen for the first time, 10% of it and at least 2 ms (``FIRST_LOOK_NS``): starting a
thread costs it 180-360 us of CPU here, and up to 1.4 ms under hotpath on a loaded machine
(its first run of code the recorder has not decided on yet), which would otherwise show
every new thread once, at whatever it waits on. Each sample
weighs the CPU time its thread used since the last look, at most the time since the last
look. Where threads have no CPU clock (not Linux or
another Unix with it), every thread is sampled at one interval's weight: waiting threads
then count too, and the README says so.

The interval varies at random between half and one and a half times the setting, on a
schedule of its own. A sampler can only look when the running thread lets go of the GIL,
which a C call that holds it does at its end: a fixed period, or one timed from the last
look, is anchored to those moments and locks onto a program's own rhythm. Measured on a loop
that spends 57% of its CPU in ``json.dumps``: a fixed 10 ms gave it 77% and 92% of the
samples in two runs; a random interval timed from the last look stayed within a few points
but drifted 5-6 points high in two CI runs of a 65/35 loop; timed on its own schedule, the
looks fall at random phases of any loop.

A thread in Python, rather than in the compiled core, because it costs little at this rate:
``sys._current_frames()`` and a walk of each running stack take tens of microseconds per
look, against the interval's 10,000 (benchmarks/run.py measures the whole at the default
interval). hotpath's own threads are never sampled.
"""

from __future__ import annotations

import os
import random
from types import CodeType, FrameType

from hotpath import launcher, stdlib
from hotpath.collectors import SamplingThread
from hotpath.filters import own_dirs, qualified_name
from hotpath.store import Store
from hotpath.store.cpu import CpuTable, Path

THREAD_NAME = "hotpath-stacks"
FIRST_LOOK_NS = 2_000_000  # a new thread's start-up CPU is not the program's work
MAX_DEPTH = 512  # frames kept per sample, the innermost ones (a deeper stack is cut at the top)


class StackSampler(SamplingThread):
    def __init__(self, store: Store, table: CpuTable, main_name: str, child: bool = False) -> None:
        """``child``: a followed child, whose main thread may run the program with no
        launcher under it (spawned, or forked from a spawned process)."""
        super().__init__(store, THREAD_NAME)
        self.table = table
        self.main_name = main_name
        self.interval_s = table.interval_s
        self._clocks: dict[int, int] = {}  # thread ident -> its CPU clock id
        self._spent: dict[int, int] = {}  # thread ident -> its CPU ns at the last look
        # Its own generator: the program's `random` must not see hotpath draw from it.
        self._random = random.Random(os.urandom(16))
        # The program's stacks start at its own first frame: what runs it (runpy, hotpath's
        # command line and launcher) is left out of every path.
        self._outermost: CodeType = launcher.run.__code__
        self._own = tuple(os.path.join(folder, "") for folder in own_dirs())
        self._main_is_hotpaths = not child  # outside the launcher, the main thread is not

    def provides(self) -> dict[str, bool]:
        return {"cpu": self.interval_s > 0}

    def install(self) -> None:
        if self.interval_s > 0:
            self._start_thread()

    def _run(self) -> None:
        me = stdlib.get_ident()
        last = due = stdlib.perf_counter_ns()
        interval_ns = self.interval_s * 1e9
        while True:
            # Looks are due on a schedule of their own: each one a random 0.5-1.5 intervals
            # after the one before it was *due*, not after it happened. A look happens when
            # the running thread lets go of the GIL, which a C call does at its end; timed
            # from there, every look began in step with the program's loop, and a loop that
            # spent 65% of its CPU in json.dumps was sampled at 70-71% (twice in CI).
            due += round(interval_ns * self._random.uniform(0.5, 1.5))
            now = stdlib.perf_counter_ns()
            if due < now - interval_ns:
                due = now  # far behind (the GIL was held long): start the schedule again
            if self._stopping.wait(max(0, due - now) / 1e9):
                return
            now = stdlib.perf_counter_ns()
            try:
                self.sample(me, now - last)
            except Exception as error:  # a sampler failure must never reach the program
                self.store.note_problem(f"stack sampler: {error!r}")
                return
            last = now

    def sample(self, me: int, elapsed_ns: int) -> None:
        """One look at every thread but hotpath's own."""
        own = self.store.own_idents
        main = stdlib.main_thread().ident
        frames = stdlib.current_frames()
        samples: list[tuple[Path, int]] = []
        for ident, frame in frames.items():
            if ident == me or ident in own:
                continue
            spent = self._cpu_since_last(ident, elapsed_ns)
            if spent > 0 and (path := self._path(frame, ident == main)):
                samples.append((path, spent))
        for gone in self._spent.keys() - frames.keys():
            del self._spent[gone]
            self._clocks.pop(gone, None)
        del frames  # the frames keep their locals alive: not a moment longer than needed
        if samples:
            self.table.add(samples)

    def _cpu_since_last(self, ident: int, elapsed_ns: int) -> int:
        """The CPU ``ident`` used since the last look, at most ``elapsed_ns``; 0 when it
        waited (see the module's docstring). A thread seen for the first time has used all
        its CPU since then, unless it was running before the sampler started: capped the
        same way."""
        if not stdlib.HAS_THREAD_CPU_CLOCKS:
            return elapsed_ns
        try:
            clock = self._clocks.get(ident)
            if clock is None:
                clock = self._clocks[ident] = stdlib.thread_cpu_clock(ident)
            spent = stdlib.clock_ns(clock)
        except OSError:
            # It ended between the listing and the reading; or it is a new thread that got
            # an ended one's ident between two looks, and the clock kept is the old one's.
            # Either way, forget it: a live thread gets its own clock at the next look.
            self._clocks.pop(ident, None)
            self._spent.pop(ident, None)
            return 0
        before = self._spent.get(ident)
        self._spent[ident] = spent
        used = min(spent - (before or 0), elapsed_ns)
        least = elapsed_ns // 100 if before is not None else max(elapsed_ns // 10, FIRST_LOOK_NS)
        return used if used >= least else 0

    def _path(self, frame: FrameType, main: bool) -> Path:
        """The frames from the program's outermost one in; empty where hotpath's own code
        runs outside the program: in the main thread, before and after the program (its
        start-up, its exit work from atexit); in another, a thread hotpath's code began."""
        path: Path = []
        table = self.table
        current: FrameType | None = frame
        while current is not None and len(path) < MAX_DEPTH:
            code = current.f_code
            if code is self._outermost:
                return path[::-1]
            outermost = code
            # hotpath's frames inside the program's (a tracked lock's or queue's method)
            # are not the program's: their time is their caller's, as a C call's is.
            if not code.co_filename.startswith(self._own):
                if not table.knows(code):
                    table.name(code, qualified_name(code, current, self.main_name))
                # Past the table's cap a code object has no name and is not kept alive: its
                # id could pass to another one, so it counts as code 0, "other code".
                key = id(code) if table.knows(code) else 0
                path.append((key, current.f_lineno or 0))
            current = current.f_back
        if current is None and (
            (main and self._main_is_hotpaths) or outermost.co_filename.startswith(self._own)
        ):
            return []  # (a stack cut at MAX_DEPTH is the program's: it is kept)
        path.reverse()
        return path

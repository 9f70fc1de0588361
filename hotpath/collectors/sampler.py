"""A background thread that samples the OS: per-thread CPU, process figures, built-in gauges.

On Linux it reads /proc through the compiled core's ``read_proc_self``, which keeps the GIL
for the whole reading (its comment in _crecorder.c says why: read from Python, one sample
took 90-150 ms of a busy program's wall time in GIL hand-offs). Elsewhere, or without the
compiled core, psutil reads the same figures.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import NamedTuple

from hotpath import stdlib
from hotpath.collectors import SamplingThread
from hotpath.collectors.event_loops import LoopRegistry
from hotpath.store import Store
from hotpath.store.threads import ProcessFigures, ThreadFigures

THREAD_NAME = "hotpath-sampler"
_STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "waiting (disk)",
    "Z": "zombie",
    "T": "stopped",
    "t": "stopped (traced)",
    "I": "idle",
}


class OsReading(NamedTuple):
    user_s: float
    system_s: float
    rss_bytes: int
    open_fds: int
    threads: dict[int, tuple[float, float, str]]  # native id -> user s, system s, status


Reader = Callable[[], OsReading]


def procfs_reader() -> Reader | None:
    """Linux's /proc, read by the compiled core in one call; None where that cannot be."""
    try:
        from hotpath.recorder._crecorder import read_proc_self
    except ImportError:
        return None
    if read_proc_self() is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")

    def fields(stat: bytes) -> list[bytes]:
        return stat[stat.rfind(b")") + 2 :].split()  # after "pid (name) ": state, ppid, ...

    def read() -> OsReading:
        found = read_proc_self()
        if found is None:  # /proc went away: not seen, but the sampler notes it
            raise OSError("/proc/self can no longer be read")
        stat, statm, tasks, fds = found
        threads = {}
        for native_id, text in tasks.items():
            task = fields(text)  # state is field 3 of stat(5), utime 14, stime 15
            state = task[0].decode()
            threads[native_id] = (
                int(task[11]) / tick,
                int(task[12]) / tick,
                _STATES.get(state, state or "unknown"),
            )
        process = fields(stat)
        return OsReading(
            int(process[11]) / tick,
            int(process[12]) / tick,
            int(statm.split()[1]) * page,
            fds,
            threads,
        )

    return read


def needs_psutil() -> bool:
    """Whether the sampler must import psutil here (no /proc to read through the core)."""
    return procfs_reader() is None


def psutil_reader() -> Reader:
    """psutil, imported now: it takes module-level locks from threading.Lock as it imports,
    and imported later, in the sampler's thread, it raced a program that replaces
    threading.Lock (it then took the program's). It costs the program's start ~10 ms."""
    import psutil

    process = psutil.Process()

    def read() -> OsReading:
        threads = {
            t.id: (t.user_time, t.system_time, thread_status(t.id)) for t in process.threads()
        }
        with process.oneshot():
            cpu = process.cpu_times()
            memory = process.memory_info()
            fds = process.num_fds() if hasattr(process, "num_fds") else 0
        return OsReading(cpu.user, cpu.system, memory.rss, fds, threads)

    return read


def thread_status(native_id: int) -> str:
    """The OS's scheduling state of one of our threads (Linux; elsewhere "unknown")."""
    try:
        with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as stat:
            text = stat.read()
    except OSError:
        return "unknown"
    state = text[text.rfind(")") + 2 : text.rfind(")") + 3]
    return _STATES.get(state, state or "unknown")


class Sampler(SamplingThread):
    def __init__(
        self,
        store: Store,
        interval_s: float,
        loops: LoopRegistry,
        enabled: bool = True,
    ) -> None:
        super().__init__(store, THREAD_NAME)
        self.enabled = enabled  # off when the program ships its own psutil
        self.interval_s = interval_s
        self.loops = loops
        self._process_cpu: tuple[float, int] | None = None  # cpu seconds, perf ns
        self._gc_before = [(0, 0)] * 3
        self._read: Reader | None = None

    def provides(self) -> dict[str, bool]:
        return {"threads": self.enabled, "gauges": self.enabled}

    def install(self) -> None:
        """Choose how to read the OS (importing psutil, if that is how), then start."""
        if not self.enabled:
            return
        self._read = procfs_reader() or psutil_reader()
        self._start_thread()

    def _run(self) -> None:
        read = self._read
        assert read is not None
        self._sample_safely(read)
        while not self._stopping.wait(self.interval_s):
            self._sample_safely(read)
        self._sample_safely(read)  # the final figures, for the report

    def _sample_safely(self, read: Reader) -> None:
        try:
            self.sample(read())
        except Exception as error:  # a sampler failure must never reach the program
            self.store.note_problem(f"thread sampler: {error!r}")

    def sample(self, reading: OsReading) -> None:
        now = stdlib.perf_counter_ns()
        names = {t.native_id: t.name for t in stdlib.all_threads() if t.native_id is not None}
        own = self.store.own_native_ids
        table = self.store.threads
        alive: dict[int, ThreadFigures] = {}
        for native_id, (user_s, system_s, status) in reading.threads.items():
            previous = table.previous(native_id)
            seen = alive[native_id] = self._figures(
                previous,
                native_id,
                names.get(native_id, previous.name if previous else f"native-{native_id}"),
                native_id in own,
                user_s,
                system_s,
                status,
                now,
            )
            if native_id not in names and seen.name != f"native-{native_id}":
                # threading has let it go and the OS has not yet: its Python work is done.
                seen.status = "ending"
        figures = self._process_figures(table.read().process, reading.user_s, reading.system_s, now)
        figures.rss_bytes = reading.rss_bytes
        figures.rss_max_bytes = max(figures.rss_max_bytes, reading.rss_bytes)
        figures.threads = len(alive)
        figures.open_fds = reading.open_fds
        table.update(alive, figures)
        self._builtin_gauges(figures)
        self._probe_event_loops()

    def _figures(
        self,
        previous: ThreadFigures | None,
        native_id: int,
        name: str,
        own: bool,
        user_s: float,
        system_s: float,
        status: str,
        now: int,
    ) -> ThreadFigures:
        if previous is None:
            # No earlier reading: its CPU so far may predate hotpath, so no rate yet.
            first_seen, cpu_before, percent, peak = now, user_s + system_s, 0.0, 0.0
        else:
            first_seen, cpu_before = previous.first_seen_ns, previous.cpu_at_first_seen_s
            elapsed_s = (now - previous.last_seen_ns) / 1e9
            spent = user_s + system_s - previous.cpu_s
            percent = 100.0 * spent / elapsed_s if elapsed_s > 0 else 0.0
            peak = max(previous.cpu_percent_max, percent)
        return ThreadFigures(
            native_id=native_id,
            name=name,
            own=own,
            status=status,
            user_s=user_s,
            system_s=system_s,
            cpu_percent=percent,
            cpu_percent_max=peak,
            first_seen_ns=first_seen,
            last_seen_ns=now,
            cpu_at_first_seen_s=cpu_before,
        )

    def _process_figures(
        self, previous: ProcessFigures, user_s: float, system_s: float, now: int
    ) -> ProcessFigures:
        figures = ProcessFigures(rss_max_bytes=previous.rss_max_bytes, samples=previous.samples + 1)
        figures.user_s, figures.system_s = user_s, system_s
        spent = user_s + system_s
        if self._process_cpu is not None:
            before, at = self._process_cpu
            if now > at:
                figures.cpu_percent = 100.0 * (spent - before) / ((now - at) / 1e9)
        self._process_cpu = (spent, now)
        return figures

    def _builtin_gauges(self, process: ProcessFigures) -> None:
        gauges = self.store.gauges
        gauges.gauge("process.rss_bytes", builtin=True).set(process.rss_bytes)
        gauges.gauge("process.cpu_percent", builtin=True).set(round(process.cpu_percent, 1))
        gauges.gauge("process.open_fds", builtin=True).set(process.open_fds)
        gauges.gauge("process.threads", builtin=True).set(process.threads)
        for generation, stats in enumerate(gc.get_stats()):
            counts = (stats["collections"], stats["collected"])
            if counts != self._gc_before[generation]:
                gauges.gauge(f"gc.collections.gen{generation}", builtin=True).set(counts[0])
                gauges.gauge(f"gc.collected.gen{generation}", builtin=True).set(counts[1])
                self._gc_before[generation] = counts

    def _probe_event_loops(self) -> None:
        own = self.store.own_idents
        names = {t.ident: t.name for t in stdlib.all_threads()}
        for ident, loop in self.loops.running():
            if ident in own:
                continue
            name = f"event_loop.lag_ms[{names.get(ident, ident)}]"
            sent = stdlib.perf_counter_ns()
            try:
                loop.call_soon_threadsafe(self._lag_probe(name, sent))
            except RuntimeError:
                continue  # closed between the check and the call

    def _lag_probe(self, name: str, sent_ns: int) -> Callable[[], None]:
        gauges = self.store.gauges

        def probe() -> None:
            # Runs in the loop: how late it runs is how long the loop took to get to it.
            lag_ms = (stdlib.perf_counter_ns() - sent_ns) / 1e6
            gauges.gauge(name, builtin=True).set(round(lag_ms, 3))

        return probe

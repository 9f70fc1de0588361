"""One profiled run: starts the collectors and the MCP server, runs the program, reports at exit.

The program must end exactly as it would under python: the same traceback (without hotpath's
frames), the same exit code, death by the same signal. The report is written from an ``atexit``
handler registered before the program runs, so it runs after the program's own handlers and after
non-daemon threads have been joined: their work is in the report.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import sys
import warnings
from dataclasses import replace
from types import FrameType
from typing import IO, Protocol

from hotpath import child, launcher, stdlib
from hotpath.child import ChildReporter, new_store
from hotpath.collectors import Collector
from hotpath.collectors.channels import ChannelCollector
from hotpath.collectors.children import ChildReceiver
from hotpath.collectors.event_loops import LoopRegistry
from hotpath.collectors.gauges import ProgramGauges
from hotpath.collectors.http import HttpCollector
from hotpath.collectors.locks import LockCollector
from hotpath.collectors.memory import MemoryCollector
from hotpath.collectors.routes import RouteCollector
from hotpath.collectors.sampler import Sampler, needs_psutil
from hotpath.collectors.sql import SqlCollector
from hotpath.collectors.stacks import StackSampler
from hotpath.collectors.streams import StreamCollector
from hotpath.collectors.tasks import TaskCollector
from hotpath.collectors.timing import AsyncioListener, NoToolIdError, TimingCollector
from hotpath.config import Config
from hotpath.dependencies import REPORT, SAMPLER, SERVER, shadowed
from hotpath.filters import FunctionFilter, own_dirs, qualified_name
from hotpath.store import RunInfo, Store

FORK_WARNING = r"This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to deadlocks"


class Server(Protocol):
    url: str

    def stop(self) -> None: ...

    def close_in_child(self) -> None: ...


class Where(Protocol):
    """Where the program's own code is, and what its main module is called."""

    root: str
    name: str


def build_collectors(
    config: Config,
    function_filter: FunctionFilter,
    program: Where,
    store: Store,
    sample: bool,
    child: bool = False,
) -> list[Collector]:
    """The collectors writing into ``store``; in a followed child, tracemalloc is not
    started (live memory by site is not sent to the parent yet: it would cost the child
    3-7x for nothing)."""
    root, name = program.root, program.name
    streams = StreamCollector(store.streams, root, name)
    tasks = TaskCollector(store.futures, function_filter.selects, name, root)
    timing = TimingCollector(
        store.functions,
        function_filter,
        name,
        config.recorder,
        AsyncioListener(tasks, streams),
        count_allocations=config.alloc,
    )
    # --alloc: what the asyncio collectors record in the program's calls is hotpath's. The
    # recorder (made with the task collector as its listener) says how to hold it out.
    exclusion = timing.recorder.exclusion
    tasks.exclusion = exclusion
    loops = LoopRegistry()

    def selects(frame: FrameType) -> bool:
        """Whether an object created in ``frame`` is the program's."""
        return function_filter.selects(
            qualified_name(frame.f_code, frame, name), frame.f_code.co_filename
        )

    # In this order: their entries in profiler_status, and the order every hook runs in
    # (the sampler imports psutil before tracemalloc may start; timing starts last).
    collectors: list[Collector] = [
        timing,
        ChannelCollector(
            store.channels,
            selects,
            root,
            name,
            exclusion,
        ),
        tasks,
        streams,
        LockCollector(
            store.locks,
            selects,
            root,
            config.logs_limit,
            config.recorder,
            exclusion,
        ),
        SqlCollector(store.sql, selects, root, name, store.own_idents, exclusion),
        HttpCollector(store.http, selects, root, name, store.own_idents, exclusion),
        RouteCollector(store.routes, selects, root, name, store.own_idents, exclusion),
        Sampler(store, store.info.sample_interval_s, loops, enabled=sample),
        MemoryCollector(store.memory, from_start=config.alloc_sites and not child),
        loops,
        ProgramGauges(store.gauges),
        StackSampler(store, store.cpu, name, child),
    ]
    return collectors


class Session:
    def __init__(self, config: Config, program: launcher.Program) -> None:
        self.config = config
        self.program = program
        function_filter = FunctionFilter(
            config.include, config.exclude, roots=[program.root], roots_chosen=program.root_chosen
        )
        # hotpath's own lines go to the stderr the program started with, even if it closes or
        # replaces sys.stderr, and never into the program's own stdout.
        self.err: IO[str] = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace")
        self.err.reconfigure(line_buffering=True)
        self._mcp = config.mcp and not self._shadows(SERVER, "the MCP server is off")
        # Where /proc is read through the compiled core, psutil is never imported: a program's
        # own module of that name is then no reason to do without the thread sampler.
        sample = not (
            needs_psutil() and self._shadows(SAMPLER, "threads and process figures are off")
        )
        self._plain_report = bool(self._shadows(REPORT, "the report is printed as JSON"))
        info = RunInfo(
            argv=program.argv,
            filters=function_filter.describe(),
            collectors={},
            metrics_limit=config.metrics_limit,
            percentiles=config.percentiles,
            recorder=config.recorder,
            sort=config.sort,
            recorder_fallback=config.recorder_fallback,
            alloc_unavailable=(
                "this run uses the Python one "
                f"({config.recorder_fallback or 'HOTPATH_RECORDER=python'})"
                if config.alloc and config.recorder == "python"
                else None
            ),
            sample_interval_s=config.threads_interval_ms / 1000,
            cpu_interval_s=config.sample_interval_ms / 1000,
        )
        self._filter = function_filter
        self._sample = sample
        self.store = store = Store(info, config.logs_limit, config.max_functions)
        self.receiver = (
            ChildReceiver(
                store,
                child.settings(
                    config, program.root, program.root_chosen, program.name, self._sample
                ),
            )
            if config.follow
            else None
        )
        self._address = self.receiver.address if self.receiver is not None else None
        self.collectors = self._collectors(store)
        for collector in self.collectors:
            info.collectors.update(collector.provides())
        self.server: Server | None = None
        self._exit_signal: int | None = None
        self._fork_filter: object | None = None
        self._finished = stdlib.new_lock()

    def _collectors(self, store: Store, child: bool = False) -> list[Collector]:
        collectors = build_collectors(
            self.config, self._filter, self.program, store, self._sample, child
        )
        if self.receiver is not None and store is self.store:
            collectors.append(self.receiver)
        return collectors

    def run(self) -> None:
        """Run the program; always ends by raising SystemExit, like the interpreter would."""
        if self._mcp:
            self._start_server()
        self.store.info.collectors["mcp"] = self.server is not None
        atexit.register(self._finish)
        os.register_at_fork(before=self._before_fork, after_in_child=self._forget_in_child)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, self._on_sigterm)
        for collector in self.collectors:
            collector.install()
        launcher.install(self.program)
        if config_fallback := self.config.recorder_fallback:
            self.err.write(
                f"[hotpath] recorder: python, not the compiled one ({config_fallback}); "
                "timing costs several times more per call\n"
            )
        try:
            for collector in self.collectors:
                collector.start()
        except NoToolIdError as error:
            self.err.write(f"hotpath: {error}; hotpath needs one to time functions\n")
            raise SystemExit(2) from None
        try:
            launcher.run(self.program)
        except SystemExit:
            raise
        except KeyboardInterrupt as error:
            self._print_exception(error)
            self._exit_signal = signal.SIGINT
            raise SystemExit(130) from None
        except BaseException as error:
            self._print_exception(error)
            raise SystemExit(1) from None

    def _shadows(self, modules: frozenset[str], consequence: str) -> list[str]:
        """The program's own modules named like ones hotpath needs: hotpath must not replace
        them (see hotpath.dependencies), so it does without."""
        found = shadowed(self.program.path0, modules)
        if found:
            names = ", ".join(found)
            self.err.write(
                f"[hotpath] warning: the program has its own {names} module(s); {consequence}, "
                "so that hotpath does not replace them\n"
            )
        return found

    def _start_server(self) -> None:
        from hotpath.views.mcp_server import start_server

        # With --alloc-sites the server's libraries are imported now, before tracemalloc
        # starts: imported later, their modules would be live memory at the importer's sites.
        self.server = start_server(
            self.store, self.config, self.err, prepare_now=self.config.alloc_sites
        )

    @staticmethod
    def _print_exception(error: BaseException) -> None:
        own = tuple(os.path.join(d, "") for d in own_dirs())
        traceback = launcher.strip_own_frames(error.__traceback__, own)
        error.__traceback__ = traceback
        sys.excepthook(type(error), error, traceback)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """Runs in the main thread wherever it was, inside hotpath's own writes too (the store's
        locks are reentrant for it, see hotpath/store/__init__.py)."""
        self._exit_signal = signum
        try:
            self._finish()
        except Exception as error:  # raised on, it would surface in the program's frame
            with contextlib.suppress(OSError, ValueError):
                self.err.write(f"[hotpath] the report was cut short: {error!r}\n")
        # Reached when the report was already written too: die anyway, as the default would.
        self._die(signum)

    def _die(self, signum: int) -> None:
        """End the process by ``signum``, as python would have: same exit status."""
        with contextlib.suppress(OSError, ValueError):
            self.err.flush()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _before_fork(self) -> None:
        """Python 3.12+ warns when a multi-threaded process forks. hotpath's own threads must
        not make a single-threaded program see that warning; the program's threads still do.
        Decided anew at each fork: the filter stays until the next one, since 3.13 warns after
        the after_in_parent hooks (3.12 before them). It matches only this fork warning."""
        self._drop_fork_filter()
        own = self.store.own_idents
        if all(t.ident in own or t is stdlib.main_thread() for t in stdlib.all_threads()):
            warnings.filterwarnings("ignore", message=FORK_WARNING, category=DeprecationWarning)
            self._fork_filter = warnings.filters[0]

    def _drop_fork_filter(self) -> None:
        if self._fork_filter is not None:
            filters: list[object] = warnings.filters  # type: ignore[assignment]
            with contextlib.suppress(ValueError):
                filters.remove(self._fork_filter)
            warnings._filters_mutated()  # type: ignore[attr-defined]  # as resetwarnings() does
            self._fork_filter = None

    def _forget_in_child(self) -> None:
        """A forked child keeps nothing of the parent's profiling: the parent reports, and
        serves. hotpath's threads are gone in the child, and any lock one of them held at the
        fork stays held there: recording on would deadlock the child's first timed call (seen
        with Python 3.13). Followed, it starts afresh (``_follow_in_child``)."""
        self._drop_fork_filter()
        self._finished.acquire(blocking=False)
        if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            # A pool worker must die when terminate() sends SIGTERM (it hung otherwise).
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for collector in self.collectors:
            collector.forget_in_child()
        if self.server is not None:
            # Or a child that outlives its parent keeps the port: connections hang, and the
            # next `hotpath run` on that port finds it in use.
            self.server.close_in_child()
            self.server = None
        if self._address is not None:
            self._follow_in_child(self._address)

    def _follow_in_child(self, address: str) -> None:
        """A forked child reports to the parent: fresh tables and collectors (nothing of the
        parent's: its figures are the parent's, and a lock a thread of hotpath's held at the
        fork stays held here), and a reporter. Unreachable parent: it stays unprofiled. A fork
        of a followed child is followed the same way, with nothing of that child's."""
        child.abandon_inherited()
        info = replace(self.store.info, pid=os.getpid(), collectors={})
        store = new_store(info, self.config)
        reporter = ChildReporter(address, store, "fork")
        if not reporter.connect():
            return
        self.store, self.receiver = store, None
        self.collectors = self._collectors(store, child=True)
        for collector in self.collectors:
            collector.install()
        try:
            for collector in self.collectors:
                collector.start()
        except NoToolIdError:
            return
        reporter.start(self.collectors)
        atexit.register(self._finish_child, reporter, os.getpid())

    def _finish_child(self, reporter: ChildReporter, pid: int) -> None:
        if os.getpid() != pid:
            return  # a fork of this child inherited the handler: its own one ends it
        reporter.finish("exited")

    def _finish(self) -> None:
        if not self._finished.acquire(blocking=False):
            return
        self._defer_signals()
        self.store.ended_ns = stdlib.perf_counter_ns()
        for collector in self.collectors:
            if (warning := collector.finish()) is not None:
                self.err.write(f"[hotpath] warning: {warning}\n")
        for stream in (sys.stdout, sys.stderr):
            # Closed or replaced by the program: nothing of ours to flush then.
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        self._write_report()
        for collector in self.collectors:
            collector.release()
        if self.server is not None:
            if self.config.keep_serving and self._exit_signal is None:
                self._serve_until_interrupted()
            self.server.stop()
        if self._exit_signal is not None:
            self._die(self._exit_signal)

    def _defer_signals(self) -> None:
        """From here on, a Ctrl-C or SIGTERM (a person pressing Ctrl-C twice, a supervisor
        that sends SIGTERM at exit) waits for the report: it is noted, and the process dies
        by it once hotpath's exit work is done. Raised inside that work, it printed
        "Exception ignored in atexit callback", could cut the report short, and exited 0 or
        130 instead of dying by the signal. Handlers the program set itself, or an inherited
        SIG_IGN, are left as they are: the program's choice."""
        ours = (signal.default_int_handler, signal.SIG_DFL, self._on_sigterm)
        for signum in (signal.SIGINT, signal.SIGTERM):
            # ValueError off the main thread: a SIGTERM handler or atexit runs on it.
            with contextlib.suppress(ValueError):
                if signal.getsignal(signum) in ours:
                    signal.signal(signum, self._note_signal)

    def _note_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._exit_signal is None:
            self._exit_signal = signum

    def _write_report(self) -> None:
        config = self.config
        if config.flame is not None:
            from hotpath.views import flame

            try:
                flame.write(self.store.cpu_reading(), config.flame, self.program.name)
            except OSError as error:
                self.err.write(f"[hotpath] could not write {config.flame}: {error}\n")
        if config.report == "none" and config.output is None:
            return
        # Imported now: the views cost the program's start ~5-9 ms it need not pay.
        from hotpath.views import registry
        from hotpath.views.common import MAX_LIMIT

        data = registry.report(self.store, MAX_LIMIT)  # files get every row, tables a few
        try:
            if config.output is not None:
                with open(config.output, "w", encoding="utf-8") as handle:
                    json.dump(data, handle, indent=2)
                    handle.write("\n")
            if config.report == "json" or (config.report == "table" and self._plain_report):
                json.dump(data, self.err, indent=2)
                self.err.write("\n")
            elif config.report == "table":
                from hotpath.views import report  # rich is imported only now, when it is needed

                report.render(data, self.err, config.limit)
        except OSError as error:
            self.err.write(f"[hotpath] could not write the report: {error}\n")

    def _serve_until_interrupted(self) -> None:
        assert self.server is not None
        # Until Ctrl-C, or SIGTERM: the deferring handler notes it. Polled in 0.1 s slices, as
        # a handler that only notes wakes no one. A handler of the program's own (left in
        # place) may raise KeyboardInterrupt instead: that ends the serving too, wherever it
        # lands, the line that says how to stop included (a Ctrl-C pressed as soon as it was
        # printed raised there: "Exception ignored in atexit callback").
        with contextlib.suppress(KeyboardInterrupt):
            self.err.write(
                f"[hotpath] program ended; MCP server still on {self.server.url} (Ctrl-C to stop)\n"
            )
            while self._exit_signal is None:
                stdlib.sleep(0.1)
        if self._exit_signal == signal.SIGINT:
            self._exit_signal = None  # Ctrl-C ends the serving, not the program's exit status

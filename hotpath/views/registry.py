"""The tool registry: one row per tool, from which everything that lists tools is made.

The MCP server registers every row (``views/tools.py``), the JSON report has one key per row
with a ``report_key``, the README's tool list and the tests' list of names are checked against
``NAMES``. A new tool is one function in the view module of its domain (``answer(store,
**arguments)``, its arguments' types and defaults being the tool's), its answer's JSON Schema
beside it, and one row here.

Views read the store's snapshots and nothing else: no collector, no live object of the
program. A tool that must act first (``memory_sites`` takes a snapshot) says so in
``refresh``, which the MCP call runs and the exit report does not (the session took its own).
A tool that measures a window of the run (``cpu_snapshot``) names in ``window`` what to read
first; the call then waits its ``seconds`` (the MCP server without blocking its event loop)
and the answer function gets that first reading as ``baseline``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from hotpath import stdlib
from hotpath.store import Store
from hotpath.views import (
    bounded,
    channels,
    cpu,
    functions,
    futures,
    gauges,
    locks,
    marks,
    memory,
    operations,
    processes,
    status,
    streams,
    threads,
)
from hotpath.views.common import DEFAULT_LIMIT, JSON, BadArgument, check_limit
from hotpath.views.lookup import NotFound
from hotpath.views.schema import Schema

Kind = Literal["status", "summary", "logs", "control", "window", "diff"]
# The arguments every summary tool takes besides its own (``begin`` answers them).
PROCESS = inspect.Parameter(
    "process", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=int | None
)
SINCE = inspect.Parameter(
    "since", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=str | None
)
OFFSET = inspect.Parameter("offset", inspect.Parameter.KEYWORD_ONLY, default=0, annotation=int)
MAX_OFFSET = 1_000_000


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    answer: Callable[..., JSON]  # answer(store, **arguments)
    output: Schema  # every answer validates against it: the MCP outputSchema
    kind: Kind  # summary tools take a limit and are in the report; logs take a name too
    description: str  # for agents: what it answers, and what each argument takes
    report_key: str | None = None  # its key in the JSON report, if it has one
    refresh: Callable[[Store], object] | None = None  # what an MCP call does first
    read_only: bool = True  # False: it changes what hotpath does (MCP readOnlyHint)
    window: Callable[[Store], object] | None = None  # the reading a window starts from
    # Keys of its answer whose rows a followed child sends (its own answer's), for the view
    # to list beside this process's (``common.with_children``).
    from_children: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()  # keys of its answer's row lists: offset and the size bound
    says: tuple[str, str] | None = None  # its summary line: with rows, without (bounded.py)

    def __post_init__(self) -> None:
        # What clients are told: the answer as it leaves ``finish``, summary first.
        object.__setattr__(self, "output", bounded.envelope(self.output, self.rows))

    @property
    def scoped(self) -> bool:
        """Every summary tool takes ``process`` and ``since`` (``begin`` answers them)."""
        return self.kind == "summary"

    @property
    def text(self) -> str:
        """Its whole description, as clients see it."""
        return f"{self.description} {SCOPE_DOC}" if self.scoped else self.description

    def parameters(self) -> list[inspect.Parameter]:
        """The arguments an agent gives: the answer function's but the store and the
        baseline a window tool is handed, and ``process`` and ``since`` on summary tools."""
        signature = inspect.signature(self.answer, eval_str=True)
        given = [p for p in list(signature.parameters.values())[1:] if p.name != "baseline"]
        return [*given, PROCESS, SINCE, OFFSET] if self.scoped else given


LIMIT_DOC = "limit: rows to return (default 10, at most 10000)."
SCOPE_DOC = (
    "process (optional): a pid from the processes tool, to answer for that process alone "
    "instead of the whole program. since (optional): a mark's label (the mark tool), to "
    "answer for what happened after it: calls, times, percentiles, channel traffic, tasks, "
    "items and CPU samples since then; sizes, states, threads and gauges as they are now. "
    "offset (optional): rows to skip, to read on where an answer was cut (truncated says)."
)
NAME_DOC = "takes an exact name, an unambiguous suffix, or the id from the summary tool"

TOOLS: tuple[Tool, ...] = (
    Tool(
        "profiler_status",
        status.profiler_status,
        status.PROFILER_STATUS,
        "status",
        (
            "What hotpath is watching: pid, argv, Python version, uptime, the function "
            "filters (include/exclude globs, or the program's own source tree by default), "
            "which collectors are on (timing, alloc, ...), and how many functions, channels, "
            "streams, futures, threads and gauges are known so far."
        ),
        report_key="status",
        says=(
            (
                "watching pid {pid} (Python {python}, {recorder} recorder) for {uptime}: "
                "{known[functions]:,} functions timed so far"
            ),
            "",
        ),
    ),
    Tool(
        "functions_timing",
        functions.functions_timing,
        functions.FUNCTIONS_TIMING,
        "summary",
        (
            "Functions of the program with their time, calls in progress included up to now. "
            "self_ns: time in the function itself, not in other profiled functions it called "
            "(where the time goes); total_ns: inclusive wall time, callees included, recursive "
            "calls in one thread counted once (which calls are slow end to end). For generators "
            "and coroutines a call lasts from first start to final return, suspended time "
            "included; active_ns is the time they actually ran. calls counts calls started; "
            "avg_ns and percentiles_ns are per finished call (null while none has finished). "
            "percent_self: self_ns as a share of all profiled functions' self time; "
            "percent_total: total_ns against the wall time (concurrent calls can pass 100%). "
            "sort: self (default, unless HOTPATH_SORT says), total, calls, avg or p99. errors "
            f"counts calls that raised. {LIMIT_DOC}"
        ),
        report_key="functions_timing",
        rows=("functions",),
        says=(
            (
                "{row[name]} leads by {sorted_by}: {row[percent_total]}% of wall time, "
                "{row[calls]:,} calls, self {row[self]}, avg {row[avg]} ({total_functions:,} "
                "functions timed in {wall})"
            ),
            "no function timed: {note}",
        ),
    ),
    Tool(
        "function_timing_logs",
        functions.function_timing_logs,
        functions.FUNCTION_TIMING_LOGS,
        "logs",
        (
            "The most recent finished calls of one function, newest first: timestamp (UTC), "
            "duration, thread name and id, and outcome (returned, or the exception type raised). "
            f"function_name {NAME_DOC}. hotpath keeps the last 100 calls per function by default "
            f"(HOTPATH_LOGS_LIMIT). {LIMIT_DOC}"
        ),
        rows=("logs",),
        says=(
            (
                "the {count} most recent calls of {function[name]}, newest first: the last took "
                "{row[duration]} and {row[outcome]}"
            ),
            "no call of {function[name]} has finished yet",
        ),
    ),
    Tool(
        "functions_alloc",
        functions.functions_alloc,
        functions.FUNCTIONS_ALLOC,
        "summary",
        (
            "Allocations per function, counted exactly by allocator hooks, sorted by "
            "self_allocated_bytes (made by the function itself, not by profiled functions it "
            "called). allocations / allocated_bytes include callees, recursion counted once; "
            "avg_* and percentiles_allocated_bytes are per finished call. A count is a request "
            "to Python's allocator (objects reused from free lists, e.g. small tuples and floats, "
            "make none); bytes are bytes requested. Frees are not counted (a free does not say its "
            "size): for what stays alive use memory_sites. Needs hotpath run --alloc (or "
            f"HOTPATH_ALLOC=1); without it the answer says how to turn it on. {LIMIT_DOC}"
        ),
        report_key="functions_alloc",
        rows=("functions",),
        says=(
            (
                "{row[name]} allocates the most itself: {row[self_allocated]} in {row[calls]:,} "
                "calls ({total_functions:,} functions counted)"
            ),
            "no allocation counted: {note}",
        ),
    ),
    Tool(
        "function_alloc_logs",
        functions.function_alloc_logs,
        functions.FUNCTION_ALLOC_LOGS,
        "logs",
        (
            "The most recent finished calls of one function with the allocations each made "
            f"(callees included). Needs --alloc. function_name {NAME_DOC}. {LIMIT_DOC}"
        ),
        rows=("logs",),
        says=(
            (
                "the {count} most recent calls of {function[name]} with what each "
                "allocated, newest first"
            ),
            "no call of {function[name]} has finished yet",
        ),
    ),
    Tool(
        "functions_cpu",
        cpu.functions_cpu,
        cpu.FUNCTIONS_CPU,
        "summary",
        (
            "Where the CPU goes, for ALL code (the standard library, installed packages, C "
            "calls counted in the Python function that made them), sampled from every thread's "
            "stack every 10 ms; threads that are waiting are not sampled. Per function: "
            "self_samples / self_cpu_ns where it was the innermost frame, total_* where it was "
            "anywhere on the stack; percent_* of all sampled CPU; self_s / total_s estimated "
            "CPU seconds. Complements functions_timing (exact, but only for the functions the "
            f"filter times). {LIMIT_DOC}"
        ),
        report_key="functions_cpu",
        rows=("functions",),
        says=(
            (
                "{row[name]} uses the most CPU itself: {row[percent_self]}% of {cpu} sampled "
                "({samples:,} samples, all code)"
            ),
            "no CPU sampled: {note}",
        ),
    ),
    Tool(
        "cpu_stacks",
        cpu.cpu_stacks,
        cpu.CPU_STACKS,
        "summary",
        (
            "The heaviest sampled call paths, outermost function first, merged by function, "
            "with the CPU spent at their innermost frame. A path longer than 16 frames shows "
            "its first 4 and last 12. function_name (optional) keeps only the paths through "
            f"that function, shown from it down; it {NAME_DOC} (functions_cpu). {LIMIT_DOC}"
        ),
        report_key="cpu_stacks",
        rows=("stacks",),
        says=(
            (
                "the heaviest call path has {row[percent]}% of {cpu} sampled CPU, {row[frames]} "
                "frames deep ({total_stacks:,} paths)"
            ),
            "no CPU sampled: {note}",
        ),
    ),
    Tool(
        "cpu_snapshot",
        cpu.cpu_snapshot,
        cpu.CPU_SNAPSHOT,
        "window",
        (
            "What the program is doing right now: samples the next `seconds` (default 5, at "
            "most 30) and answers with that window only, functions (as functions_cpu) and "
            f"stacks (as cpu_stacks). {LIMIT_DOC}"
        ),
        window=cpu.cpu_window,
        rows=("functions", "stacks"),
        says=(
            (
                "in the last {seconds} s, {row[name]} used the most CPU itself: "
                "{row[percent_self]}% of {cpu}"
            ),
            "no CPU sampled in the last {seconds} s",
        ),
    ),
    Tool(
        "trace_memory",
        memory.trace_memory,
        memory.TRACE_MEMORY,
        "control",
        (
            "Start (on=true) or stop (on=false) tracing live memory by allocation site with "
            "tracemalloc, for leak hunting: what is still alive, and which lines keep adding to "
            "it. The program runs 3-7x slower while tracing. Starting takes the baseline that "
            "memory_sites measures growth from."
        ),
        read_only=False,
        says=(
            "{note}",
            "",
        ),
    ),
    Tool(
        "memory_sites",
        memory.memory_sites,
        memory.MEMORY_SITES,
        "summary",
        (
            "Live memory by allocation site (file:line, and the profiled function it lies in) from "
            "a tracemalloc snapshot taken now, sorted by growth since tracing started; "
            "rising_snapshots counts consecutive snapshots in which a site grew. Needs tracing "
            "(trace_memory, or hotpath run --alloc-sites). A snapshot pauses the program about "
            f"0.3 s per million live blocks (snapshot_pause_ms says). {LIMIT_DOC}"
        ),
        report_key="memory_sites",
        refresh=memory.take_snapshot,
        rows=("sites",),
        says=(
            (
                "{row[site]} grew the most since tracing started: "
                "{row[growth_since_start_bytes]:,} bytes, {row[live]} live now "
                "({snapshots} snapshots over {covers_s} s)"
            ),
            "no live memory by site: {note}",
        ),
    ),
    Tool(
        "channels",
        channels.channels,
        channels.CHANNELS,
        "summary",
        (
            "Queues used as channels between tasks or threads (asyncio.Queue and its Priority/Lifo "
            "variants, queue.Queue, queue.SimpleQueue, ...), one entry per creation site: sent and "
            f"received counts and rates, current and max size, send-to-receive delay. {LIMIT_DOC}"
        ),
        report_key="channels",
        from_children=("channels",),
        rows=("channels",),
        says=(
            (
                "{row[name]} is the busiest channel: {row[sent_per_s]} sends/s, {row[queue_size]} "
                "queued now, at most {row[max_queue_size]} ({total_channels} channels)"
            ),
            "no channel (queue) seen yet",
        ),
    ),
    Tool(
        "channel_logs",
        channels.channel_logs,
        channels.CHANNEL_LOGS,
        "logs",
        (
            f"Recent sends and receives on one channel, newest first. channel_name {NAME_DOC}. "
            f"{LIMIT_DOC}"
        ),
        rows=("logs",),
        says=(
            "the {count} most recent sends and receives on {channel[name]}, newest first",
            "nothing sent on {channel[name]} yet",
        ),
    ),
    Tool(
        "futures",
        futures.futures,
        futures.FUTURES,
        "summary",
        (
            "asyncio tasks grouped by coroutine function: how many, their states now (pending, "
            "running, done, cancelled, failed), polls (times resumed), active vs wall time. "
            f"{LIMIT_DOC}"
        ),
        report_key="futures",
        from_children=("futures",),
        rows=("futures",),
        says=(
            (
                "{total_groups} groups of asyncio tasks; first {row[name]}: {row[calls]:,} tasks, "
                "{row[states][pending]} pending, {row[states][suspended]} suspended, "
                "{row[states][failed]} failed"
            ),
            "no asyncio task seen yet",
        ),
    ),
    Tool(
        "future_logs",
        futures.future_logs,
        futures.FUTURE_LOGS,
        "logs",
        (
            "Recent task instances of one coroutine function, newest first. "
            f"future_name {NAME_DOC}. {LIMIT_DOC}"
        ),
        rows=("logs",),
        says=(
            "the {count} most recent tasks of {future[name]}, newest first",
            "no task of {future[name]} yet",
        ),
    ),
    Tool(
        "streams",
        streams.streams,
        streams.STREAMS,
        "summary",
        (
            "Async generators grouped by generator function: instances, items yielded, items per "
            f"second, state (active, exhausted, closed early). {LIMIT_DOC}"
        ),
        report_key="streams",
        from_children=("streams",),
        rows=("streams",),
        says=(
            (
                "{row[name]} yields the most: {row[items_per_s]} items/s, "
                "{row[items]:,} items from {row[instances]} instances ({total_streams} streams)"
            ),
            "no async generator seen yet",
        ),
    ),
    Tool(
        "stream_logs",
        streams.stream_logs,
        streams.STREAM_LOGS,
        "logs",
        (f"Recent items yielded by one stream, newest first. stream_name {NAME_DOC}. {LIMIT_DOC}"),
        rows=("logs",),
        says=(
            "the {count} most recent items of {stream[name]}, newest first",
            "no item from {stream[name]} yet",
        ),
    ),
    Tool(
        "locks",
        locks.locks,
        locks.LOCKS,
        "summary",
        (
            "Locks the program creates (threading Lock, RLock, Semaphore, BoundedSemaphore, "
            "Condition, Event; asyncio Lock, Semaphore, Condition, Event), one entry per creation "
            "site, sorted by total wait (the time threads or tasks spent blocked on it, the number "
            "that hurts): acquisitions, contended ones (had to wait), wait and hold times (total, "
            "avg, percentiles, max), timeouts and failed non-blocking tries, Condition/Event "
            "wait() calls, and now: who holds it and for how long, how many wait. Answers "
            f"'which lock is contended?' and 'who holds it now?'. {LIMIT_DOC}"
        ),
        report_key="locks",
        from_children=("locks",),
        rows=("locks",),
        says=(
            (
                "{row[name]} is the most waited-for lock: {row[wait_total]} waited in "
                "{row[contended]:,} of {row[acquisitions]:,} acquisitions; {row[state]} now "
                "({total_locks} locks)"
            ),
            "no lock of the program's seen yet",
        ),
    ),
    Tool(
        "lock_logs",
        locks.lock_logs,
        locks.LOCK_LOGS,
        "logs",
        (
            "Recent holds of one lock, newest first: who held it, how long it waited for it, how "
            f"long it held it, and the function that took it. lock_name {NAME_DOC}. {LIMIT_DOC}"
        ),
        rows=("logs",),
        says=(
            "the {count} most recent holds of {lock[name]}, newest first",
            "{lock[name]} has not been held and released yet",
        ),
    ),
    Tool(
        "sql",
        operations.sql,
        operations.SQL,
        "summary",
        (
            "SQL statements the program executes (sqlite3, psycopg2, psycopg 3, asyncpg, and every "
            "SQLAlchemy engine), one entry per normalized statement (literals as ?, whitespace "
            "collapsed), sorted by "
            "total time: calls, errors, time (total, avg, percentiles, max; a statement's "
            "execute call, rows fetched later not included), outcomes (ok or the error's "
            "class), rows where the driver says, and the program's functions that ran it "
            "(function and line). Parameters are never kept. Answers 'which query is "
            f"slowest?' and 'who runs it?'. Past 1,000 statements, <other> counts the rest. "
            f"{LIMIT_DOC}"
        ),
        report_key="sql",
        from_children=("statements",),
        rows=("statements",),
        says=(
            (
                "{row[name]} takes the most time: {row[time_total]} in {row[calls]:,} calls "
                "({total_statements} statements)"
            ),
            "no SQL statement seen yet",
        ),
    ),
    Tool(
        "sql_logs",
        operations.sql_logs,
        operations.SQL_LOGS,
        "logs",
        (
            "Recent executions of one SQL statement, newest first: duration, outcome, rows, "
            f"the calling function and line. sql_name {NAME_DOC}. {LIMIT_DOC}"
        ),
        rows=("logs",),
        says=(
            "the {count} most recent executions of {statement[name]}, newest first",
            "{statement[name]} has not run yet",
        ),
    ),
    Tool(
        "http",
        operations.http,
        operations.HTTP,
        "summary",
        (
            "Outbound HTTP calls (http.client, so urllib, urllib3 and requests; httpx sync "
            "and async), one entry per method + host + path template (numeric and uuid-like "
            "segments as {id}, the query dropped), sorted by total time: calls, status "
            "classes and errors (outcomes), time to the response's headers (total, avg, "
            "percentiles, max), bytes sent and received where known, and the program's "
            "functions that made them. No header or body is kept. Answers 'which endpoint "
            f"is slow?'. Past 1,000 endpoints, <other> counts the rest. {LIMIT_DOC}"
        ),
        report_key="http",
        from_children=("endpoints",),
        rows=("endpoints",),
        says=(
            (
                "{row[name]} takes the most time: {row[time_total]} in {row[calls]:,} calls "
                "({total_endpoints} endpoints)"
            ),
            "no outbound HTTP call seen yet",
        ),
    ),
    Tool(
        "http_logs",
        operations.http_logs,
        operations.HTTP_LOGS,
        "logs",
        (
            "Recent calls to one HTTP endpoint, newest first: duration, status, outcome, "
            f"the calling function and line. http_name {NAME_DOC}. {LIMIT_DOC}"
        ),
        rows=("logs",),
        says=(
            "the {count} most recent calls to {endpoint[name]}, newest first",
            "{endpoint[name]} has not been called yet",
        ),
    ),
    Tool(
        "routes",
        operations.routes,
        operations.ROUTES,
        "summary",
        (
            "Requests the program serves (Starlette and FastAPI over ASGI, Flask and Django "
            "over WSGI), one entry per method + route template as the framework names it, "
            "sorted by total time: requests, status classes and errors (outcomes), time "
            "(total, avg, percentiles, max), and the SQL statements and HTTP calls made "
            "inside its requests (calls, time, per request). Answers 'which endpoint is slow "
            f"and why?'. {LIMIT_DOC}"
        ),
        report_key="routes",
        from_children=("routes",),
        rows=("routes",),
        says=(
            (
                "{row[name]} takes the most time: {row[time_total]} in {row[calls]:,} "
                "requests, {row[inside_time]} of it in SQL and HTTP calls ({total_routes} "
                "routes)"
            ),
            "no request served yet",
        ),
    ),
    Tool(
        "route_logs",
        operations.route_logs,
        operations.ROUTE_LOGS,
        "logs",
        (
            "Recent requests of one route, newest first: duration, status, outcome. "
            f"route_name {NAME_DOC}. {LIMIT_DOC}"
        ),
        rows=("logs",),
        says=(
            "the {count} most recent requests of {route[name]}, newest first",
            "{route[name]} has not been requested yet",
        ),
    ),
    Tool(
        "threads",
        threads.threads,
        threads.THREADS,
        "summary",
        (
            "Threads of the process sampled from the OS: CPU user/system seconds, CPU percent now "
            "and on average, status; hotpath's own threads are marked. Also process RSS. "
            f"{LIMIT_DOC}"
        ),
        report_key="threads",
        from_children=("threads", "ended_threads"),
        rows=("threads", "ended_threads"),
        says=(
            (
                "{total_threads} threads; busiest now {row[name]} at {row[cpu_percent]}% CPU; the "
                "process uses {process[rss]}"
            ),
            "no thread sampled yet",
        ),
    ),
    Tool(
        "processes",
        processes.processes,
        processes.PROCESSES,
        "summary",
        (
            "The program's processes: itself, then the child processes hotpath follows "
            "(forked, spawned and forkserver multiprocessing workers, process pools): pid, "
            "parent pid, argv, how it started, running or ended (and how), batches of figures "
            "received, calls it made. Every other tool's figures already add the children's "
            f"in. {LIMIT_DOC}"
        ),
        report_key="processes",
        rows=("processes",),
        says=(
            (
                "{total_processes} processes profiled ({folded_processes} more ended and folded); "
                "the program is pid {row[pid]}"
            ),
            "no process",
        ),
    ),
    Tool(
        "mark",
        marks.mark,
        marks.MARK,
        "control",
        (
            "Mark this moment of the run with a label (for example 'before-fix'): every summary "
            "tool then answers since=label for what happened after it, and diff(since=label) "
            "compares after with before. The last 20 marks are kept; a label used again moves "
            "to now."
        ),
        read_only=False,
    ),
    Tool(
        "diff",
        marks.diff,
        marks.DIFF,
        "diff",
        (
            "What changed at a mark, per function: the window before it (from the previous "
            "mark, or the start) against the window after it (until another mark, or now): "
            "calls and calls per second, avg/p95/p99 before and after, and their ratios; "
            "sorted by worse_by_ns, the time of its own (callees set aside) the after window's "
            "calls took beyond the before window's average, so the function whose own code got "
            "slower comes before its callers. Functions within 10% on both latency and rate "
            "are counted as unchanged, not listed, and so are functions idle after it. "
            "channels and futures: the same for queues (count: receives, avg/p95: "
            "send-to-receive delay, per_s: sends) and task groups (count: tasks finished, "
            "avg/p95: a task's wall time, per_s: tasks created), and locks (count: "
            "acquisitions that waited, avg/p95: their wait, per_s: acquisitions). since: "
            "a mark's label "
            f"(or 'start'); until: a later mark's label, or 'now' (default). {LIMIT_DOC}"
        ),
        rows=("functions",),
    ),
    Tool(
        "gauges",
        gauges.gauges,
        gauges.GAUGES,
        "summary",
        (
            "Gauges: built-in ones (RSS, CPU, open files, threads, GC, event-loop lag) and the "
            "program's own (hotpath.gauge(name).set/inc/dec): current, min, max, updates. "
            f"{LIMIT_DOC}"
        ),
        report_key="gauges",
        from_children=("gauges",),
        rows=("gauges",),
        says=(
            (
                "{total_gauges} gauges; first {row[name]} = {row[value]} (min {row[min]}, max "
                "{row[max]})"
            ),
            "no gauge yet",
        ),
    ),
    Tool(
        "gauge_logs",
        gauges.gauge_logs,
        gauges.GAUGE_LOGS,
        "logs",
        f"Recent updates of one gauge, newest first. gauge_name {NAME_DOC}. {LIMIT_DOC}",
        rows=("logs",),
        says=(
            "the {count} most recent updates of {gauge[name]}, newest first: now {row[value]}",
            "{gauge[name]} has not been updated yet",
        ),
    ),
)
NAMES = tuple(tool.name for tool in TOOLS)
BY_NAME = {tool.name: tool for tool in TOOLS}


@dataclass(frozen=True, slots=True)
class Pending:
    """A call begun: wait ``wait_s`` seconds, then ``finish`` answers."""

    wait_s: float
    finish: Callable[[], JSON]


def begin(store: Store, name: str, arguments: dict[str, Any]) -> Pending:
    """Check the arguments and do what comes before the wait; ``BadArgument`` or
    ``NotFound`` when the tool cannot answer them."""
    tool = BY_NAME[name]
    arguments = dict(arguments)
    process = arguments.pop("process", None) if tool.scoped else None
    since = arguments.pop("since", None) if tool.scoped else None
    offset = arguments.pop("offset", 0) if tool.scoped else 0
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise BadArgument(f"offset must be a whole number from 0 to {MAX_OFFSET}, got {offset!r}")
    if process is not None and since is not None:
        raise BadArgument("process and since cannot be given together: marks are of the program")
    if process is not None:
        store = _one_process(store, process)
    if since is not None:
        if not isinstance(since, str):
            raise BadArgument(f"since must be a mark's label, got {since!r}")
        store = store.since(marks.find_mark(store, since))
    if "limit" in arguments:
        check_limit(arguments["limit"])
    if offset:  # the rows before it are made, then left out (bounded.bound)
        arguments["limit"] = arguments.get("limit", DEFAULT_LIMIT) + offset
    if tool.refresh is not None:
        tool.refresh(store)
    if tool.window is None:
        return Pending(0.0, lambda: finish(tool, tool.answer(store, **arguments), offset))
    seconds = cpu.check_seconds(arguments.get("seconds", cpu.DEFAULT_SNAPSHOT_S))
    baseline = tool.window(store)
    return Pending(
        seconds if baseline is not None else 0.0,
        lambda: finish(tool, tool.answer(store, baseline=baseline, **arguments), offset),
    )


def finish(tool: Tool, answer: JSON, offset: int = 0, cap: bool = True) -> JSON:
    """The answer as it leaves: rows from ``offset``, under the size bound (``cap``), and
    its summary line first."""
    if cap:
        answer = bounded.bound(answer, tool.rows, offset)
    if "summary" in answer or tool.says is None:
        return answer
    return {"summary": bounded.summarize(tool.says, answer, tool.rows, tool.name), **answer}


def _one_process(store: Store, pid: object) -> Store:
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise BadArgument(f"process must be a pid from the processes tool, got {pid!r}")
    scoped = store.for_process(pid)
    if scoped is None:
        known = [store.info.pid, *(child.pid for child in store.processes.children())]
        raise NotFound(
            f"no process {pid} is known: the program is {store.info.pid}"
            + (f", its followed children {', '.join(map(str, known[1:21]))}" if known[1:] else "")
            + (" and more (see the processes tool)" if len(known) > 21 else "")
        )
    return scoped


def call(store: Store, name: str, arguments: dict[str, Any]) -> JSON:
    """What the tool ``name`` answers, waiting in this thread if it measures a window."""
    pending = begin(store, name, arguments)
    if pending.wait_s:
        stdlib.sleep(pending.wait_s)
    return pending.finish()


CHILD_ROWS = 100  # rows of each answer a child sends


def child_rows(store: Store) -> dict[str, dict[str, list[JSON]]]:
    """What a followed child sends of the tools that list its rows beside the parent's."""
    sent = {}
    for tool in TOOLS:
        if tool.from_children:
            answer = tool.answer(store, limit=CHILD_ROWS)
            sent[tool.name] = {key: answer[key] for key in tool.from_children}
    return sent


@functools.cache
def child_row_fields() -> dict[tuple[str, str], frozenset[str]]:
    """(tool, key) -> the fields every row a child sends there must have: what the receiver
    checks before the views list them."""
    return {
        (tool.name, key): frozenset(tool.output["properties"][key]["items"]["required"])
        for tool in TOOLS
        for key in tool.from_children
    }


def report(store: Store, limit: int) -> JSON:
    """The JSON report written at exit: every section, in the same shapes as the tools."""
    return {
        tool.report_key: finish(
            tool,
            tool.answer(store, limit=limit) if tool.kind == "summary" else tool.answer(store),
            cap=False,  # a file: every row
        )
        for tool in TOOLS
        if tool.report_key is not None
    }

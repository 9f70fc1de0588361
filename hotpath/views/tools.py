"""The MCP tools: thin async wrappers over ``shapes``, with descriptions written for agents.

Tools are ``async`` on purpose: the SDK runs plain functions in worker threads, which would add
threads to the profiled process; a snapshot is quick enough for the server's event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hotpath import __version__
from hotpath.store import Store
from hotpath.views import shapes
from hotpath.views.lookup import NotFound

INSTRUCTIONS = """\
hotpath profiles the Python program it runs, live. Numbers cover the run so far.
Start with profiler_status (what is collected), then functions_timing (where time goes).
Times are in nanoseconds (fields ending in _ns) with a short human string beside them.
A *_name argument takes an exact name, an unambiguous suffix (`process_request`,
`Handler.process_request`) or the numeric id a summary tool shows."""

LIMIT_DOC = "limit: rows to return (default 10, at most 10000)."
NAME_DOC = "takes an exact name, an unambiguous suffix, or the id from the summary tool"

DESCRIPTIONS: dict[str, str] = {
    "profiler_status": (
        "What hotpath is watching: pid, argv, Python version, uptime, the function filters "
        "(include/exclude globs, or the program's own source tree by default), which collectors "
        "are on (timing, alloc, ...), and how many functions, channels, streams, futures, "
        "threads and gauges are known so far."
    ),
    "functions_timing": (
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
    "function_timing_logs": (
        "The most recent finished calls of one function, newest first: timestamp (UTC), "
        "duration, thread name and id, and outcome (returned, or the exception type raised). "
        f"function_name {NAME_DOC}. hotpath keeps the last 100 calls per function by default "
        f"(HOTPATH_LOGS_LIMIT). {LIMIT_DOC}"
    ),
    "functions_alloc": (
        "Allocations per function, counted exactly by allocator hooks, sorted by "
        "self_allocated_bytes (made by the function itself, not by profiled functions it "
        "called). allocations / allocated_bytes include callees, recursion counted once; "
        "avg_* and percentiles_allocated_bytes are per finished call. A count is a request "
        "to Python's allocator (objects reused from free lists, e.g. small tuples and floats, "
        "make none); bytes are bytes requested. Frees are not counted (a free does not say its "
        "size): for what stays alive use memory_sites. Needs hotpath run --alloc (or "
        f"HOTPATH_ALLOC=1); without it the answer says how to turn it on. {LIMIT_DOC}"
    ),
    "function_alloc_logs": (
        "The most recent finished calls of one function with the allocations each made "
        f"(callees included). Needs --alloc. function_name {NAME_DOC}. {LIMIT_DOC}"
    ),
    "trace_memory": (
        "Start (on=true) or stop (on=false) tracing live memory by allocation site with "
        "tracemalloc, for leak hunting: what is still alive, and which lines keep adding to "
        "it. The program runs 3-7x slower while tracing. Starting takes the baseline that "
        "memory_sites measures growth from."
    ),
    "memory_sites": (
        "Live memory by allocation site (file:line, and the profiled function it lies in) from "
        "a tracemalloc snapshot taken now, sorted by growth since tracing started; "
        "rising_snapshots counts consecutive snapshots in which a site grew. Needs tracing "
        "(trace_memory, or hotpath run --alloc-sites). A snapshot pauses the program about "
        f"0.3 s per million live blocks (snapshot_pause_ms says). {LIMIT_DOC}"
    ),
    "channels": (
        "Queues used as channels between tasks or threads (asyncio.Queue and its Priority/Lifo "
        "variants, queue.Queue, queue.SimpleQueue, ...), one entry per creation site: sent and "
        f"received counts and rates, current and max size, send-to-receive delay. {LIMIT_DOC}"
    ),
    "channel_logs": (
        f"Recent sends and receives on one channel, newest first. channel_name {NAME_DOC}. "
        f"{LIMIT_DOC}"
    ),
    "futures": (
        "asyncio tasks grouped by coroutine function: how many, their states now (pending, "
        "running, done, cancelled, failed), polls (times resumed), active vs wall time. "
        f"{LIMIT_DOC}"
    ),
    "future_logs": (
        f"Recent task instances of one coroutine function, newest first. future_name {NAME_DOC}."
        f" {LIMIT_DOC}"
    ),
    "streams": (
        "Async generators grouped by generator function: instances, items yielded, items per "
        f"second, state (active, exhausted, closed early). {LIMIT_DOC}"
    ),
    "stream_logs": (
        f"Recent items yielded by one stream, newest first. stream_name {NAME_DOC}. {LIMIT_DOC}"
    ),
    "threads": (
        "Threads of the process sampled from the OS: CPU user/system seconds, CPU percent now "
        "and on average, status; hotpath's own threads are marked. Also process RSS. "
        f"{LIMIT_DOC}"
    ),
    "gauges": (
        "Gauges: built-in ones (RSS, CPU, open files, threads, GC, event-loop lag) and the "
        "program's own (hotpath.gauge(name).set/inc/dec): current, min, max, updates. "
        f"{LIMIT_DOC}"
    ),
    "gauge_logs": (
        f"Recent updates of one gauge, newest first. gauge_name {NAME_DOC}. {LIMIT_DOC}"
    ),
}

TOOL_NAMES = tuple(DESCRIPTIONS)


# What each argument takes, for an agent that got it wrong.
ARGUMENT_HINTS = {
    "limit": "a whole number of rows from 1 to 10000",
    "sort": "one of self, total, calls, avg, p99",
    "on": "true to start, false to stop",
}
NAME_SOURCES = {
    "function_name": "functions_timing",
    "channel_name": "channels",
    "future_name": "futures",
    "stream_name": "streams",
    "gauge_name": "gauges",
}


def argument_errors(store: Store, error: Any) -> str:
    """pydantic's validation errors as one line an agent can act on."""
    phrases = []
    for problem in error.errors():
        field = str(problem["loc"][-1]) if problem.get("loc") else "?"
        if field in NAME_SOURCES:
            hint = f"pass a name or id from {NAME_SOURCES[field]}"
            example = next(
                (f.qualname for f in store.functions.functions if "<" not in f.qualname), None
            )
            if field == "function_name" and example is not None:
                hint += f", e.g. '{example}'"
        else:
            hint = ARGUMENT_HINTS.get(field, "see the tool's description")
        if problem.get("type") == "missing":
            phrases.append(f"`{field}` is required: {hint}")
        else:
            phrases.append(f"`{field}` cannot be {problem.get('input')!r}: {hint}")
    return "; ".join(phrases) or "the arguments do not fit this tool's description"


def build_app(store: Store) -> Any:
    """The ASGI app serving every tool at /mcp."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver import server as server_module
    from mcp.server.mcpserver.exceptions import ToolError
    from pydantic import ValidationError

    # MCPServer() calls logging.basicConfig on the root logger, which would make the program's
    # own later basicConfig a no-op. hotpath configures no logging of the program's.
    configure_logging = server_module.configure_logging  # type: ignore[attr-defined]
    server_module.configure_logging = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    try:
        server = MCPServer(
            "hotpath", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING"
        )
    finally:
        server_module.configure_logging = configure_logging  # type: ignore[attr-defined]

    def answer(compute: Callable[[], shapes.JSON]) -> shapes.JSON:
        try:
            return compute()
        except (shapes.BadArgument, NotFound) as error:
            raise ToolError(str(error)) from None

    # The SDK answers arguments that fail validation with pydantic's text (a URL included):
    # the same error, phrased for an agent.
    call_tool = server.call_tool

    async def call_tool_phrased(name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await call_tool(name, arguments, context)
        except ToolError as error:
            if isinstance(error.__cause__, ValidationError):
                raise ToolError(argument_errors(store, error.__cause__)) from None
            raise

    server.call_tool = call_tool_phrased  # type: ignore[method-assign]

    def register(name: str, function: Callable[..., Any]) -> None:
        server.tool(name=name, description=DESCRIPTIONS[name])(function)

    async def profiler_status() -> dict[str, Any]:
        return answer(lambda: shapes.profiler_status(store))

    async def functions_timing(limit: int = 10, sort: str | None = None) -> dict[str, Any]:
        return answer(lambda: shapes.functions_timing(store, limit, sort))

    async def function_timing_logs(function_name: str, limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.function_timing_logs(store, function_name, limit))

    async def functions_alloc(limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.functions_alloc(store, limit))

    async def function_alloc_logs(function_name: str, limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.function_alloc_logs(store, function_name, limit))

    async def trace_memory(on: bool = True) -> dict[str, Any]:
        return answer(lambda: shapes.trace_memory(store, on))

    async def memory_sites(limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.take_memory_sites(store, limit))

    async def channels(limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.channels(store, limit))

    async def channel_logs(channel_name: str, limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.channel_logs(store, channel_name, limit))

    async def futures(limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.futures(store, limit))

    async def future_logs(future_name: str, limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.future_logs(store, future_name, limit))

    async def streams(limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.streams(store, limit))

    async def stream_logs(stream_name: str, limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.stream_logs(store, stream_name, limit))

    async def threads(limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.threads(store, limit))

    async def gauges(limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.gauges(store, limit))

    async def gauge_logs(gauge_name: str, limit: int = 10) -> dict[str, Any]:
        return answer(lambda: shapes.gauge_logs(store, gauge_name, limit))

    for function in (
        profiler_status,
        functions_timing,
        function_timing_logs,
        functions_alloc,
        function_alloc_logs,
        trace_memory,
        memory_sites,
        channels,
        channel_logs,
        futures,
        future_logs,
        streams,
        stream_logs,
        threads,
        gauges,
        gauge_logs,
    ):
        register(function.__name__, function)
    return server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True, host="127.0.0.1"
    )

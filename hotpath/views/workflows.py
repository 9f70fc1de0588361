"""What the MCP server offers besides tools: the live report as a resource, and prompts that
put the tools in the order a profiling session uses them.

The resource is the JSON report (``hotpath://report``): every summary tool's answer with its
first ``REPORT_ROWS`` rows, as the exit report would be written now. The prompts are plain
instructions naming tools in order; they call nothing themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hotpath.store import Store
from hotpath.views import registry

REPORT_URI = "hotpath://report"
REPORT_ROWS = 20


def report(store: Store) -> str:
    """The live report as JSON: every summary, each with its first rows."""
    return json.dumps(registry.report(store, REPORT_ROWS), indent=1)


@dataclass(frozen=True, slots=True)
class Workflow:
    name: str
    description: str
    steps: str


WORKFLOWS = (
    Workflow(
        "find_the_bottleneck",
        "Find what makes the running program slow, then check a fix with a mark and a diff.",
        "Find what makes this program slow, using the hotpath tools in this order:\n"
        "1. profiler_status: what is timed (the filters) and for how long it has run.\n"
        "2. functions_timing (sorted by self time): the functions whose own code takes the "
        "most time; sort='total' for whole calls, sort='p99' for the slowest calls.\n"
        "3. functions_cpu, then cpu_stacks(function_name=...) for the worst one: where the "
        "CPU goes in all code, libraries and C calls included, and the call paths to it.\n"
        "4. function_timing_logs(function_name=...): recent calls, to see whether it is "
        "slow always or only sometimes, and in which thread.\n"
        "5. Before changing anything: mark(label='before'). After the change has run a "
        "while: diff(since='before') and functions_timing(since='before').\n"
        "Say which function is the bottleneck, with its numbers, and what would fix it.",
    ),
    Workflow(
        "check_for_leaks",
        "Check whether the running program's memory keeps growing, and which lines hold it.",
        "Check this program for memory leaks, using the hotpath tools in this order:\n"
        "1. threads: the process's RSS now and its maximum; call it again a little later "
        "to see whether it grows.\n"
        "2. trace_memory(on=true): start tracing live memory by allocation site (the "
        "program runs 3-7x slower while it traces).\n"
        "3. Let the program run, then memory_sites, twice or more: sites whose growth keeps "
        "rising (rising_snapshots) are the suspects; function names the code that holds it.\n"
        "4. functions_alloc (if hotpath runs with --alloc): which functions allocate most.\n"
        "5. trace_memory(on=false) when done.\n"
        "Say whether memory leaks, where, and how fast.",
    ),
    Workflow(
        "is_anything_stuck",
        "Check whether the running program is stuck: waiting tasks, full queues, busy threads.",
        "Check whether this program is stuck or starving, using the hotpath tools in order:\n"
        "1. futures: asyncio tasks pending or suspended for long, and groups that fail.\n"
        "2. channels: queues that are full (full_now), growing (queue_size), or whose "
        "receives lag their sends (delay).\n"
        "3. threads: threads at 100% CPU, or none busy while work is queued.\n"
        "4. cpu_snapshot(seconds=5): what runs right now.\n"
        "5. functions_timing: calls still running (running > 0) and how long they have run; "
        "function_timing_logs for their recent calls.\n"
        "Say what is stuck or slow to drain, and on what it waits.",
    ),
)

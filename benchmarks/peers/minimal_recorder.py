"""The floor for a pure-Python sys.monitoring profiler: a per-thread stack and per-function
totals, nothing else (no filter, histogram, log, self time or generators).

hotpath's per-event cost is compared with this one's, measured in the same benchmark run.
"""

import runpy
import sys
import threading
import time

monitoring = sys.monitoring
events = monitoring.events
TOOL = 4
clock = time.perf_counter_ns
local = threading.local()
totals = {}  # id(code) -> [code, calls, total ns]


def on_start(code, offset):
    try:
        stack = local.stack
    except AttributeError:
        stack = local.stack = []
    stack.append(clock())


def on_end(code, offset, value):
    now = clock()
    try:
        started = local.stack.pop()
    except (AttributeError, IndexError):
        return
    entry = totals.get(id(code))
    if entry is None:
        entry = totals[id(code)] = [code, 0, 0]
    entry[1] += 1
    entry[2] += now - started


script = sys.argv[1]
sys.argv = sys.argv[1:]
monitoring.use_tool_id(TOOL, "minimal")
monitoring.register_callback(TOOL, events.PY_START, on_start)
monitoring.register_callback(TOOL, events.PY_RETURN, on_end)
monitoring.register_callback(TOOL, events.PY_UNWIND, on_end)
monitoring.set_events(TOOL, events.PY_START | events.PY_RETURN | events.PY_UNWIND)
try:
    runpy.run_path(script, run_name="__main__")
finally:
    monitoring.set_events(TOOL, 0)

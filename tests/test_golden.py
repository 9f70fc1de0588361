"""Every tool's answer and the report, byte for byte, from a store whose every figure is fixed
(``golden/scenario.py``): refactoring views, registry or store must not change one of them.

The expected files were written by main before the tool registry existed. After a change
that is meant to alter an answer, regenerate them with ``HOTPATH_GOLDEN_UPDATE=1 pytest
tests/test_golden.py`` and read the diff.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from golden.scenario import HERE, Clock, FakeThread, build

from hotpath import stdlib
from hotpath.store import Store
from hotpath.views import registry, report
from hotpath.views.common import MAX_LIMIT, BadArgument
from hotpath.views.lookup import NotFound

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("HOTPATH_GOLDEN_UPDATE") == "1"

# Each tool with the arguments asked, a bad call or two among them.
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("profiler_status", {}),
    ("functions_timing", {}),
    ("functions_timing", {"limit": 2, "sort": "total"}),
    ("functions_timing", {"sort": "p99"}),
    ("functions_timing", {"sort": "calls"}),
    ("functions_timing", {"sort": "avg"}),
    ("functions_timing", {"sort": "slowest"}),
    ("functions_timing", {"limit": 0}),
    ("function_timing_logs", {"function_name": "handle_request"}),
    ("function_timing_logs", {"function_name": "checksum", "limit": 3}),
    ("function_timing_logs", {"function_name": "nothing"}),
    ("functions_alloc", {}),
    ("function_alloc_logs", {"function_name": "fetch", "limit": 2}),
    ("memory_sites", {"limit": 5}),
    ("trace_memory", {"on": False}),
    ("trace_memory", {"on": False}),
    ("channels", {}),
    ("channel_logs", {"channel_name": "jobs"}),
    ("channel_logs", {"channel_name": "inbox", "limit": 1}),
    ("futures", {}),
    ("future_logs", {"future_name": "_stuck"}),
    ("streams", {}),
    ("stream_logs", {"stream_name": "ticks", "limit": 3}),
    ("threads", {}),
    ("gauges", {}),
    ("gauge_logs", {"gauge_name": "queue.depth"}),
    ("gauge_logs", {"gauge_name": "nope"}),
    ("functions_cpu", {}),
    ("functions_cpu", {"limit": 2}),
    ("cpu_stacks", {}),
    ("cpu_stacks", {"function_name": "handle_request", "limit": 3}),
    ("cpu_stacks", {"function_name": "nobody"}),
    ("cpu_snapshot", {"seconds": 0}),
    ("cpu_snapshot", {"seconds": 0.01, "limit": 2}),
    ("processes", {}),
    # Marks and windows: "midway" is marked while the scenario's tasks run.
    ("mark", {"label": "end"}),
    ("mark", {"label": "start"}),
    ("diff", {"since": "midway"}),
    ("diff", {"since": "start", "until": "midway"}),
    ("diff", {"since": "end", "until": "midway"}),
    ("functions_timing", {"since": "midway"}),
    ("channels", {"since": "midway"}),
    ("futures", {"since": "midway"}),
    ("streams", {"since": "midway"}),
    ("locks", {}),
    ("lock_logs", {"lock_name": "guard"}),
    ("lock_logs", {"lock_name": "nested", "limit": 1}),
    ("lock_logs", {"lock_name": "nope"}),
    ("locks", {"since": "midway"}),
    ("sql", {}),
    ("sql", {"since": "midway", "limit": 2}),
    ("sql_logs", {"sql_name": "INSERT INTO t SELECT ? + work(?)"}),
    ("sql_logs", {"sql_name": "nope"}),
    ("http", {}),
    ("http_logs", {"http_name": "users/{id}", "limit": 2}),
    ("routes", {}),
    ("route_logs", {"route_name": "GET /orders/{id}"}),
    ("functions_cpu", {"since": "midway"}),
    ("functions_timing", {"since": "nope"}),
    ("functions_timing", {"since": "midway", "process": 1}),
]


def call(store: Store, name: str, arguments: dict[str, Any]) -> Any:
    """What the MCP tool ``name`` answers, or its error's text."""
    try:
        return registry.call(store, name, arguments)
    except (BadArgument, NotFound) as error:
        return {"error": str(error)}


@pytest.fixture(scope="module")
def answers() -> Iterator[dict[str, Any]]:
    clock = Clock()
    patch = pytest.MonkeyPatch()
    patch.setattr(stdlib, "perf_counter_ns", clock.perf_counter_ns)
    patch.setattr(stdlib, "time_ns", clock.time_ns)
    patch.setattr(stdlib, "current_thread", FakeThread)
    try:
        during: dict[str, Any] = {}

        def live(store: Store) -> None:  # while tasks are alive: one running, some waiting
            during["futures"] = call(store, "futures", {})
            during["future_logs"] = call(store, "future_logs", {"future_name": "_stuck"})
            during["channels"] = call(store, "channels", {})
            store.mark("midway")

        store = build(clock, live)
        store.ended_ns = clock.now
        clock.advance(1000)  # the program has ended: answers no longer move with the clock
        calls = [[name, arguments, call(store, name, arguments)] for name, arguments in CALLS]
        text = io.StringIO()
        # Paths as in any checkout before the tables size their columns to them.
        data = json.loads(json.dumps(registry.report(store, MAX_LIMIT)).replace(HERE, "<here>"))
        report.render(data, text, 10)
        yield {"during": during, "calls": calls, "report": data, "rendered": text.getvalue()}
    finally:
        patch.undo()


def _compare(actual: str, name: str) -> None:
    actual = actual.replace(json.dumps(HERE)[1:-1], "<here>")
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")


def test_every_answer_is_unchanged(answers: dict[str, Any]) -> None:
    for section in ("during", "calls", "report"):
        _compare(json.dumps(answers[section], indent=1) + "\n", f"{section}.json")


def test_the_printed_report_is_unchanged(answers: dict[str, Any]) -> None:
    _compare(answers["rendered"], "report.txt")


def test_every_answer_validates_against_its_tools_schema(answers: dict[str, Any]) -> None:
    checked: set[str] = set()
    report_keys = {tool.report_key: tool.name for tool in registry.TOOLS if tool.report_key}
    answered = [
        *((name, answer) for name, _, answer in answers["calls"] if "error" not in answer),
        *answers["during"].items(),
        *((report_keys[key], section) for key, section in answers["report"].items()),
    ]
    for name, answer in answered:
        output = registry.BY_NAME[name].output
        jsonschema.Draft202012Validator.check_schema(output)
        assert output["type"] == "object"  # what MCP clients require of an outputSchema
        jsonschema.validate(answer, output)
        assert next(iter(answer)) == "summary"  # every answer opens with its line in words
        checked.add(name)
    assert checked == set(registry.NAMES)
    # The schemas are closed: a field that no schema names is refused.
    extra = dict(answers["calls"][1][2], unnamed_field=1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(extra, registry.BY_NAME["functions_timing"].output)

"""The JSON API and the Prometheus exposition beside MCP (issue 19): the same answers as the
MCP tools, the same guards, and counters that equal the fixture's exact call counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from mcp_client import call, url
from prometheus_client.parser import text_string_to_metric_families
from support import RunningProgram, clean_env, free_port

from hotpath.views.registry import TOOLS

REQUESTS = 50  # service.py fails every request whose id ends in 9: 5 of 50


@pytest.fixture(scope="module")
def service() -> Iterator[int]:
    port = free_port()
    program = RunningProgram("--mcp-port", str(port), "service.py", str(REQUESTS), "120")
    program.wait_for("ready 5")
    program.wait_for(f"[hotpath] MCP server on {url(port)}", stream="stderr")
    yield port
    assert program.stop() == 0


def _api(port: int, tool: str, method: str = "GET", **query: Any) -> httpx2.Response:
    return httpx2.request(method, f"http://127.0.0.1:{port}/api/{tool}", params=query, timeout=30)


# Fields that move between two calls of a live program (clocks, rates, samples).
MOVING = {
    "summary", "uptime_ns", "uptime", "wall_ns", "wall", "total_ns", "self_ns", "total", "self",
    "percent_total", "percent_self", "all_self_ns", "cpu_percent", "cpu_user_s",
    "cpu_system_s", "cpu_total_s", "cpu_percent_avg", "cpu_percent_max", "samples", "status",
    "rss_bytes", "rss", "rss_max_bytes", "rss_max", "open_fds", "process", "threads",
    "ended_threads", "value", "min", "max", "updates", "updated_at", "cpu_ns", "cpu",
    "self_cpu_ns", "total_cpu_ns", "self_samples", "total_samples", "self_s", "total_s",
    "stacks", "functions", "truncated_samples", "at", "marks", "known", "problems", "cpu_s",
    "seconds",
}  # fmt: skip


def _steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k not in MOVING}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


def test_every_tool_answers_over_the_api_as_over_mcp(service: int) -> None:
    arguments = {
        "function_timing_logs": {"function_name": "parse"},
        "function_alloc_logs": {"function_name": "parse"},
        "gauge_logs": {"gauge_name": "process.rss_bytes"},
        "trace_memory": {"on": "false"},
        "mark": {"label": "api"},
        "diff": {"since": "api"},
        "cpu_snapshot": {"seconds": "0.1"},
    }
    for tool in TOOLS:
        if tool.name in (
            "channel_logs", "future_logs", "stream_logs", "lock_logs", "sql_logs", "http_logs",
            "route_logs",
        ):  # fmt: skip
            continue  # service.py has none: an error either way (below)
        query = arguments.get(tool.name, {})
        typed = {k: (v == "true" if v in ("true", "false") else v) for k, v in query.items()}
        if "seconds" in typed:
            typed["seconds"] = float(typed["seconds"])
        method = "GET" if tool.read_only else "POST"
        answer = _api(service, tool.name, method, **query)
        assert answer.status_code == 200, (tool.name, answer.text)
        mcp = call(service, tool.name, **typed)
        assert not mcp.is_error, tool.name
        api, over_mcp = answer.json(), mcp.structured_content
        if tool.name == "gauge_logs":  # the sampler may log a new value between the calls
            api, over_mcp = ({**a, "logs": [sorted(a["logs"][0])]} for a in (api, over_mcp))
        assert _steady(api) == _steady(over_mcp), tool.name
    timed = {
        r["name"]: r for r in _api(service, "functions_timing", limit="50").json()["functions"]
    }
    assert timed["service.parse"]["calls"] == REQUESTS - 5


def test_the_api_says_what_is_wrong(service: int) -> None:
    unknown = _api(service, "nope")
    assert unknown.status_code == 404 and "functions_timing" in unknown.json()["error"]
    bad = _api(service, "functions_timing", limit="many")
    assert bad.status_code == 400 and "limit cannot be 'many'" in bad.json()["error"]
    extra = _api(service, "functions_timing", colour="red")
    assert extra.status_code == 400 and "takes no argument 'colour'" in extra.json()["error"]
    missing = _api(service, "channel_logs")
    assert missing.status_code == 400 and "needs channel_name" in missing.json()["error"]
    assert _api(service, "trace_memory").status_code == 405  # it changes things: POST only
    name = _api(service, "channel_logs", channel_name="x")
    assert name.status_code == 400 and "no channel named 'x'" in name.json()["error"]


def test_metrics_parse_and_count_exactly(service: int) -> None:
    answer = httpx2.get(f"http://127.0.0.1:{service}/metrics", timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    calls = {s.labels["function"]: s.value for s in families["hotpath_function_calls"].samples
             if s.name == "hotpath_function_calls_total"}  # fmt: skip
    assert calls["service.parse"] == REQUESTS - 5
    assert calls["service.Handler.process_request"] == REQUESTS
    errors = {s.labels["function"]: s.value for s in families["hotpath_function_errors"].samples
              if s.name == "hotpath_function_errors_total"}  # fmt: skip
    assert errors["service.Handler.process_request"] == 5
    histogram = [
        s for s in families["hotpath_function_duration_seconds"].samples
        if s.labels["function"] == "service.parse"
    ]  # fmt: skip
    count = next(s.value for s in histogram if s.name.endswith("_count"))
    infinite = next(s.value for s in histogram if s.labels.get("le") == "+Inf")
    assert count == infinite == REQUESTS - 5
    assert families["hotpath_process_rss_bytes"].samples[0].value > 10 * 2**20


def test_the_token_and_the_host_rules_guard_the_api_and_metrics() -> None:
    port = free_port()
    program = RunningProgram(
        "--mcp-port", str(port), "service.py", str(REQUESTS), "120",
        env=clean_env(HOTPATH_MCP_AUTH_TOKEN="s3cret-token"),
    )  # fmt: skip
    try:
        program.wait_for("ready 5")
        program.wait_for(f"[hotpath] MCP server on {url(port)}", stream="stderr")
        base = f"http://127.0.0.1:{port}"
        for path in ("/api/profiler_status", "/metrics"):
            assert httpx2.get(base + path, timeout=30).status_code == 401
            good = {"Authorization": "Bearer s3cret-token"}
            assert httpx2.get(base + path, headers=good, timeout=30).status_code == 200
            evil = {**good, "Host": "evil.example"}
            assert httpx2.get(base + path, headers=evil, timeout=30).status_code == 421
            web = {**good, "Origin": "http://evil.example"}
            assert httpx2.get(base + path, headers=web, timeout=30).status_code == 403
    finally:
        assert program.stop() == 0


def test_the_grafana_dashboard_names_only_exported_series(service: int) -> None:
    import json
    import re

    from support import ROOT

    dashboard = json.loads((ROOT / "grafana" / "hotpath.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"hotpath_[a-z_]+", target["expr"])
    }
    text = httpx2.get(f"http://127.0.0.1:{service}/metrics", timeout=30).text
    # Families are exported even while empty (this fixture has no queues or tasks).
    families = {family.name for family in text_string_to_metric_families(text)}
    missing = {n for n in used if not any(n == f or n.startswith(f + "_") for f in families)}
    # Allocation series exist with --alloc only.
    assert missing <= {"hotpath_function_allocated_bytes_total"} and len(used) >= 10


def test_the_metrics_limit_bounds_the_functions_exported() -> None:
    from test_bounded import _store_of

    from hotpath.views.metrics import exposition

    store = _store_of(300)
    store.info.metrics_limit = 25
    body, _ = exposition(store)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    named = {s.labels["function"] for s in families["hotpath_function_calls"].samples}
    assert len(named) == 25  # the 25 with the most total time, of 300

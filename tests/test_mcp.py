"""The MCP server, questioned over real HTTP on loopback while the program runs."""

from __future__ import annotations

import json
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from mcp_client import (
    call,
    call_many,
    list_tools,
    raw_get,
    raw_post,
    resources_and_prompts,
    url,
)
from support import FIXTURES, RunningProgram, clean_env, free_port

from hotpath.views.registry import NAMES as TOOL_NAMES
from hotpath.views.registry import TOOLS

REQUESTS = 50  # service.py fails every request whose id ends in 9: 5 of 50


def start_service(*options: str, env: dict[str, str] | None = None) -> tuple[RunningProgram, int]:
    port = free_port()
    program = RunningProgram(
        "--mcp-port", str(port), *options, "service.py", str(REQUESTS), "120", env=env
    )
    program.wait_for("ready 5")
    program.wait_for(f"[hotpath] MCP server on {url(port)}", stream="stderr")
    return program, port


@pytest.fixture(scope="module")
def service() -> Iterator[int]:
    program, port = start_service()
    yield port
    assert program.stop() == 0


def test_lists_every_registered_tool_with_its_schema_and_annotations(service: int) -> None:
    listed = {tool.name: tool for tool in list_tools(service, names_only=False)}
    assert sorted(listed) == sorted(TOOL_NAMES)
    for tool in TOOLS:
        seen = listed[tool.name]
        assert seen.description == tool.text
        assert seen.output_schema == tool.output
        assert seen.annotations.open_world_hint is False
        assert seen.annotations.read_only_hint is tool.read_only
    # Arguments come from the view functions' signatures, defaults included.
    timing = listed["functions_timing"].input_schema["properties"]
    assert timing["limit"]["default"] == 10 and "sort" in timing
    assert listed["function_timing_logs"].input_schema["required"] == ["function_name"]


def test_functions_timing_reports_live_call_counts(service: int) -> None:
    result = call(service, "functions_timing", limit=20)
    assert not result.is_error
    functions = {row["name"]: row for row in result.structured_content["functions"]}
    process = functions["service.Handler.process_request"]
    assert (process["calls"], process["errors"], process["completed"]) == (REQUESTS, 5, REQUESTS)
    assert process["error_types"] == {"ValueError": 5}
    assert functions["service.parse"]["calls"] == REQUESTS - 5
    assert functions["service.serve"]["calls"] == 1
    # main() is still running (idling): it counts, with the time it has run so far.
    main = functions["service.main"]
    assert (main["calls"], main["running"], main["completed"]) == (1, 1, 0)
    # No call of it has finished: its per-call figures do not exist yet, and say so.
    assert (main["avg_ns"], main["min_ns"], main["max_ns"], main["avg"]) == (None,) * 4
    assert set(main["percentiles_ns"].values()) == {None}
    assert main["total_ns"] >= functions["service.serve"]["total_ns"]
    # The same JSON is in the text content, for clients that read only text.
    assert json.loads(result.content[0].text) == result.structured_content
    # It has no child: the program's pid gives the same rows, another pid a tool error.
    pid = call(service, "profiler_status").structured_content["pid"]
    alone = call(service, "functions_timing", limit=20, process=pid)
    assert {row["name"] for row in alone.structured_content["functions"]} == set(functions)
    unknown = call(service, "functions_timing", process=1)
    assert unknown.is_error and "no process 1 is known" in unknown.content[0].text


def test_limit_keeps_the_top_rows_in_the_order_asked_for(service: int) -> None:
    by_total = call(service, "functions_timing", limit=2, sort="total").structured_content
    assert by_total["sorted_by"] == "total_ns"
    assert [row["name"] for row in by_total["functions"]] == ["service.<module>", "service.main"]
    by_calls = call(service, "functions_timing", limit=3, sort="calls").structured_content
    calls = [row["calls"] for row in by_calls["functions"]]
    assert calls == sorted(calls, reverse=True) and calls[0] == REQUESTS
    default = call(service, "functions_timing", limit=50).structured_content
    assert default["sorted_by"] == "self_ns"
    own = [row["self_ns"] for row in default["functions"]]
    assert own == sorted(own, reverse=True)
    assert abs(sum(row["percent_self"] for row in default["functions"]) - 100) < 0.5
    wrong = call(service, "functions_timing", sort="fastest")
    assert wrong.is_error and "sort must be one of self, total, calls, avg, p99" in (
        wrong.content[0].text
    )


def test_timing_logs_return_the_last_calls_newest_first(service: int) -> None:
    logs = call(service, "function_timing_logs", function_name="process_request", limit=3)
    entries = logs.structured_content["logs"]
    # Requests 47, 48 and 49 came last; 49 raised.
    assert [e["outcome"] for e in entries] == ["raised ValueError", "returned", "returned"]
    assert entries[0]["timestamp"] >= entries[1]["timestamp"] >= entries[2]["timestamp"]
    assert {e["thread_name"] for e in entries} == {"MainThread"}
    assert all(e["duration_ns"] > 0 for e in entries)


def test_function_names_accept_suffixes_and_ids(service: int) -> None:
    full = call(service, "function_timing_logs", function_name="service.Handler.process_request")
    function = full.structured_content["function"]
    for name in ("Handler.process_request", "process_request", str(function["id"])):
        found = call(service, "function_timing_logs", function_name=name)
        assert found.structured_content["function"] == function


def test_unknown_names_and_bad_arguments_are_tool_errors(service: int) -> None:
    unknown, bad_limit, huge_limit, wrong_type, missing = call_many(
        service,
        [
            ("function_timing_logs", {"function_name": "proces_request"}),
            ("functions_timing", {"limit": 0}),
            ("functions_timing", {"limit": 10**9}),
            ("functions_timing", {"limit": "many"}),
            ("function_timing_logs", {}),
        ],
    )
    assert unknown.is_error
    assert "no function named 'proces_request'" in unknown.content[0].text
    assert "service.Handler.process_request" in unknown.content[0].text
    for result in (bad_limit, huge_limit):
        assert result.is_error
        assert "limit must be between 1 and 10000" in result.content[0].text
    assert wrong_type.is_error and missing.is_error
    assert wrong_type.content[0].text == (
        "`limit` cannot be 'many': a whole number of rows from 1 to 10000"
    )
    assert missing.content[0].text.startswith(
        "`function_name` is required: pass a name or id from functions_timing, e.g. '"
    )
    assert "pydantic" not in missing.content[0].text + wrong_type.content[0].text
    # The server is still serving.
    assert not call(service, "profiler_status").is_error


def test_every_tool_answers(service: int) -> None:
    # A name each log tool knows: a function for the function tools, a built-in gauge.
    known = {"gauge_name": "process.rss_bytes"}
    calls: list[tuple[str, dict[str, Any]]] = []
    for name in TOOL_NAMES:
        # Not on: tracing would slow the service down for the tests after this one.
        arguments: dict[str, Any] = {"on": False} if name == "trace_memory" else {}
        if name in ("mark", "diff"):  # the mark comes first in the list, the diff after it
            arguments = {"label": "a-mark"} if name == "mark" else {"since": "a-mark"}
        if name.endswith("_logs"):
            key = name.split("_")[0] + "_name"
            arguments[key] = known.get(key, "process_request")
        calls.append((name, arguments))
    results = dict(zip(TOOL_NAMES, call_many(service, calls), strict=True))
    # service.py has no queues, tasks or async generators, no lock called process_request, no
    # SQL, HTTP call or route: asking for one by name is an error.
    empty = {
        "channel_logs": "channel",
        "future_logs": "future",
        "stream_logs": "stream",
        "lock_logs": "lock",
        "sql_logs": "statement",
        "http_logs": "endpoint",
        "route_logs": "route",
    }
    for tool, kind in empty.items():
        assert results[tool].is_error
        assert f"no {kind} named 'process_request'" in results[tool].content[0].text
    assert not any(r.is_error for name, r in results.items() if name not in empty)
    for section in ("channels", "futures", "streams"):
        assert results[section].structured_content[section] == []
    # The MCP server is a Starlette application, served in the program's process: its own
    # requests (these) are not the program's routes.
    for tool, key in (("sql", "statements"), ("http", "endpoints"), ("routes", "routes")):
        assert results[tool].structured_content[key] == []
    assert call(service, "routes").structured_content["routes"] == []
    (event,) = results["locks"].structured_content["locks"]  # its own `closed`, nothing else
    assert (event["name"], event["kind"]) == ("closed", "threading.Event")
    status = results["profiler_status"].structured_content
    assert status["argv"] == ["service.py", str(REQUESTS), "120"]
    assert status["collectors"]["timing"] is True and status["collectors"]["alloc"] is False
    assert status["known"]["functions"] >= 6
    alloc = results["functions_alloc"].structured_content
    assert alloc["recorded"] is False and "--alloc" in alloc["note"]
    assert results["gauge_logs"].structured_content["logs"][0]["value"] > 0
    threads = results["threads"].structured_content["threads"]
    assert "MainThread" in {row["name"] for row in threads}


@pytest.fixture(scope="module")
def guarded() -> Iterator[int]:
    program, port = start_service(env=clean_env(HOTPATH_MCP_AUTH_TOKEN="s3cret-token"))
    yield port
    assert program.stop() == 0
    assert "s3cret-token" not in program.rest("stderr") + program.rest("stdout")


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("wrong", 401),
        ("Bearer wrong", 401),
        ("s3cret-token", 200),
        ("Bearer s3cret-token", 200),
        ("bearer s3cret-token", 200),
        ("s3cret-token-longer", 401),
    ],
)
def test_token_is_required(guarded: int, authorization: str | None, status: int) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    assert raw_post(guarded, headers).status_code == status


def test_the_sdk_client_works_with_a_token(guarded: int) -> None:
    assert "functions_timing" in list_tools(guarded, token="Bearer s3cret-token")


def test_foreign_host_and_origin_are_refused(service: int) -> None:
    assert raw_post(service, {"Host": "evil.example"}).status_code == 421
    assert raw_post(service, {"Origin": "http://evil.example"}).status_code == 403
    assert raw_post(service, {"Origin": f"http://127.0.0.1:{service}"}).status_code == 200


def test_host_and_origin_are_compared_exactly_not_by_prefix(service: int) -> None:
    for host in (f"127.0.0.1:{service}@evil.com", f"localhost:{service}.evil.com", "127.0.0.1"):
        assert raw_post(service, {"Host": host}).status_code == 421, host
    for origin in (f"http://localhost:{service}.evil.com", f"http://127.0.0.1:{service}@x.io"):
        assert raw_post(service, {"Origin": origin}).status_code == 403, origin
    for host in (f"localhost:{service}", f"[::1]:{service}"):
        assert raw_post(service, {"Host": host}).status_code == 200, host
    assert raw_post(service, {"Origin": f"http://localhost:{service}"}).status_code == 200


def test_malformed_json_leaves_the_server_serving(service: int) -> None:
    assert raw_post(service, {}, body=b"{not json").status_code == 400
    assert not call(service, "profiler_status").is_error


def test_port_in_use_leaves_the_program_running_unchanged() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        program = RunningProgram("--mcp-port", str(port), "service.py", "20", "60")
        program.wait_for("ready 2")
        assert program.stop() == 0
    assert program.rest() == "ready 2\nbye\n"
    stderr = program.rest("stderr")
    assert f"[hotpath] warning: MCP server not started on 127.0.0.1:{port}: port in use" in stderr
    assert "functions, by self time" in stderr


def test_keep_serving_answers_after_the_program_ends() -> None:
    program, port = start_service("--keep-serving")
    program.process.stdin.close()  # type: ignore[union-attr]
    program.wait_for("bye")
    program.wait_for("MCP server still on", stream="stderr")
    status = call(port, "profiler_status").structured_content
    assert status["running"] is False
    rows = call(port, "functions_timing").structured_content["functions"]
    assert {row["name"]: row["calls"] for row in rows}["service.main"] == 1
    program.process.send_signal(signal.SIGINT)
    assert program.process.wait(timeout=30) == 0


@pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed")
def test_official_mcp_inspector_cli_lists_and_calls_tools(service: int) -> None:
    inspector = [
        "npx",
        "-y",
        "@modelcontextprotocol/inspector@0.21.2",
        "--cli",
        url(service),
        "--transport",
        "http",
    ]
    listed = subprocess.run(
        [*inspector, "--method", "tools/list"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=FIXTURES,
    )
    assert listed.returncode == 0, listed.stderr
    assert sorted(tool["name"] for tool in json.loads(listed.stdout)["tools"]) == sorted(TOOL_NAMES)
    called = subprocess.run(
        [
            *inspector,
            "--method",
            "tools/call",
            "--tool-name",
            "function_timing_logs",
            "--tool-arg",
            "function_name=process_request",
            "limit=2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=FIXTURES,
    )
    assert called.returncode == 0, called.stderr
    logs = json.loads(called.stdout)["structuredContent"]["logs"]
    assert [entry["outcome"] for entry in logs] == ["raised ValueError", "returned"]


def test_idle_connections_cannot_take_the_programs_file_descriptors() -> None:
    port = free_port()

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    program = subprocess.Popen(
        [sys.executable, "-m", "hotpath", "run", "--mcp-port", str(port), "fd_user.py"],
        cwd=FIXTURES,
        env=clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=few_descriptors,
    )
    held: list[socket.socket] = []
    try:
        assert program.stdout is not None and program.stdout.readline() == "ready\n"
        assert call(port, "profiler_status").structured_content["running"] is True
        for index in range(160):  # more than its 128 descriptors: nothing, or half headers
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if index % 3 == 0:
                sock.sendall(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
            held.append(sock)
        time.sleep(1)
        deadline = time.monotonic() + 15
        for sock in held:  # the server lets go of each within its header timeout
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                while sock.recv(4096):  # a 503 for those past the cap, then the close
                    pass
            except ConnectionResetError:
                pass  # closed with our half request unread: a reset is a close too
        # The server answers again, and refuses the GET that would hold a stream open.
        assert call(port, "profiler_status").structured_content["running"] is True
        assert raw_get(port).status_code == 405
    finally:
        for sock in held:
            sock.close()
        out, err = program.communicate("", timeout=60)
    assert program.returncode == 0
    assert out.splitlines()[-1] == "opened True failures 0"
    assert "Traceback" not in err and "accept" not in err


def test_the_live_report_is_a_resource_and_the_workflows_are_prompts(service: int) -> None:
    resources, read, (prompts, first) = resources_and_prompts(service)
    (report,) = resources
    assert (str(report.uri), report.mime_type) == ("hotpath://report", "application/json")
    live = json.loads(read.contents[0].text)
    assert set(live) == {tool.report_key for tool in TOOLS if tool.report_key}
    timed = {row["name"]: row for row in live["functions_timing"]["functions"]}
    assert timed["service.parse"]["calls"] == REQUESTS - 5  # the same figures as the tools
    names = [prompt.name for prompt in prompts]
    assert names == ["find_the_bottleneck", "check_for_leaks", "is_anything_stuck"]
    assert all(not prompt.arguments for prompt in prompts)
    text = first.messages[0].content.text
    # The tools it names, in order, are tools the server has.
    named = [name for name in TOOL_NAMES if name in text]
    assert {"profiler_status", "functions_timing", "mark", "diff"} <= set(named)
    assert text.index("profiler_status") < text.index("functions_timing") < text.index("diff(")


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
def test_clients_of_earlier_revisions_are_answered_in_theirs(service: int, version: str) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "an older client", "version": "1"},
        },
    }
    answer = raw_post(service, {}, initialize)
    assert answer.status_code == 200
    assert answer.json()["result"]["protocolVersion"] == version


@pytest.mark.parametrize("header", ["2025-06-18", "2025-11-25", "2026-07-28", "2099-01-01", "x"])
def test_a_protocol_version_header_unlike_the_negotiated_one_is_answered(
    service: int, header: str
) -> None:
    # A client that negotiated an older revision and sends its newest (or anything) in the
    # header, with a request of the older wire: answered, not refused.
    answer = raw_post(service, {"MCP-Protocol-Version": header})
    assert answer.status_code == 200, answer.text
    assert "summary" in json.loads(answer.json()["result"]["content"][0]["text"])

"""Hostile programs behave under hotpath exactly as under python, and hotpath stays sound."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mcp_client import raw_post, url
from support import FIXTURES, RunningProgram, clean_env, free_port, mentions_own_code

from hotpath.recorder import compiled_unavailable

HOSTILE = FIXTURES / "hostile"
HOTPATH_RUN = [sys.executable, "-m", "hotpath", "run"]


def run(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env=clean_env(PYTHONBREAKPOINT="0"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def normalised(text: str) -> str:
    text = re.sub(r"0x[0-9a-f]+", "0x?", text)
    # Under hotpath the program runs a few frames deeper, so a RecursionError's repeat count
    # differs; which lines repeat does not.
    return re.sub(r"\[Previous line repeated \d+ more times\]", "[Previous line repeated]", text)


def without_hotpath_lines(stderr: str) -> str:
    return "".join(
        line for line in stderr.splitlines(keepends=True) if not line.startswith("[hotpath]")
    )


@pytest.mark.parametrize(
    "script",
    [
        "own_profilers.py",
        "debugger.py",
        "forking.py",
        "exec_self.py",
        "threads_at_exit.py",
        "signals.py",
        "deep.py",
        "unfinished.py",
        "hard_exit.py",
        "closes_streams.py",
        "many_loops.py",
        "takes_tool_ids.py",
        "patches_clocks_and_locks.py",
        "shadow/app.py",
    ],
)
@pytest.mark.parametrize("options", [[], ["--alloc", "--alloc-sites"]], ids=["", "alloc"])
def test_behaves_as_under_python(script: str, options: list[str]) -> None:
    """And with allocations counted and traced: the allocator hooks and tracemalloc under the
    same programs (the recorder's callbacks and the hooks both run in every one)."""
    folder = (HOSTILE / script).parent
    name = (HOSTILE / script).name
    expected = run([sys.executable, name], folder)
    actual = run(
        [*HOTPATH_RUN, *options, "--report", "none", "--mcp-port", "0", name],
        folder,
    )
    assert actual.returncode == expected.returncode
    assert actual.stdout == expected.stdout
    assert normalised(without_hotpath_lines(actual.stderr)) == normalised(expected.stderr)
    assert not mentions_own_code(without_hotpath_lines(actual.stderr))  # no hotpath frame


def test_a_program_that_takes_hotpaths_tool_id_gets_a_report_of_what_was_recorded(
    tmp_path: Path,
) -> None:
    output = tmp_path / "report.json"
    result = run(
        [*HOTPATH_RUN, "--no-mcp", "--output", str(output), "takes_tool_ids.py"],
        HOSTILE,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "45\n190 freed True\n"
    warnings = [line for line in result.stderr.splitlines() if "tool id" in line]
    assert len(warnings) == 1 and "freed or took over" in warnings[0]
    rows = json.loads(output.read_text())["functions_timing"]["functions"]
    # The first call was timed; the second came after the program took the id.
    assert {row["name"]: row["calls"] for row in rows}["takes_tool_ids.work"] == 1


def test_frozen_clocks_leave_the_report_honest(tmp_path: Path) -> None:
    output = tmp_path / "report.json"
    result = run([*HOTPATH_RUN, "--output", str(output), "patches_clocks_and_locks.py"], HOSTILE)
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    assert 0 < report["status"]["uptime_ns"] < 60e9
    rows = report["functions_timing"]["functions"]
    assert {row["name"]: row["calls"] for row in rows}["patches_clocks_and_locks.square"] == 150
    assert all(row["total_ns"] >= 0 and row["min_ns"] >= 0 for row in rows)
    channels = {row["name"]: row["sent"] for row in report["channels"]["channels"]}
    assert channels == {"channel": 50, "jobs": 1}


def test_a_forked_child_neither_reports_nor_serves(tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "hotpath", "run", "--mcp-port", "0", "forking.py"], HOSTILE)
    assert result.returncode == 0
    assert result.stderr.count("[hotpath] MCP server on") <= 1  # a short program may end first
    assert result.stderr.count("functions, by self time") == 1


def test_threads_still_running_at_exit_are_in_the_report(tmp_path: Path) -> None:
    output = tmp_path / "report.json"
    result = run(
        [
            sys.executable,
            "-m",
            "hotpath",
            "run",
            "--no-mcp",
            "--output",
            str(output),
            "threads_at_exit.py",
        ],
        HOSTILE,
    )
    assert result.returncode == 0
    names = {
        row["name"]: row for row in json.loads(output.read_text())["functions_timing"]["functions"]
    }
    assert names["threads_at_exit.slow_worker"]["calls"] == 1
    assert names["threads_at_exit.exits"]["error_types"] == {"SystemExit": 1}


def test_100000_distinct_functions_stay_capped(tmp_path: Path) -> None:
    output = tmp_path / "report.json"
    result = run(
        [
            sys.executable,
            "-m",
            "hotpath",
            "run",
            "--no-mcp",
            "--report",
            "none",
            "--output",
            str(output),
            "generated.py",
            "100000",
        ],
        HOSTILE,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "5000050000\n"
    status = json.loads(output.read_text())["status"]
    assert status["known"]["functions"] == 5000
    assert status["known"]["dropped_functions"] >= 95_000


def test_shadowing_modules_turn_pieces_off_with_a_warning() -> None:
    result = run(
        [sys.executable, "-m", "hotpath", "run", "--mcp-port", "0", "app.py"], HOSTILE / "shadow"
    )
    assert result.stdout == "my rich my starlette my cli my psutil\n"
    assert (
        "[hotpath] warning: the program has its own starlette module(s); the MCP server is off"
        in result.stderr
    )
    assert "the report is printed as JSON" in result.stderr
    report = json.loads(result.stderr[result.stderr.index("{") :])
    assert report["functions_timing"]["functions"][0]["name"] == "app.<module>"
    # The thread sampler needs no psutil where the compiled core reads /proc: it stays on.
    reads_proc = sys.platform.startswith("linux") and compiled_unavailable() is None
    assert report["status"]["collectors"]["threads"] is reads_proc
    assert ("its own psutil module(s)" in result.stderr) is not reads_proc


def test_the_server_dependency_list_covers_what_the_server_imports() -> None:
    probe = """
import sys, json
from hotpath.store import Store, RunInfo
from hotpath.views import tools
before = {m.split('.')[0] for m in sys.modules}
import uvicorn
tools.build_app(Store(RunInfo([], {}, {}, (50.0,), 0.25, 5.0), 10, 10))
after = {m.split('.')[0] for m in sys.modules}
print(json.dumps(sorted(after - before)))
"""
    imported = set(json.loads(subprocess.check_output([sys.executable, "-c", probe], text=True)))
    from hotpath.dependencies import SERVER

    missing = {
        m
        for m in imported
        if m not in SERVER and m not in sys.stdlib_module_names and not m.startswith("_")
    }
    assert missing == set()


def test_a_burst_of_concurrent_and_malformed_requests_leaves_all_serving() -> None:
    port = free_port()
    program = RunningProgram("--mcp-port", str(port), "service.py", "50", "60")
    try:
        program.wait_for("ready 5")
        program.wait_for(f"MCP server on {url(port)}", stream="stderr")
        statuses: list[int] = []
        bodies: list[Any] = [
            None,
            b"not json",
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "functions_timing", "arguments": {"limit": 10**12}},
            },
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "no_such_tool"}},
            {"jsonrpc": "2.0", "id": 1, "method": "nonsense"},
        ]

        def hammer(index: int) -> None:
            for round_ in range(10):
                response = raw_post(port, {}, body=bodies[(index + round_) % len(bodies)])
                statuses.append(response.status_code)

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(statuses) == 80
        assert set(statuses) <= {200, 400}
        assert raw_post(port, {}).status_code == 200
    finally:
        assert program.stop() == 0
    assert program.rest() == "ready 5\nbye\n"


def test_a_forked_child_that_outlives_its_parent_does_not_keep_the_port() -> None:
    port = free_port()
    parent = subprocess.Popen(
        [*HOTPATH_RUN, "--report", "none", "--mcp-port", str(port), "outlives_parent.py", "5"],
        cwd=HOSTILE,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The parent's own end, not its pipes' (the child holds those for 5 s more).
        assert parent.wait(timeout=60) == 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # nobody listens
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))  # the next hotpath run can have it
    finally:
        out, _ = parent.communicate(timeout=60)
    assert out == "parent done\n"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_hotpath_writes_its_report_waits_for_the_report(signum: int) -> None:
    """The report of 3,000 functions is larger than a pipe holds: while the test does not
    read, hotpath is certainly inside its exit work, writing. A Ctrl-C (a second one, for a
    person) or a SIGTERM then must not break it: the report completes, then the process dies
    by that signal."""
    program = subprocess.Popen(
        [*HOTPATH_RUN, "--no-mcp", "--limit", "100000", "many_functions.py", "3000"],
        cwd=HOSTILE,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert program.stdout is not None and program.stdout.readline() == "done\n"
    time.sleep(1.5)  # the report fills the pipe and hotpath waits on it
    assert program.poll() is None
    program.send_signal(signum)
    _, err = program.communicate(timeout=60)
    assert program.returncode == -signum
    assert "Exception ignored" not in err and "KeyboardInterrupt" not in err
    shown = re.search(r"functions, by self time \((\d+)/(\d+)\)", err)
    assert shown is not None and shown[1] == shown[2] and int(shown[1]) > 3000  # every row
    assert err.rstrip().endswith("┘")  # and the table's end


def test_sigterm_inside_hotpaths_own_bookkeeping_still_reports_and_dies_by_it(
    tmp_path: Path,
) -> None:
    """SIGTERM's handler writes the report in the main thread, wherever it was: often inside
    hotpath's own writes, as the fixture keeps it. Before the store's locks were reentrant,
    9 runs in 20 hung there. Eight runs, the signal sent at moments spread over the loop."""
    fixture = "terminated_while_recording.py"
    for run_number in range(8):
        output = tmp_path / f"report-{run_number}.json"
        program = subprocess.Popen(
            [*HOTPATH_RUN, "--no-mcp", "--report", "none", "--output", str(output), fixture, "900"],
            cwd=HOSTILE,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert program.stdout is not None and program.stdout.readline() == "started\n"
        time.sleep(run_number * 0.005)
        program.send_signal(signal.SIGTERM)
        out, err = program.communicate(timeout=60)
        assert (program.returncode, out, err) == (-signal.SIGTERM, "", "")
        assert "functions" in json.loads(output.read_text())["functions_timing"]


def test_keep_serving_ends_on_ctrl_c_through_the_programs_own_handler() -> None:
    program = RunningProgram(
        "--mcp-port", str(free_port()), "--keep-serving", "own_sigint_handler.py", cwd=HOSTILE
    )
    program.wait_for("bye")
    program.wait_for("MCP server still on", stream="stderr")
    program.process.send_signal(signal.SIGINT)
    assert program.process.wait(timeout=30) == 0
    assert "Exception ignored" not in program.rest("stderr")

"""hotpath's benchmarks: its cost against bare python and its peers, side by side in one run.

    python benchmarks/run.py [--quick] [--rounds N]
        [--only overhead,sampler,startup,mcp,memory,exit,children,marks,locks,io]

Every ratio is measured in one run, alternating the commands round by round after a warm-up
round, against the bare run of the same round; the table shows the median ratio and its
spread (min-max). Workloads time their own work, so interpreter start-up is measured apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads"
PY = sys.executable
HOTPATH = [PY, "-m", "hotpath", "run", "--report", "none"]

# The one or two functions a narrow filter keeps, per workload.
NARROW = {
    "w1_calls": ["w1_calls.fib"],
    "w2_mixed": ["w2_mixed.count_words"],
    "w3_asyncio": ["w3_asyncio.consumer"],
    "w4_alloc": ["w4_alloc.churn"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HOTPATH_")}
    clean.update(extra)
    return clean


# A command: its prefix (before the script) and its HOTPATH_* settings.
Command = tuple[list[str], dict[str, str]]
PYTHON_RECORDER = {"HOTPATH_RECORDER": "python"}


def has(module: str) -> bool:
    return subprocess.run([PY, "-c", f"import {module}"], capture_output=True).returncode == 0


def has_compiler() -> bool:
    """The minimal C recorder is built on first use, with the interpreter's headers."""
    probe = [PY, str(HERE / "peers" / "minimal_c.py"), str(WORKLOADS / "w4_alloc.py"), "0"]
    return subprocess.run(probe, capture_output=True, env=env()).returncode == 0


def tools(workload: str) -> dict[str, Command | None]:
    """Commands per tool; None where a peer is not installed. hotpath runs its compiled
    recorder unless the row says otherwise."""
    narrow = [arg for name in NARROW[workload] for arg in ("--include", name)]
    port = ["--mcp-port", "{port}"]
    return {
        "python": ([PY], {}),
        "hotpath": ([*HOTPATH, *port], {}),
        "hotpath, 1-2 functions": ([*HOTPATH, *port, *narrow], {}),
        "hotpath, Python recorder": ([*HOTPATH, *port], PYTHON_RECORDER),
        "hotpath, Python recorder, 1-2 functions": ([*HOTPATH, *port, *narrow], PYTHON_RECORDER),
        "hotpath --alloc": ([*HOTPATH, *port, "--alloc"], {}),
        "hotpath --alloc --alloc-sites": ([*HOTPATH, *port, "--alloc", "--alloc-sites"], {}),
        "tracemalloc(1) alone": ([PY, "-X", "tracemalloc=1"], {}),
        "minimal C recorder": (
            ([PY, str(HERE / "peers" / "minimal_c.py")], {}) if has_compiler() else None
        ),
        "minimal Python recorder": ([PY, str(HERE / "peers" / "minimal_recorder.py")], {}),
        "cProfile": ([PY, "-m", "cProfile", "-o", os.devnull], {}),
        "yappi (wall)": (
            ([PY, str(HERE / "peers" / "yappi_wall.py")], {}) if has("yappi") else None
        ),
        "pyinstrument": (
            ([PY, "-m", "pyinstrument", "-o", os.devnull], {}) if has("pyinstrument") else None
        ),
    }


def run_workload(command: Command, workload: str, scale: int) -> dict[str, Any]:
    prefix, settings = command
    argv = [part.replace("{port}", str(free_port())) for part in prefix]
    result = subprocess.run(
        [*argv, str(WORKLOADS / f"{workload}.py"), str(scale)],
        capture_output=True,
        text=True,
        env=env(**settings),
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{argv} {workload} failed: {result.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def overhead(rounds: int, scale: int) -> dict[str, dict[str, list[float]]]:
    """Per workload and tool: the ratios to bare python, one per round."""
    ratios: dict[str, dict[str, list[float]]] = {}
    for workload in NARROW:
        commands = {name: cmd for name, cmd in tools(workload).items() if cmd is not None}
        ratios[workload] = {name: [] for name in commands}
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(rounds + 1):  # round 0 warms caches up and is not counted
            times = {
                name: run_workload(cmd, workload, scale)["elapsed_s"]
                for name, cmd in commands.items()
            }
            if round_ == 0:
                continue
            for name, elapsed in times.items():
                seconds[name].append(elapsed)
                ratios[workload][name].append(elapsed / times["python"])
        ratios[workload]["_seconds"] = [statistics.median(seconds["python"])]
        print(f"  {workload}: done", file=sys.stderr)
    return ratios


PER_CALL = ("hotpath", "minimal C recorder", "hotpath, Python recorder", "minimal Python recorder")


def per_call_ns(rounds: int, scale: int) -> dict[str, float]:
    """W1's added cost per Python call: each recorder against its minimal twin, same rounds."""
    calls = run_workload(([PY], {}), "w1_calls", scale)["calls"]
    commands = {
        name: cmd
        for name, cmd in tools("w1_calls").items()
        if cmd is not None and (name in PER_CALL or name == "python")
    }
    added: dict[str, list[float]] = {name: [] for name in commands if name != "python"}
    for round_ in range(rounds + 1):
        times = {
            name: run_workload(cmd, "w1_calls", scale)["elapsed_s"]
            for name, cmd in commands.items()
        }
        if round_:
            for name in added:
                added[name].append((times[name] - times["python"]) / calls * 1e9)
    return {name: statistics.median(values) for name, values in added.items()}


def sampler(rounds: int, scale: int, seconds: float) -> dict[str, Any]:
    """The stack sampler alone: one hotpath run with it on (default interval) against the same
    run with it off (--sample-interval-ms 0), nothing timed, alternating round by round; W5
    has 8 busy threads. Then how close its shares come to fixtures/cpu_share.py's own."""
    nothing = [*HOTPATH, "--no-mcp", "--include", "nothing.is.timed"]
    commands: dict[str, Command] = {
        "python": ([PY], {}),
        "sampler off": ([*nothing, "--sample-interval-ms", "0"], {}),
        "sampler on": (nothing, {}),
    }
    cost: dict[str, dict[str, list[float]]] = {}
    for workload in [*NARROW, "w5_threads"]:
        cost[workload] = {"on / off": [], "on / python": []}
        for round_ in range(rounds + 1):
            times = {
                name: run_workload(cmd, workload, scale)["elapsed_s"]
                for name, cmd in commands.items()
            }
            if round_:
                cost[workload]["on / off"].append(times["sampler on"] / times["sampler off"])
                cost[workload]["on / python"].append(times["sampler on"] / times["python"])
    errors = []
    fixture = HERE.parent / "fixtures" / "cpu_share.py"
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            report = Path(folder) / "report.json"
            result = subprocess.run(
                [*HOTPATH, "--no-mcp", "-o", str(report), str(fixture), str(seconds)],
                capture_output=True, text=True, env=env(), timeout=300, check=True,
            )  # fmt: skip
            measured = json.loads(result.stdout.strip().splitlines()[-1])["json_percent"]
            sampled = json.loads(report.read_text())["functions_cpu"]["functions"]
            share = next(r["percent_total"] for r in sampled if r["name"] == "json.dumps")
            errors.append(round(share - measured, 2))
    return {
        "cost": {w: {k: statistics.median(v) for k, v in rows.items()} for w, rows in cost.items()},
        "share_error_points": errors,
    }


def startup(rounds: int) -> dict[str, float]:
    """Added start-up: whole runs of an empty script, and the delay to the first line."""
    folder = Path(tempfile.mkdtemp())
    empty = folder / "empty.py"
    empty.write_text("")
    first = folder / "first.py"
    first.write_text("import time; print(time.time_ns())\n")
    runs: dict[str, list[float]] = {"python": [], "hotpath": []}
    first_line: dict[str, list[float]] = {"python": [], "hotpath": []}
    for _ in range(rounds + 1):
        for name, prefix in (
            ("python", [PY]),
            ("hotpath", [*HOTPATH, "--mcp-port", str(free_port())]),
        ):
            started = time.perf_counter()
            subprocess.run([*prefix, str(empty)], check=True, env=env(), capture_output=True)
            runs[name].append(time.perf_counter() - started)
            spawned = time.time_ns()
            out = subprocess.run(
                [*prefix, str(first)], check=True, env=env(), capture_output=True, text=True
            )
            first_line[name].append((int(out.stdout.split()[0]) - spawned) / 1e6)
    shutil.rmtree(folder)
    median = {k: statistics.median(v[1:]) for k, v in runs.items()}
    delay = {k: statistics.median(v[1:]) for k, v in first_line.items()}
    return {
        "python_run_ms": median["python"] * 1000,
        "hotpath_run_ms": median["hotpath"] * 1000,
        "python_first_line_ms": delay["python"],
        "hotpath_first_line_ms": delay["hotpath"],
        "added_first_line_ms": delay["hotpath"] - delay["python"],
    }


def children(rounds: int, forks: int, items: int) -> dict[str, Any]:
    """Following child processes (W6): a forked child's added start and exit, and a spawn
    Pool(4)'s wall time, under python, hotpath, and hotpath --no-follow, alternating round by
    round after a warm-up round; medians."""
    script = str(WORKLOADS / "w6_processes.py")
    commands = {
        "python": [PY],
        "hotpath": [*HOTPATH, "--no-mcp"],
        "hotpath_no_follow": [*HOTPATH, "--no-mcp", "--no-follow"],
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for _ in range(rounds + 1):
        for name, prefix in commands.items():
            out = subprocess.run(
                [*prefix, script, str(forks), str(items)],
                check=True, env=env(), capture_output=True, text=True,
            )  # fmt: skip
            runs[name].append(json.loads(out.stdout))
    figures = {
        name: {key: statistics.median(run[key] for run in kept[1:]) for key in kept[0]}
        for name, kept in runs.items()
    }
    bare = figures["python"]
    return {
        "forks": forks,
        "pool_items": items,
        **figures,
        "added_fork_start_ms": figures["hotpath"]["fork_start_ms"] - bare["fork_start_ms"],
        "added_fork_exit_ms": figures["hotpath"]["fork_exit_ms"] - bare["fork_exit_ms"],
        "spawn_pool_ratio": figures["hotpath"]["spawn_pool_s"] / bare["spawn_pool_s"],
    }


LOCK_CASES = ("lock_with_ns", "lock_acquire_release_ns", "rlock_with_ns", "contended_with_ns")
IO_CASES = ("sqlite_insert_ns", "sqlite_select_ns", "http_get_ns")


def per_operation(
    rounds: int, scale: int, workload: str, cases: tuple[str, ...], unit: str
) -> dict[str, Any]:
    """ns per operation of a workload that times its own operations (W7 locks, W8 SQL and
    HTTP), bare and under hotpath (compiled and Python recorders), alternating round by
    round after a warm-up round; medians, and what hotpath adds to each."""
    commands: dict[str, Command] = {
        "python": ([PY], {}),
        "hotpath": ([*HOTPATH, "--no-mcp"], {}),
        "hotpath, Python recorder": ([*HOTPATH, "--no-mcp"], {"HOTPATH_RECORDER": "python"}),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for round_ in range(rounds + 1):
        for name, command in commands.items():
            figures = run_workload(command, workload, scale)
            if round_:
                runs[name].append(figures)
    medians = {
        name: {case: statistics.median(run[case] for run in kept) for case in cases}
        for name, kept in runs.items()
    }
    bare = medians["python"]
    return {
        unit: medians,
        "added_ns": {
            name: {case: figures[case] - bare[case] for case in cases}
            for name, figures in medians.items()
            if name != "python"
        },
    }


BUSY = """
import sys, time
def step(i):
    return sum(j * j for j in range(200))
def main(seconds):
    end = time.perf_counter() + seconds
    done = 0
    while time.perf_counter() < end:
        step(done)
        done += 1
    print(done / seconds, flush=True)
print("busy", flush=True)
sys.stdin.readline()  # starts when told: when measuring, after the server has answered once
main(float(sys.argv[1]))
"""


def _busy_program(seconds: float, port: int, folder: Path) -> subprocess.Popen[str]:
    script = folder / "busy.py"
    script.write_text(BUSY)
    return subprocess.Popen(
        [*HOTPATH, "--mcp-port", str(port), str(script), str(seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def _go(program: subprocess.Popen[str]) -> None:
    """Let the busy program start its loop."""
    assert program.stdin is not None and program.stdout is not None
    program.stdout.readline()  # "busy"
    program.stdin.write("go\n")
    program.stdin.flush()


def _post(client: Any, port: int) -> None:
    _call(client, port, "functions_timing", {"limit": 10})


def _call(client: Any, port: int, tool: str, arguments: dict[str, Any]) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    response = client.post(
        f"http://127.0.0.1:{port}/mcp",
        json=body,
        headers={"accept": "application/json, text/event-stream"},
    )
    response.raise_for_status()
    if response.json().get("result", {}).get("isError"):
        raise RuntimeError(f"{tool} answered an error: {response.text[:200]}")


def _wait_for_server(
    client: Any, port: int, program: subprocess.Popen[Any] | None = None, timeout: float = 60
) -> None:
    """Until the server answers: its first answer imports its libraries, which took 1.4-2.8 s
    here and may take longer on a loaded machine. Gives up at once if the program ended."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _post(client, port)
            return
        except Exception:
            if program is not None and program.poll() is not None:
                raise RuntimeError(
                    f"the program ended (exit {program.returncode}) before its server answered"
                ) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def mcp_latency(calls: int) -> dict[str, float]:
    """tools/call latency while the program's main thread is busy in pure Python."""
    import httpx2

    folder = Path(tempfile.mkdtemp())
    port = free_port()
    program = _busy_program(60, port, folder)
    latencies = []
    hung = False
    try:
        with httpx2.Client(timeout=30) as client:
            _go(program)
            started = time.perf_counter()
            _wait_for_server(client, port, program)  # the first answer imports its libraries
            first_answer_ms = (time.perf_counter() - started) * 1000
            for _ in range(calls):
                started = time.perf_counter()
                _post(client, port)
                latencies.append((time.perf_counter() - started) * 1000)
    finally:
        program.send_signal(signal.SIGINT)
        try:
            program.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            hung = True  # reported, not hidden: Ctrl-C must end a program under hotpath
            program.kill()
            program.communicate()
        shutil.rmtree(folder)
    latencies.sort()
    return {
        "first_answer_ms": first_answer_ms,
        "calls": calls,
        "median_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "max_ms": latencies[-1],
        "exit_hung": hung,
    }


def _looped(functions: int) -> str:
    """A program of ``functions`` functions of its own, each called 1-5 times, that then idles
    until its stdin closes."""
    defined = "".join(f"def f{i}():\n    return {i}\n" for i in range(functions))
    return (
        f"import sys\n{defined}"
        f"for i in range({functions}):\n"
        "    for _ in range(i % 5 + 1):\n"
        "        globals()[f'f{i}']()\n"
        "print('called', flush=True)\n"
        "sys.stdin.read()\n"
    )


def marks(rounds: int, sizes: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """What an agent's loop costs over MCP, end to end: a mark, a windowed functions_timing,
    a diff, and the plain functions_timing, against a program with N timed functions."""
    import httpx2

    folder = Path(tempfile.mkdtemp())
    results = {}
    for size in sizes:
        script = folder / f"looped{size}.py"
        script.write_text(_looped(size))
        port = free_port()
        program = subprocess.Popen(
            [*HOTPATH, "--mcp-port", str(port), str(script)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env(),
        )  # fmt: skip
        assert program.stdout is not None and program.stdin is not None
        program.stdout.readline()  # "called"
        times: dict[str, list[float]] = {"mark": [], "since": [], "diff": [], "plain": []}
        try:
            with httpx2.Client(timeout=60) as client:
                _wait_for_server(client, port, program)
                for number in range(rounds + 1):
                    label = f"m{number}"
                    for name, tool, arguments in (
                        ("mark", "mark", {"label": label}),
                        ("since", "functions_timing", {"limit": 10, "since": label}),
                        ("diff", "diff", {"since": label}),
                        ("plain", "functions_timing", {"limit": 10}),
                    ):
                        started = time.perf_counter()
                        _call(client, port, tool, arguments)
                        times[name].append((time.perf_counter() - started) * 1000)
        finally:
            program.communicate(timeout=60)  # closes its stdin: it ends
        results[f"{size}_functions"] = {
            f"{name}_ms": statistics.median(kept[1:]) for name, kept in times.items()
        }
    shutil.rmtree(folder)
    return results


def throughput_loss(seconds: float, rounds: int) -> dict[str, float]:
    """The busy program's throughput under hotpath while an agent asks 10 times a second."""
    import httpx2

    folder = Path(tempfile.mkdtemp())
    ratios = []
    for _ in range(rounds):
        rates: dict[bool, float] = {}
        for queried in (False, True):
            port = free_port()
            program = _busy_program(seconds, port, folder)
            stop = threading.Event()
            if queried:
                client = httpx2.Client(timeout=30)
                _wait_for_server(client, port, program)  # up before the measured loop

                def ask(
                    port: int = port, stop: threading.Event = stop, client: Any = client
                ) -> None:
                    while not stop.wait(0.1):
                        try:
                            _post(client, port)
                        except httpx2.HTTPError:
                            return  # the program has ended, and its server with it

                threading.Thread(target=ask, daemon=True).start()
            _go(program)
            out, _ = program.communicate(timeout=seconds + 60)
            stop.set()
            rates[queried] = float(out.split()[-1])
        ratios.append(rates[True] / rates[False])
    shutil.rmtree(folder)
    return {
        "throughput_ratio_median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
    }


MANY = """
import os, sys
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
for i in range(int(sys.argv[1])):
    namespace = {}
    exec(f"def generated_{i}(x):\\n    return x + {i}\\n", namespace)
    namespace[f"generated_{i}"](i)
print(rss())
"""


def memory(functions: int, long_run_s: float) -> dict[str, Any]:
    """hotpath's own memory: after many distinct functions, and over a long run of a program
    that keeps nothing (the demo leaks on purpose: its growth would hide hotpath's)."""
    import httpx2

    folder = Path(tempfile.mkdtemp())
    script = folder / "many.py"
    script.write_text(MANY)
    plain = int(
        subprocess.run(
            [PY, str(script), str(functions)], capture_output=True, text=True, env=env()
        ).stdout
    )
    profiled = int(
        subprocess.run(
            [*HOTPATH, "--no-mcp", str(script), str(functions)],
            capture_output=True,
            text=True,
            env=env(),
        ).stdout
    )
    port = free_port()
    steady = subprocess.Popen(
        [
            *HOTPATH,
            "--mcp-port",
            str(port),
            str(WORKLOADS / "steady.py"),  # keeps nothing: growth would be hotpath's
            str(long_run_s),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    samples: list[tuple[float, int]] = []
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "threads", "arguments": {"limit": 1}},
    }
    try:
        with httpx2.Client(timeout=30) as client:
            _wait_for_server(client, port, steady)
            started = time.monotonic()
            # The program ends by itself after long_run_s, counted from its own start, which
            # came seconds before the server's first answer (the lazy import of its
            # libraries): ask only while it runs, and never race its end.
            while steady.poll() is None:
                try:
                    answer = client.post(
                        f"http://127.0.0.1:{port}/mcp",
                        json=body,
                        headers={"accept": "application/json, text/event-stream"},
                    ).json()
                except httpx2.TransportError:
                    # It is ending: hotpath closes the server's socket at exit, a few ms
                    # before the process is gone. Anything else is an error.
                    try:
                        steady.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        raise RuntimeError("the server stopped answering mid-run") from None
                    break
                rss = answer["result"]["structuredContent"]["process"]["rss_bytes"]
                samples.append((time.monotonic() - started, rss))
                time.sleep(max(1.0, long_run_s / 20))
    finally:
        steady.wait(timeout=long_run_s + 60)
        shutil.rmtree(folder)
    half = [rss for at, rss in samples if at >= samples[-1][0] / 2]
    return {
        "distinct_functions": functions,
        "rss_python_mib": plain / 2**20,
        "rss_hotpath_mib": profiled / 2**20,
        "long_run_s": long_run_s,
        "rss_samples": len(samples),
        "rss_at_half_mib": half[0] / 2**20 if half else None,
        "rss_at_end_mib": samples[-1][1] / 2**20 if samples else None,
    }


HOLDER = """
import sys, time
held = [bytes(20) for _ in range(int(sys.argv[1]))]
print(time.time_ns(), flush=True)
"""


def exit_delay(objects: int, rounds: int) -> dict[str, float]:
    """From a program's last line to its process's end, holding ``objects`` live objects: the
    report, and with --alloc-sites the final snapshot of every live block."""
    folder = Path(tempfile.mkdtemp())
    script = folder / "holder.py"
    script.write_text(HOLDER)
    commands = {
        "python": [PY],
        "hotpath": [*HOTPATH, "--no-mcp"],
        "hotpath --alloc": [*HOTPATH, "--no-mcp", "--alloc"],
        "hotpath --alloc --alloc-sites": [*HOTPATH, "--no-mcp", "--alloc", "--alloc-sites"],
    }
    delays: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, prefix in commands.items():
            out = subprocess.run(
                [*prefix, str(script), str(objects)],
                check=True,
                env=env(),
                capture_output=True,
                text=True,
            ).stdout
            delays[name].append((time.time_ns() - int(out.split()[0])) / 1e6)
    shutil.rmtree(folder)
    return {f"{name} ms": statistics.median(values) for name, values in delays.items()}


def alloc_targets(ratios: dict[str, dict[str, list[float]]]) -> str:
    """The allocation targets, per workload: counting against the default mode, and counting
    with tracemalloc against tracemalloc alone (and against both costs multiplied)."""
    lines = [
        "| workload | --alloc / default (<= 1.15) | + sites / tracemalloc alone (<= 1.1) "
        "| + sites / (default x tracemalloc alone) |",
        "|---|---|---|---|",
    ]
    for workload, rows in ratios.items():

        def median(name: str, rows: dict[str, list[float]] = rows) -> float:
            return statistics.median(rows[name])

        default, tracing = median("hotpath"), median("tracemalloc(1) alone")
        both = median("hotpath --alloc --alloc-sites")
        lines.append(
            f"| {workload} | {median('hotpath --alloc') / default:.2f} | {both / tracing:.2f} "
            f"| {both / (default * tracing):.2f} |"
        )
    return "\n".join(lines)


def table(ratios: dict[str, dict[str, list[float]]]) -> str:
    workloads = list(ratios)
    names = [n for n in ratios[workloads[0]] if not n.startswith("_")]
    header = (
        "| tool | "
        + " | ".join(f"{w} ({ratios[w]['_seconds'][0]:.2f} s bare)" for w in workloads)
        + " |"
    )
    lines = [header, "|" + "---|" * (len(workloads) + 1)]
    for name in names:
        cells = []
        for workload in workloads:
            values = ratios[workload].get(name)
            cells.append(
                f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
                if values
                else "-"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    # Started in the background by a non-interactive shell, this runner inherits SIGINT
    # ignored, and so would the programs it stops with SIGINT (the "exit_hung" once seen
    # in mcp_latency): they get Python's usual Ctrl-C.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small workloads, 3 rounds: under 2 minutes"
    )
    parser.add_argument(
        "--rounds", type=int, help="measured rounds per command (default 5; quick 3)"
    )
    parser.add_argument(
        "--only", default="overhead,sampler,startup,mcp,memory,exit,children,marks,locks,io"
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    scale = 1 if args.quick else 6
    wanted = set(args.only.split(","))
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "rounds": rounds,
        "scale": scale,
    }
    steps: dict[str, Callable[[], Any]] = {
        "overhead": lambda: overhead(rounds, scale),
        "per_call": lambda: per_call_ns(rounds, scale),
        "sampler": lambda: sampler(rounds, scale, 2 if args.quick else 6),
        "startup": lambda: startup(rounds),
        "mcp": lambda: {
            "latency": mcp_latency(50 if args.quick else 300),
            "throughput": throughput_loss(2 if args.quick else 5, 1 if args.quick else rounds),
        },
        "memory": lambda: memory(20_000 if args.quick else 100_000, 15 if args.quick else 600),
        "exit": lambda: exit_delay(100_000 if args.quick else 1_000_000, 1 if args.quick else 3),
        "children": lambda: children(rounds, 20 if args.quick else 100, 40 if args.quick else 400),
        "marks": lambda: marks(rounds, (100,) if args.quick else (500, 5000)),
        "locks": lambda: per_operation(rounds, scale, "w7_locks", LOCK_CASES, "ns_per_pair"),
        "io": lambda: per_operation(rounds, scale, "w8_io", IO_CASES, "ns_per_call"),
    }
    if "overhead" in wanted:
        wanted.add("per_call")
    for name, step in steps.items():
        if name in wanted:
            print(f"[bench] {name} ...", file=sys.stderr)
            results[name] = step()
            if args.json:  # after every step: a late failure keeps what was measured
                args.json.write_text(json.dumps(results, indent=2))
    print(f"\n{results['machine']}, Python {results['python']}, ", end="")
    print(f"median of {rounds} rounds after a warm-up\n")
    if "overhead" in results:
        print("Ratio to bare python (median, min-max):\n")
        print(table(results["overhead"]))
        print("\nAllocation targets (ratios of the medians above):\n")
        print(alloc_targets(results["overhead"]))
        print("\nAdded cost per call on w1_calls (ns):")
        for name, ns in results["per_call"].items():
            print(f"  {name}: {ns:.0f}")
    for name in ("sampler", "startup", "mcp", "memory", "exit", "children", "marks", "locks", "io"):
        if name in results:
            print(f"\n{name}: {json.dumps(results[name], indent=1)}")


if __name__ == "__main__":
    main()

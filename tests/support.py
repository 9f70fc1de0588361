"""Running programs under hotpath and under plain python, for side-by-side comparison."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def _own_dirs() -> tuple[str, ...]:
    import hotpath_cli

    import hotpath

    return tuple(
        os.path.join(os.path.dirname(os.path.realpath(module.__file__ or "")), "")
        for module in (hotpath, hotpath_cli)
    )


# hotpath's own code, wherever it is installed: a checkout's folder may well be named
# "hotpath" too, so the bare word in a path says nothing.
OWN_DIRS = _own_dirs()


def mentions_own_code(text: str) -> bool:
    return any(folder in text for folder in OWN_DIRS)


# The recorder the suite runs on (CI runs it once on each): passed to every program it starts.
RECORDER = os.environ.get("HOTPATH_RECORDER", "c")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTPATH_")}
    env["HOTPATH_RECORDER"] = RECORDER
    env.update(extra)
    return env


def hotpath(
    *args: str,
    cwd: Path | str = FIXTURES,
    env: dict[str, str] | None = None,
    stdin: str = "",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``hotpath ARGS`` in a subprocess, run through this interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "hotpath", *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def python(
    *args: str, cwd: Path | str = FIXTURES, stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def profile_output(
    script: str,
    *program_args: str,
    options: tuple[str, ...] = (),
    tmp: Path,
    env: dict[str, str] | None = None,
    cwd: Path | str = FIXTURES,
) -> tuple[str, Any]:
    """Run a fixture under hotpath (no MCP): its stdout and hotpath's JSON report."""
    output = tmp / "report.json"
    result = hotpath(
        "run",
        "--no-mcp",
        "--report",
        "none",
        "--output",
        str(output),
        *options,
        script,
        *program_args,
        cwd=cwd,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, json.loads(output.read_text())


def profile(
    script: str,
    *program_args: str,
    options: tuple[str, ...] = (),
    tmp: Path,
    env: dict[str, str] | None = None,
    cwd: Path | str = FIXTURES,
) -> Any:
    """Run a fixture under hotpath (no MCP) and return its JSON report."""
    _, report = profile_output(script, *program_args, options=options, tmp=tmp, env=env, cwd=cwd)
    return report


def run_script(source: str, tmp: Path) -> tuple[str, Any]:
    """``source`` written as a script in ``tmp`` and run there under hotpath (no MCP): its
    stdout and hotpath's JSON report."""
    script = tmp / "script.py"
    script.write_text(source)
    return profile_output(str(script), tmp=tmp, cwd=tmp)


def functions_by_name(report: Any) -> dict[str, Any]:
    return {row["name"]: row for row in report["functions_timing"]["functions"]}


@contextlib.contextmanager
def held_elsewhere(*locks: Any) -> Iterator[None]:
    """For the time of the block, another thread holds ``locks`` (as a reading of hotpath's
    would): a fork inside it leaves them held in the child."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with contextlib.ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join()


def exit_code_within(pid: int, seconds: float) -> int | None:
    """A forked child's exit code, or None if it had not ended in ``seconds`` (it is killed
    then: a hung child must not outlive the test)."""
    deadline = time.monotonic() + seconds
    while (status := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if status[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return None
    return os.waitstatus_to_exitcode(status[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningProgram:
    """A program under ``hotpath run`` in the background; its output is read as it comes.

    The fixtures idle until their stdin closes, so ``stop`` ends them the ordinary way.
    """

    def __init__(self, *args: str, cwd: Path | str = FIXTURES, env: dict[str, str] | None = None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotpath", "run", *args],
            cwd=cwd,
            env=env if env is not None else clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        for stream, lines in (
            (self.process.stdout, self.stdout),
            (self.process.stderr, self.stderr),
        ):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _pump(stream: IO[str] | None, lines: queue.Queue[str]) -> None:
        assert stream is not None
        for line in stream:
            lines.put(line)
        lines.put("")  # end of stream

    def wait_for(self, text: str, *, stream: str = "stdout", timeout: float = 30) -> str:
        source = self.stdout if stream == "stdout" else self.stderr
        seen = self.stdout_lines if stream == "stdout" else self.stderr_lines
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{text!r} not seen on {stream}; seen: {seen}")
            line = source.get(timeout=remaining)
            if line == "":
                raise EOFError(f"{stream} closed before {text!r}; seen: {seen}")
            seen.append(line)
            if text in line:
                return line

    def stop(self, timeout: float = 30) -> int:
        """Close stdin (the fixture then ends) and return the exit code."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            return self.process.wait(timeout)
        finally:
            self.process.kill()

    def rest(self, stream: str = "stdout") -> str:
        source = self.stdout if stream == "stdout" else self.stderr
        seen = self.stdout_lines if stream == "stdout" else self.stderr_lines
        while (line := source.get(timeout=10)) != "":
            seen.append(line)
        return "".join(seen)

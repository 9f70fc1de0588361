"""hotpath run behaves exactly like python: argv, sys.path, __main__, exits, tracebacks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import (
    FIXTURES,
    ROOT,
    clean_env,
    functions_by_name,
    hotpath,
    mentions_own_code,
    profile,
    python,
)

from hotpath import __version__

LAUNCHER = FIXTURES / "launcher"
QUIET = ("run", "--no-mcp", "--report", "none")


def without_paths(text: str) -> str:
    return text.replace(str(LAUNCHER), "<dir>")


@pytest.mark.parametrize(
    "target",
    [("show.py", "a", "--flag", "-x"), ("-m", "pkg.show", "a", "-x"), ("-m", "pkg", "--help")],
    ids=["script", "module", "package"],
)
def test_program_sees_what_python_gives_it(target: tuple[str, ...]) -> None:
    expected = python(*target, cwd=LAUNCHER, stdin="piped input")
    actual = hotpath(*QUIET, *target, cwd=LAUNCHER, stdin="piped input")
    assert actual.returncode == expected.returncode == 0, actual.stderr
    seen = json.loads(actual.stdout)
    assert seen == json.loads(expected.stdout)
    assert seen["stdin"] == "piped input"
    assert seen["pickled"] == 7


def test_hotpath_options_end_where_the_program_starts() -> None:
    result = hotpath(*QUIET, "--", "show.py", "--limit", "5", "--no-mcp", cwd=LAUNCHER)
    assert json.loads(result.stdout)["argv"] == ["show.py", "--limit", "5", "--no-mcp"]


def test_multiprocessing_spawn_and_forkserver_work_in_the_program() -> None:
    expected = python("show.py", "--spawn", "--forkserver", cwd=LAUNCHER)
    actual = hotpath(*QUIET, "show.py", "--spawn", "--forkserver", cwd=LAUNCHER)
    assert actual.returncode == 0, actual.stderr
    seen = json.loads(actual.stdout)
    assert seen["spawn"] == [1, 4, 9]
    assert seen["forkserver"] == [16, 25]
    assert seen == json.loads(expected.stdout)


@pytest.mark.parametrize("how", ["normal", "code", "message", "raise", "chained", "syntax"])
def test_exit_code_stdout_and_traceback_match_python(how: str) -> None:
    expected = python("exits.py", how, cwd=LAUNCHER)
    actual = hotpath(*QUIET, "exits.py", how, cwd=LAUNCHER)
    assert actual.returncode == expected.returncode
    assert actual.stdout == expected.stdout
    assert actual.stderr == expected.stderr
    assert not mentions_own_code(actual.stderr)


def test_syntax_error_in_the_script_reads_as_under_python() -> None:
    expected = python("bad_syntax.py", cwd=LAUNCHER)
    actual = hotpath(*QUIET, "bad_syntax.py", cwd=LAUNCHER)
    assert (actual.returncode, actual.stdout) == (expected.returncode, expected.stdout) == (1, "")
    assert actual.stderr == expected.stderr


def test_keyboard_interrupt_dies_by_sigint_as_python_does() -> None:
    expected = python("exits.py", "interrupt", cwd=LAUNCHER)
    actual = hotpath(*QUIET, "exits.py", "interrupt", cwd=LAUNCHER)
    assert expected.returncode == actual.returncode == -signal.SIGINT
    assert actual.stderr == expected.stderr


def test_report_is_written_when_the_program_fails(tmp_path: pytest.TempPathFactory) -> None:
    output = tmp_path / "report.json"  # type: ignore[operator]
    result = hotpath("run", "--no-mcp", "--output", str(output), "exits.py", "raise", cwd=LAUNCHER)
    assert result.returncode == 1
    names = {
        row["name"]: row for row in json.loads(output.read_text())["functions_timing"]["functions"]
    }
    assert names["exits.nested_failure"]["calls"] == 4
    assert names["exits.nested_failure"]["errors"] == 4
    assert "[hotpath]" in result.stderr


def test_report_is_written_on_sigterm_and_the_exit_status_is_python_s(
    tmp_path: pytest.TempPathFactory,
) -> None:
    output = tmp_path / "report.json"  # type: ignore[operator]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hotpath",
            "run",
            "--no-mcp",
            "--output",
            str(output),
            "service.py",
            "20",
            "60",
        ],
        cwd=FIXTURES,
        env=clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready 2\n"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    names = {
        row["name"]: row for row in json.loads(output.read_text())["functions_timing"]["functions"]
    }
    assert names["service.Handler.process_request"]["calls"] == 20
    assert "functions, by self time" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("missing.py",), "hotpath: can't open file 'missing.py': No such file or directory\n"),
        (("-m", "no_such_module"), "hotpath: no module named 'no_such_module'\n"),
        ((".",), "hotpath: can't run directory '.': it has no __main__.py\n"),
        (("--include", "app/*.py", "show.py"), None),
        (
            ("--percentiles", "50,101", "show.py"),
            "hotpath: percentile '101' is out of range: use numbers in (0, 100]\n",
        ),
        (("--bogus", "show.py"), "hotpath: unrecognized arguments: --bogus\n"),
        (
            ("--report", "xml", "show.py"),
            "hotpath: report format 'xml' is not one of table, json, none\n",
        ),
        (
            ("--mcp-port", "70000", "show.py"),
            "hotpath: MCP port must be between 0 and 65535, got 70000\n",
        ),
        (
            ("--output", "/nonexistent/dir/r.json", "show.py"),
            "hotpath: --output /nonexistent/dir/r.json: cannot write (No such file or directory)\n",
        ),
        ((), "hotpath: no program given: hotpath run [options] (app.py | -m module) [args ...]\n"),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(
    args: tuple[str, ...], message: str | None
) -> None:
    result = hotpath("run", *args, cwd=LAUNCHER)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("hotpath: ")
    if message is not None:
        assert result.stderr == message


def test_empty_token_is_refused() -> None:
    result = hotpath("run", "show.py", cwd=LAUNCHER, env=clean_env(HOTPATH_MCP_AUTH_TOKEN="  "))
    assert (result.returncode, result.stderr.count("\n")) == (2, 1)
    assert "HOTPATH_MCP_AUTH_TOKEN" in result.stderr


def test_a_bad_metrics_limit_is_refused() -> None:
    result = hotpath("run", "show.py", cwd=LAUNCHER, env=clean_env(HOTPATH_METRICS_LIMIT="0"))
    assert (result.returncode, result.stderr.count("\n"), result.stdout) == (2, 1, "")
    assert "HOTPATH_METRICS_LIMIT" in result.stderr


def test_older_python_is_refused_in_one_line() -> None:
    old = subprocess.run(["python3.11", "--version"], capture_output=True, text=True, check=False)
    if old.returncode != 0:
        pytest.skip("no python3.11 on this machine to play the older Python")
    result = subprocess.run(
        ["python3.11", "-m", "hotpath", "run", "x.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=clean_env(PYENV_VERSION="3.11.7"),
    )
    assert result.returncode == 2
    assert result.stderr == "hotpath: needs Python 3.12 or newer (sys.monitoring); this is 3.11\n"


def _without_extension(**extra: str) -> dict[str, str]:
    return clean_env(PYTHONPATH=str(FIXTURES / "no_extension"), **extra)


def test_without_the_compiled_recorder_hotpath_says_so_once_and_runs_on_python() -> None:
    env = _without_extension()
    del env["HOTPATH_RECORDER"]
    result = hotpath("run", "--no-mcp", "--report", "json", "show.py", cwd=LAUNCHER, env=env)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "recorder: python" in line]
    assert len(notes) == 1
    assert "not built" in notes[0]
    report = json.loads(result.stderr[result.stderr.index("{") :])
    assert report["status"]["recorder"] == "python"


def test_forcing_an_unavailable_compiled_recorder_is_one_line_and_exit_2() -> None:
    result = hotpath("run", "show.py", cwd=LAUNCHER, env=_without_extension(HOTPATH_RECORDER="c"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "HOTPATH_RECORDER=c" in result.stderr and "not built" in result.stderr


def test_a_recorder_name_that_does_not_exist_is_one_line_and_exit_2() -> None:
    result = hotpath("run", "show.py", cwd=LAUNCHER, env=clean_env(HOTPATH_RECORDER="rust"))
    assert (result.returncode, result.stdout, result.stderr.count("\n")) == (2, "", 1)
    assert "HOTPATH_RECORDER must be c or python" in result.stderr


def test_hotpath_help_lists_the_options_and_no_command_is_one_line() -> None:
    result = hotpath("--help")
    assert result.returncode == 0
    for option in ("--include", "--exclude", "--alloc", "--mcp-port", "--output", "--version"):
        assert option in result.stdout, option
    bare = hotpath()
    assert (bare.returncode, bare.stdout, bare.stderr.count("\n")) == (2, "", 1)
    version = hotpath("--version")
    assert version.stdout == f"hotpath {__version__} (hotpath-profiler on PyPI)\n"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "show", "hotpath-profiler"], capture_output=True, text=True
    )
    assert "Version: " + __version__ in installed.stdout  # the distribution's own name
    assert bare.stderr.startswith("hotpath: no command given: hotpath run [options]")


PROJECT = FIXTURES / "project"
RUN_ITS_TESTS = ("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")


def test_an_installed_tool_run_with_dash_m_times_the_project_it_runs_on(tmp_path: Path) -> None:
    report = profile(*RUN_ITS_TESTS, tmp=tmp_path, cwd=PROJECT)
    rows = functions_by_name(report)
    assert rows["mypkg.squares"]["calls"] == 2
    assert rows["test_squares.test_squares"]["calls"] == 1
    assert not any(name.startswith(("_pytest.", "pytest.", "pluggy.")) for name in rows)
    filters = report["status"]["filters"]
    assert filters["default_roots"] == [str(PROJECT.resolve())]
    assert "the project in the current folder" in filters["default_roots_chosen"]


def test_a_run_that_times_nothing_says_which_include_would_help(tmp_path: Path) -> None:
    result = hotpath(
        "run",
        "--no-mcp",
        "--include",
        "nothing.*",
        *RUN_ITS_TESTS,
        cwd=PROJECT,
    )
    assert result.returncode == 0
    note = " ".join(result.stderr.split())  # the table folds long lines
    assert "no profiled function was called: no function matched --include nothing.*" in note
    assert "Code ran from _pytest (" in note and "try --include '_pytest.*'" in note

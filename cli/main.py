"""``hotpath run [options] (app.py | -m module) [args]``.

Everything after the script or module belongs to the program, so the command line is split by
hand before argparse sees hotpath's own options: argparse would otherwise claim the program's
``--help`` or ``-v``.
"""

from __future__ import annotations

import sys

from hotpath import DISTRIBUTION, __version__, require_supported_python

require_supported_python()  # before any import that needs 3.12

import argparse  # noqa: E402
import os  # noqa: E402
from typing import NoReturn  # noqa: E402


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"hotpath: {message}\n")
    sys.exit(2)


USAGE = "hotpath run [options] (app.py | -m module) [args ...]"
COMMANDS = (
    f"{USAGE}, hotpath console [--port N] [--token T], or hotpath compare before.json after.json"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(message)


def _run_parser() -> _Parser:
    parser = _Parser(
        prog="hotpath run",
        usage=USAGE,
        description="Run a Python program under hotpath, exactly as python would run it.",
    )
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="time functions whose module.qualname matches (repeatable); "
        "default: the program's own source tree",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="do not time functions whose module.qualname matches (repeatable)",
    )
    parser.add_argument(
        "--percentiles",
        metavar="LIST",
        help="percentiles to report, e.g. 50,95,99.9 (default 50,95,99)",
    )
    parser.add_argument("--limit", metavar="N", help="rows per table in the report (default 15)")
    parser.add_argument("--report", metavar="FORMAT", help="table (default), json or none")
    parser.add_argument(
        "--sort",
        metavar="KEY",
        help="order of the report's functions: self (default), total, calls, avg or p99",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="also write the JSON report here")
    parser.add_argument(
        "--alloc",
        action="store_true",
        default=None,
        help="count allocations per function and thread (the compiled recorder's allocator hooks)",
    )
    parser.add_argument(
        "--alloc-sites",
        action="store_true",
        default=None,
        help="trace live memory by allocation site with tracemalloc from the start (3-7x slower)",
    )
    parser.add_argument(
        "--sample-interval-ms",
        metavar="MS",
        help="how often every thread's stack is sampled for CPU (default 10; 0 turns it off)",
    )
    parser.add_argument(
        "--flame",
        metavar="FILE",
        help="write the CPU samples at exit: FILE.speedscope.json, FILE.txt (collapsed stacks) "
        "or FILE.html (a flame graph)",
    )
    parser.add_argument(
        "--no-follow",
        dest="follow",
        action="store_false",
        default=None,
        help="do not profile the program's child processes",
    )
    parser.add_argument(
        "--no-mcp",
        dest="mcp",
        action="store_false",
        default=None,
        help="do not start the MCP server",
    )
    parser.add_argument("--mcp-port", metavar="PORT", help="MCP server port (default 6771)")
    parser.add_argument(
        "--keep-serving",
        action="store_true",
        help="keep the MCP server up after the program ends, until Ctrl-C",
    )
    return parser


def _value_options() -> set[str]:
    """The options that take a value (the next token is theirs), as the parser declares them."""
    return {
        option
        for action in _run_parser()._actions
        if action.nargs != 0
        for option in action.option_strings
    }


def split_command_line(args: list[str]) -> tuple[list[str], str | None, bool, list[str]]:
    """Split into (hotpath options, script or module, is_module, program arguments)."""
    takes_value = _value_options()
    index = 0
    while index < len(args):
        token = args[index]
        if token == "--":
            target = args[index + 1] if index + 1 < len(args) else None
            return args[:index], target, False, args[index + 2 :]
        if token == "-m":
            target = args[index + 1] if index + 1 < len(args) else None
            return args[:index], target, True, args[index + 2 :]
        if token.startswith("-m") and not token.startswith("--"):
            return args[:index], token[2:], True, args[index + 1 :]
        if not token.startswith("-") or token == "-":
            return args[:index], token, False, args[index + 1 :]
        index += 2 if token in takes_value else 1
    return args, None, False, []


def run(args: list[str]) -> None:
    from hotpath.config import ConfigError, Options, resolve
    from hotpath.launcher import LaunchError, prepare_module, prepare_script

    own, target, is_module, program_args = split_command_line(args)
    parsed = _run_parser().parse_args(own)
    if target is None:
        _fail("no program given: " + USAGE)
    options = Options(
        include=parsed.include,
        exclude=parsed.exclude,
        percentiles=parsed.percentiles,
        limit=parsed.limit,
        report=parsed.report,
        sort=parsed.sort,
        output=parsed.output,
        mcp=parsed.mcp,
        mcp_port=parsed.mcp_port,
        keep_serving=parsed.keep_serving,
        alloc=parsed.alloc,
        alloc_sites=parsed.alloc_sites,
        sample_interval_ms=parsed.sample_interval_ms,
        flame=parsed.flame,
        follow=parsed.follow,
    )
    try:
        config = resolve(options, os.environ)
        program = (
            prepare_module(target, program_args)
            if is_module
            else prepare_script(target, program_args)
        )
    except (ConfigError, LaunchError) as error:
        _fail(str(error))
    from hotpath.session import Session

    Session(config, program).run()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        _fail(f"no command given: {COMMANDS} (hotpath --help lists the options)")
    if args[0] in ("-h", "--help"):
        # The options, not just where to find them: run is the only command that takes any.
        sys.stdout.write(_run_parser().format_help() + "\nalso: hotpath --version\n")
        return
    if args[0] == "--version":
        sys.stdout.write(f"hotpath {__version__} ({DISTRIBUTION} on PyPI)\n")
        return
    if args[0] == "console":
        console(args[1:])
        return
    if args[0] == "compare":
        compare(args[1:])
        return
    if args[0] == "child" and len(args) >= 4:
        child(args[1:])
        return
    if args[0] != "run":
        _fail(f"unknown command {args[0]!r}: {COMMANDS}")
    run(args[1:])


def console(args: list[str]) -> None:
    """``hotpath console``: the live figures of a running ``hotpath run``, in the terminal."""
    parser = _Parser(prog="hotpath console", description="Watch a running hotpath run live.")
    parser.add_argument(
        "--port", type=int, default=None, help="its server's port (HOTPATH_MCP_PORT, 6771)"
    )
    parser.add_argument("--token", default=None, help="its token (HOTPATH_MCP_AUTH_TOKEN)")
    options = parser.parse_args(args)
    port = options.port
    if port is None:
        text = os.environ.get("HOTPATH_MCP_PORT", "6771")
        if not text.isdigit():
            _fail(f"HOTPATH_MCP_PORT must be a port number, got {text!r}")
        port = int(text)
    if not 1 <= port <= 65535:
        _fail(f"--port must be from 1 to 65535, got {port}")
    token = options.token or os.environ.get("HOTPATH_MCP_AUTH_TOKEN") or None
    try:
        from hotpath.views.console import Console
    except ImportError:
        _fail("the console needs Textual: pip install 'hotpath-profiler[console]'")
    Console(port, token).run()


def compare(args: list[str]) -> None:
    """``hotpath compare before.json after.json``: exit 1 when ``--fail-if-slower`` fails."""
    from hotpath.views import compare as comparing

    parser = _Parser(
        prog="hotpath compare",
        description="Compare two JSON reports (hotpath run --output FILE), function by function.",
    )
    parser.add_argument("before", help="the report before the change")
    parser.add_argument("after", help="the report after it")
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    parser.add_argument("--metric", choices=comparing.METRICS, default="p95")
    parser.add_argument(
        "--fail-if-slower",
        type=float,
        metavar="PCT",
        help="exit 1 if a function's metric grew by more than PCT percent",
    )
    options = parser.parse_args(args)
    if options.fail_if_slower is not None and not options.fail_if_slower >= 0:
        _fail(f"--fail-if-slower must be a percentage of 0 or more, got {options.fail_if_slower}")
    reports = []
    for path in (options.before, options.after):
        try:
            with open(path, encoding="utf-8") as file:
                reports.append(comparing.load(file.read(), path))
        except OSError as error:
            _fail(f"cannot read {path}: {error.strerror or error}")
        except comparing.NotAReport as error:
            _fail(str(error))
    result = comparing.compare(reports[0], reports[1], options.metric)
    sys.stdout.write(comparing.render(result, options.format))
    sys.stdout.flush()
    if options.fail_if_slower is not None:
        slower = comparing.failing(result, options.fail_if_slower)
        if slower:
            named = ", ".join(
                f"{row['name']} ({row['change_percent']:+.1f}%)" for row in slower[:10]
            )
            sys.stderr.write(
                f"hotpath: {len(slower)} functions slower by more than "
                f"{options.fail_if_slower:g}% ({options.metric}): {named}\n"
            )
            sys.exit(1)


def child(args: list[str]) -> None:
    """``hotpath child ADDRESS SETTINGS (script | -m module) [args]``: what a followed Python
    subprocess runs instead of ``python script [args]`` (the parent rewrote its command
    line). Anything hotpath cannot prepare is handed to python itself, unchanged."""
    from hotpath.launcher import LaunchError, prepare_module, prepare_script

    address, settings, *rest = args
    _, target, is_module, program_args = split_command_line(rest)
    try:
        if target is None:
            raise LaunchError("no program")
        program = (
            prepare_module(target, program_args)
            if is_module
            else prepare_script(target, program_args)
        )
    except LaunchError:
        os.execv(sys.executable, [sys.executable, *rest])
    from hotpath.child import run_followed

    run_followed(address, settings, program)

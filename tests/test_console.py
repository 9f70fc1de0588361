"""``hotpath console`` in a real (headless) terminal, driven by Textual's pilot against a live
``hotpath run``: the fixture's functions and exact call counts on screen, tabs, a row's logs,
and the program's end reported with its last figures kept."""

from __future__ import annotations

import asyncio
import time

import pytest
from mcp_client import url
from support import RunningProgram, free_port, hotpath

pytest.importorskip("textual")

from textual.widgets import DataTable, TabbedContent

from hotpath.views.console import Console, Logs

REQUESTS = 50


async def _until(pilot: object, condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the console did not get there in time"
        await pilot.pause(0.1)  # type: ignore[attr-defined]


def _cells(app: Console, table: str) -> list[list[str]]:
    found = app.query_one(f"#table-{table}", DataTable)
    return [[str(c) for c in found.get_row_at(i)] for i in range(found.row_count)]


def test_the_console_shows_the_live_figures_and_the_end() -> None:
    port = free_port()
    program = RunningProgram("--mcp-port", str(port), "service.py", str(REQUESTS), "120")
    program.wait_for("ready 5")
    program.wait_for(f"[hotpath] MCP server on {url(port)}", stream="stderr")

    async def drive() -> None:
        app = Console(port, None)
        async with app.run_test(size=(80, 24)) as pilot:
            await _until(pilot, lambda: app.seen)
            rows = {row[0]: row for row in _cells(app, "functions")}
            assert rows["service.parse"][1] == f"{REQUESTS - 5}"
            assert rows["service.Handler.process_request"][1] == f"{REQUESTS}"
            assert app.status.startswith(f"pid {program.process.pid} | up ")
            # Another tab, and back.
            app.query_one(TabbedContent).active = "threads"
            await pilot.pause(0.2)
            assert any(row[0] == "MainThread" for row in _cells(app, "threads"))
            app.query_one(TabbedContent).active = "functions"
            # The search box filters rows by name.
            await pilot.press("slash", *"parse")
            await _until(
                pilot, lambda: [r[0] for r in _cells(app, "functions")] == ["service.parse"]
            )
            # Enter on a row opens its recent calls.
            table = app.query_one("#table-functions", DataTable)
            table.focus()
            await pilot.press("enter")
            await _until(pilot, lambda: isinstance(app.screen, Logs))
            logs = app.screen.query_one("#logs", DataTable)
            assert (
                logs.row_count == REQUESTS - 5 and "service.parse" in app.screen.answer["summary"]
            )
            await pilot.press("escape")
            # The program ends: the console says so and keeps the last figures.
            assert program.stop() == 0
            await _until(pilot, lambda: app.ended)
            assert "the program has ended" in app.status
            assert [r[0] for r in _cells(app, "functions")] == ["service.parse"]
            await pilot.press("q")

    try:
        asyncio.run(drive())
    finally:
        program.process.kill()


def test_without_a_program_the_console_says_so() -> None:
    async def drive() -> None:
        app = Console(free_port(), None)
        async with app.run_test(size=(80, 24)) as pilot:
            await _until(pilot, lambda: "no hotpath program answers" in app.status)
            assert not app.seen

    asyncio.run(drive())


def test_bad_console_arguments_are_one_line_and_exit_code_2() -> None:
    result = hotpath("console", "--port", "70000")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--port must be from 1 to 65535" in result.stderr


def test_without_textual_the_console_says_how_to_install_it() -> None:
    import subprocess
    import sys

    from support import clean_env

    hidden = (
        "import sys; sys.modules['textual'] = None; sys.argv = ['hotpath', 'console']; "
        "from hotpath_cli.main import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", hidden], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "hotpath: the console needs Textual: pip install 'hotpath-profiler[console]'\n"
    )


def test_a_wrong_token_is_said_not_taken_for_an_ended_program() -> None:
    from support import clean_env

    port = free_port()
    program = RunningProgram(
        "--mcp-port", str(port), "service.py", str(REQUESTS), "120",
        env=clean_env(HOTPATH_MCP_AUTH_TOKEN="s3cret-token"),
    )  # fmt: skip
    program.wait_for("ready 5")
    program.wait_for(f"[hotpath] MCP server on {url(port)}", stream="stderr")

    async def drive() -> None:
        for token, seen in (("wrong", False), ("s3cret-token", True)):
            app = Console(port, token)
            async with app.run_test(size=(80, 24)) as pilot:
                await _until(pilot, lambda: app.seen or "refused" in app.status)  # noqa: B023
                assert app.seen is seen and not app.ended

    try:
        asyncio.run(drive())
    finally:
        assert program.stop() == 0

"""Function timing checked against cProfile's call counts and a known sleep."""

from __future__ import annotations

import pstats
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from support import FIXTURES, clean_env, functions_by_name, hotpath, profile

from hotpath.recorder import compiled_unavailable

SLEEP = 0.2

# cProfile counts every resume of a generator or coroutine as a call; hotpath counts one call
# per activation, from first start to final return. These are the activations by construction.
ACTIVATIONS = {
    "calls.countdown": 4,
    "calls.delegate": 1,
    "calls.tick": 9,
    "calls.gather_ticks": 1,
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return profile("calls.py", str(SLEEP), tmp=tmp_path_factory.mktemp("calls"))


@pytest.fixture(scope="module")
def cprofile_counts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], int]:
    output = tmp_path_factory.mktemp("cprofile") / "calls.prof"
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(output), "calls.py", "0"],
        cwd=FIXTURES,
        check=True,
        capture_output=True,
    )
    stats: dict[Any, Any] = pstats.Stats(str(output)).stats  # type: ignore[attr-defined]
    return {
        (Path(file).name, line): calls
        for (file, line, _name), (_primitive, calls, *_rest) in stats.items()
        if file.endswith("calls.py")
    }


def test_call_counts_equal_cprofile(report: Any, cprofile_counts: dict[Any, int]) -> None:
    rows = report["functions_timing"]["functions"]
    plain = [r for r in rows if r["kind"] == "function"]
    assert len(plain) >= 20
    for row in plain:
        file, line = row["location"].rsplit(":", 1)
        assert row["calls"] == cprofile_counts[(Path(file).name, int(line))], row["name"]
    # Every function cProfile saw in the fixture is reported, generators included.
    assert len(rows) == len(cprofile_counts)


def test_generator_and_coroutine_activations(report: Any) -> None:
    functions = functions_by_name(report)
    for name, expected in ACTIVATIONS.items():
        row = functions[name]
        assert (row["calls"], row["completed"], row["running"]) == (expected, expected, 0), name
        assert 0 < row["active_ns"] <= row["total_ns"]
    assert functions["calls.countdown"]["kind"] == "generator"
    assert functions["calls.tick"]["kind"] == "coroutine"


def test_names_cover_every_kind_of_callable(report: Any) -> None:
    functions = functions_by_name(report)
    expected = {
        "calls.fib": 4097,  # 1973 in main, 12 x 177 in threads
        "calls.Shape.__init__": 57,
        "calls.Shape.area": 50,
        "calls.Square.area": 20,
        "calls.Shape.perimeter": 50,
        "calls.Shape.unit": 7,
        "calls.Shape.describe": 7,
        "calls.make_adder.<locals>.add": 12,
        "calls.<lambda>": 65,
        "calls.thread_work": 4,
        "calls.pool_task": 40,
        "calls.main": 1,
    }
    assert {name: functions[name]["calls"] for name in expected} == expected


def test_recursion_is_counted_once_in_total(report: Any) -> None:
    functions = functions_by_name(report)
    fib, main = functions["calls.fib"], functions["calls.main"]
    # fib(15) nests 15 deep: counting every level would make its total many times main's.
    assert fib["total_ns"] < main["total_ns"]
    assert fib["self_ns"] <= fib["total_ns"] * 1.05
    mutual = functions["calls.mutual_even"]
    assert mutual["total_ns"] < main["total_ns"]


def test_self_time_excludes_profiled_callees(report: Any) -> None:
    functions = functions_by_name(report)
    main = functions["calls.main"]
    # main mostly waits in sleeper(), a profiled callee: its own share is small.
    assert main["self_ns"] < main["total_ns"] - functions["calls.sleeper"]["total_ns"] * 0.99


def test_known_sleep_is_timed_within_three_percent(report: Any) -> None:
    sleeper = functions_by_name(report)["calls.sleeper"]
    assert sleeper["calls"] == 1
    assert SLEEP * 1e9 <= sleeper["total_ns"] <= SLEEP * 1e9 * 1.03
    assert sleeper["min_ns"] == sleeper["max_ns"] == sleeper["total_ns"]


def test_calls_that_raise_are_counted_with_their_errors(report: Any) -> None:
    functions = functions_by_name(report)
    raises = functions["calls.raises"]
    assert raises["calls"] == 6
    assert raises["errors"] == 6
    assert raises["error_types"] == {"ValueError": 6}
    assert functions["calls.catches"]["errors"] == 0


def test_report_lists_functions_sorted_by_self_time(report: Any) -> None:
    section = report["functions_timing"]
    assert section["sorted_by"] == "self_ns"
    own = [row["self_ns"] for row in section["functions"]]
    assert own == sorted(own, reverse=True)
    assert section["all_self_ns"] == sum(own)
    main = functions_by_name(report)["calls.main"]
    assert 0 < main["percent_total"] <= 100
    assert main["percent_self"] == round(100 * main["self_ns"] / sum(own), 2)


def test_the_exit_table_shows_self_and_active_time_sorted_by_self() -> None:
    result = hotpath("run", "--no-mcp", "concurrency.py", stdin="")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("functions, by self time"))
    header = [cell.strip() for cell in lines[title + 2].strip("┃").split("┃")]
    assert header[0] == "Function" and header[-4:] == ["Self", "Active", "Total", "% Self"]
    rows = []
    for line in lines[title + 4 :]:
        if not line.startswith("│"):
            break
        rows.append([cell.strip() for cell in line.strip("│").split("│")])
    shares = [float(row[-1].rstrip("%")) for row in rows]
    assert shares == sorted(shares, reverse=True) and 99 <= sum(shares) <= 101
    kinds = {row[0]: row[-3] for row in rows}
    assert kinds["concurrency.feed"] == "-"  # a plain function has no active time
    assert kinds["concurrency.consumer"] != "-"  # a coroutine has
    assert any(line.startswith("Self: time in the function itself") for line in lines)
    # The same order as --sort asks, and as the JSON report's rows.
    by_calls = hotpath("run", "--no-mcp", "--sort", "calls", "concurrency.py", stdin="")
    assert "functions, by calls" in by_calls.stderr
    bad = hotpath("run", "--sort", "slowest", "concurrency.py")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "hotpath: --sort 'slowest' is not one of self, total, calls, avg, p99"
    )


@pytest.mark.skipif(compiled_unavailable() is not None, reason="the compiled recorder is not built")
def test_both_recorders_agree_on_the_same_program(tmp_path: Path) -> None:
    """The twins on one fixture: identical counts, outcomes and kinds; the same sleep timed
    alike (totals of call-heavy functions differ by each recorder's own cost per call)."""
    reports = {
        recorder: profile(
            "calls.py",
            str(SLEEP),
            tmp=Path(tempfile.mkdtemp(dir=tmp_path)),
            env=clean_env(HOTPATH_RECORDER=recorder),
        )
        for recorder in ("c", "python")
    }
    assert reports["c"]["status"]["recorder"] == "c"
    assert reports["python"]["status"]["recorder"] == "python"
    compiled, python = (
        {row["location"]: row for row in reports[name]["functions_timing"]["functions"]}
        for name in ("c", "python")
    )
    assert compiled.keys() == python.keys()
    assert len(compiled) >= 25
    for location, row in compiled.items():
        twin = python[location]
        for field in ("name", "kind", "calls", "completed", "running", "errors", "error_types"):
            assert row[field] == twin[field], (location, field)
    sleeper = next(row for row in compiled.values() if row["name"] == "calls.sleeper")
    twin = python[sleeper["location"]]
    assert sleeper["total_ns"] == pytest.approx(twin["total_ns"], rel=0.03)
    assert sleeper["percentiles_ns"] == pytest.approx(twin["percentiles_ns"], rel=0.03)

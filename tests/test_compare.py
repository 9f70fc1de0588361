"""``hotpath compare``: two JSON reports of one fixture, the second with an injected sleep
(`step` takes 2 ms, then 6 ms), gated in CI with ``--fail-if-slower``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import hotpath, profile


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    paths = []
    for extra_ms in ("0", "4"):
        folder = tmp_path_factory.mktemp(f"extra{extra_ms}")
        report = profile("compare_app.py", extra_ms, tmp=folder)
        paths.append(folder / "report.json")
        assert report["functions_timing"]["functions"]
    return paths[0], paths[1]


def test_an_injected_sleep_fails_the_gate_and_a_loose_gate_passes(
    reports: tuple[Path, Path],
) -> None:
    before, after = map(str, reports)
    strict = hotpath("compare", before, after, "--fail-if-slower", "20")
    assert strict.returncode == 1
    assert strict.stderr.startswith("hotpath: ") and "compare_app.step (+" in strict.stderr
    assert "compare_app.step" in strict.stdout and "slower" in strict.stdout
    loose = hotpath("compare", before, after, "--fail-if-slower", "500", "--format", "json")
    assert (loose.returncode, loose.stderr) == (0, "")
    result = json.loads(loose.stdout)
    rows = {row["name"]: row for row in result["functions"]}
    step = rows["compare_app.step"]
    assert (step["calls_before"], step["calls_after"]) == (20, 20)
    assert 100 <= step["change_percent"] <= 300  # 2 ms -> 6 ms at p95 (+200%; load moves it)
    # 1 ms both times: it moves with the machine's load (a CI run saw it 10% faster), never
    # by what the injected sleep did to `step`.
    assert abs(rows["compare_app.steady"]["change_percent"]) < 60
    assert result["functions"][0]["name"] == "compare_app.step"  # the worst first
    assert (result["added"], result["removed"]) == ([], [])


def test_markdown_and_metrics_and_added_and_removed_functions(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    before, after = reports
    renamed = json.loads(after.read_text())
    for row in renamed["functions_timing"]["functions"]:
        if row["name"] == "compare_app.steady":
            row["name"] = "compare_app.steady_v2"
    edited = tmp_path / "renamed.json"
    edited.write_text(json.dumps(renamed))
    shown = hotpath("compare", str(before), str(edited), "--format", "markdown", "--metric", "avg")
    assert shown.returncode == 0
    assert shown.stdout.startswith("| Function | Calls before | Calls after | Before | After |")
    assert "added: compare_app.steady_v2; removed: compare_app.steady" in shown.stdout
    total = hotpath("compare", str(before), str(after), "--metric", "total", "--format", "json")
    rows = {row["name"]: row for row in json.loads(total.stdout)["functions"]}
    assert (
        rows["compare_app.step"]["total_ns_after"] > 2 * rows["compare_app.step"]["total_ns_before"]
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("missing.json", "missing.json"), "cannot read missing.json"),
        (("compare_app.py", "compare_app.py"), "compare_app.py is not a hotpath JSON report"),
        (("a.json",), "the following arguments are required: after"),
        (("a", "b", "--fail-if-slower", "-5"), "--fail-if-slower must be a percentage"),
        (("a", "b", "--metric", "p42"), "invalid choice: 'p42'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(arguments: tuple[str, ...], message: str) -> None:
    result = hotpath("compare", *arguments)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr

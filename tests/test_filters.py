"""Which functions are timed: the default tree, --include and --exclude."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import FIXTURES, functions_by_name, profile

from hotpath.filters import FunctionFilter, GlobError, validate_glob

FILTERS = FIXTURES / "filters"


def names(tmp_path: Path, *options: str) -> set[str]:
    report = profile(str(FILTERS / "app.py"), options=options, tmp=tmp_path)
    return set(functions_by_name(report))


def test_default_times_the_program_tree_and_nothing_else(tmp_path: Path) -> None:
    assert names(tmp_path) == {
        "app.<module>",
        "app.main",
        "shop.<module>",
        "shop.cart.<module>",
        "shop.cart.Cart",
        "shop.cart.Cart.__init__",
        "shop.cart.Cart.add",
        "shop.cart.Cart.total",
        "shop.cart.helper",
    }


def test_include_selects_by_name_even_in_the_standard_library(tmp_path: Path) -> None:
    selected = names(tmp_path, "--include", "json.*")
    assert {"json.dumps", "json.loads"} <= selected
    assert all(name.startswith("json.") for name in selected)


def test_exclude_removes_matches_from_the_selection(tmp_path: Path) -> None:
    selected = names(
        tmp_path, "--include", "shop.*", "--exclude", "*.helper", "--exclude", "*.<module>"
    )
    assert selected == {
        "shop.cart.Cart",
        "shop.cart.Cart.__init__",
        "shop.cart.Cart.add",
        "shop.cart.Cart.total",
    }


def test_call_counts_under_a_filter_are_exact(tmp_path: Path) -> None:
    report = profile(str(FILTERS / "app.py"), options=("--include", "*.Cart.*"), tmp=tmp_path)
    calls = {name: row["calls"] for name, row in functions_by_name(report).items()}
    assert calls == {
        "shop.cart.Cart.__init__": 2,
        "shop.cart.Cart.add": 5,
        "shop.cart.Cart.total": 2,
    }


def test_default_filter_skips_installed_code_inside_the_project(tmp_path: Path) -> None:
    chooser = FunctionFilter(roots=[str(tmp_path)])
    assert chooser.selects("app.main", str(tmp_path / "app.py"))
    venv_module = (
        tmp_path / ".venv" / "lib" / "python3.12" / "site-packages" / "requests" / "api.py"
    )
    assert not chooser.selects("requests.api.get", str(venv_module))
    assert not chooser.selects("json.dumps", str(Path(__import__("json").__file__)))
    assert not chooser.selects("x.<module>", "<string>")


def test_hotpath_never_times_itself() -> None:
    import hotpath.store.functions as own

    chooser = FunctionFilter(include=["*"])
    assert not chooser.selects("hotpath.store.functions.Totals.merge", own.__file__)


@pytest.mark.parametrize(
    "pattern", ["", "  ", "app/*.py", "app.(x)", "a b", "[abc", "app.[]", "x[a[b]]"]
)
def test_malformed_globs_are_refused(pattern: str) -> None:
    with pytest.raises(GlobError):
        validate_glob(pattern)


@pytest.mark.parametrize(
    "pattern", ["app.*", "*.handle_request", "myapp.db.Repo.*", "a.<lambda>", "m.f[12]"]
)
def test_good_globs_pass(pattern: str) -> None:
    assert validate_glob(pattern) == pattern


def test_the_program_tree_is_found_through_linked_folders(tmp_path: Path) -> None:
    """Folders are resolved (once each): code reached through a link to the program's tree is
    the program's, and a library linked into the tree is still the library's."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "linked").symlink_to(real)
    chooser = FunctionFilter(roots=[str(real)])
    assert chooser.selects("app.main", str(tmp_path / "linked" / "app.py"))
    json_file = Path(__import__("json").__file__)
    (real / "vendored").symlink_to(json_file.parent)
    assert not chooser.selects("json.dumps", str(real / "vendored" / json_file.name))


def test_declined_packages_are_counted_for_suggestions_and_bounded() -> None:
    from hotpath.store.functions import MAX_DECLINED, FunctionTable

    table = FunctionTable(10, 10)
    for name in ("json.decoder.f", "hotpath.x.y", "<frozen>.f", "pydantic.main.f", "pydantic.a"):
        table.note_declined(name)
    assert table.suggestions() == [("pydantic", 2)]  # not the stdlib, not hotpath
    for i in range(MAX_DECLINED + 50):
        table.note_declined(f"pkg{i}.f")
    assert len(table.declined) == MAX_DECLINED
    table.note_declined("pydantic.b")  # a package already counted still counts
    assert table.suggestions(1) == [("pydantic", 3)]

"""Patches applied when a module is first imported (hotpath/imports.py): the module is as
python would have made it, and nothing a callback does can fail the program's import."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from hotpath.imports import after_import


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n.startswith("hp_imports_")]:
        del sys.modules[name]


def test_a_callback_runs_once_right_after_the_module_has_run(folder: Path) -> None:
    (folder / "hp_imports_a.py").write_text("VALUE = 42\n")
    seen: list[object] = []
    after_import("hp_imports_a", lambda module: seen.append(module.VALUE))
    assert seen == [] and "hp_imports_a" not in sys.modules  # nothing imported for it
    import hp_imports_a  # type: ignore[import-not-found]

    assert seen == [42]
    # The module is as python makes it: its own loader, its spec's.
    assert type(hp_imports_a.__loader__).__name__ == "SourceFileLoader"
    assert hp_imports_a.__spec__.loader is hp_imports_a.__loader__
    import importlib

    importlib.reload(hp_imports_a)
    assert seen == [42]  # once


def test_a_module_imported_already_is_patched_at_once() -> None:
    seen: list[ModuleType] = []
    after_import("json", seen.append)
    assert seen == [sys.modules["json"]]


def test_a_failing_callback_never_fails_the_import(folder: Path) -> None:
    (folder / "hp_imports_b.py").write_text("VALUE = 7\n")

    def broken(module: ModuleType) -> None:
        raise RuntimeError("a bug of hotpath's")

    after_import("hp_imports_b", broken)
    import hp_imports_b  # type: ignore[import-not-found]

    assert hp_imports_b.VALUE == 7


def test_a_module_that_does_not_exist_still_fails_as_under_python() -> None:
    after_import("hp_imports_missing", lambda module: None)
    with pytest.raises(ModuleNotFoundError, match="hp_imports_missing"):
        import hp_imports_missing  # type: ignore[import-not-found]  # noqa: F401

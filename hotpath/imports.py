"""Run a function right after a module is first imported, or now if it is imported already.

Following child processes patches multiprocessing, concurrent.futures and subprocess; a
program that never imports them must not pay for importing them at start (7 ms of the
program's first line, measured: ``concurrent.futures.process`` alone pulls in most of
multiprocessing). A finder first in ``sys.meta_path`` answers only for the modules waited
for: it asks the finders after it for the module's spec, and wraps the loader so that the
callbacks run once the module has executed. The module ends up as it would have been: its
``__loader__`` and ``__spec__.loader`` are the real loader before its code runs.

Invariants: a module is waited for at most once (the finder forgets it as it is found); a
callback that raises is ignored (the program's import must never fail because of hotpath);
a program that replaces ``sys.meta_path`` or imports the module some other way goes
unpatched, and so unfollowed there, silently.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from importlib.abc import Loader
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

Callback = Callable[[ModuleType], object]


class _Finder:
    def __init__(self) -> None:
        self.waiting: dict[str, list[Callback]] = {}

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        callbacks = self.waiting.pop(name, None)
        if callbacks is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: ModuleSpec | None = find(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, callbacks)
                return spec
        return None


class _Loader(Loader):
    def __init__(self, loader: Any, callbacks: list[Callback]) -> None:
        self.loader = loader
        self.callbacks = callbacks

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        created: ModuleType | None = self.loader.create_module(spec)
        return created

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        for callback in self.callbacks:
            _run(callback, module)


_finder = _Finder()


def after_import(name: str, callback: Callback) -> None:
    """``callback(module)`` once ``name`` is imported: now if it is already."""
    module = sys.modules.get(name)
    if module is not None:
        _run(callback, module)
        return
    _finder.waiting.setdefault(name, []).append(callback)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def _run(callback: Callback, module: ModuleType) -> None:
    with contextlib.suppress(Exception):  # the program's import goes on, unpatched
        callback(module)

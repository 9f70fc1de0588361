"""Runs a script or module as ``__main__``, the way ``python app.py`` and ``python -m`` do.

Preparing (finding the file or module, compiling it) is separate from running, so a missing
script is reported before any profiling starts, and a running program sees the same
``sys.argv``, ``sys.path[0]``, ``__main__`` module and ``__spec__`` as under python.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import itertools
import os
import sys
from dataclasses import dataclass
from types import CodeType, ModuleType, TracebackType

from hotpath.filters import is_installed, project_root


class LaunchError(Exception):
    """The program cannot be started; the message is one line for the user."""


@dataclass
class Program:
    code: CodeType | SyntaxError  # a script that does not compile fails when it runs, as in python
    module: ModuleType  # the fresh __main__
    argv: list[str]
    path0: str
    name: str  # how the main module is named in reports: `app`, or `pkg.mod`
    root: str  # the program's own tree, for the default filter
    root_chosen: str  # why that tree, in words


def prepare_script(path: str, args: list[str]) -> Program:
    if os.path.isdir(path):
        main = os.path.join(path, "__main__.py")
        if not os.path.isfile(main):
            raise LaunchError(f"can't run directory '{path}': it has no __main__.py")
        folder = os.path.realpath(path)
        file = os.path.abspath(main)
        name = os.path.basename(folder)
    else:
        file = os.path.abspath(path)
        folder = os.path.dirname(os.path.realpath(file))
        name = os.path.splitext(os.path.basename(file))[0]
    try:
        with open(file, "rb") as handle:
            source = handle.read()
    except OSError as error:
        raise LaunchError(f"can't open file '{path}': {error.strerror}") from None
    module = _main_module(file, importlib.machinery.SourceFileLoader("__main__", file), None)
    code = _compile(source, file)
    return Program(code, module, [path, *args], folder, name, folder, "the script's folder")


def prepare_module(name: str, args: list[str]) -> Program:
    # python -m puts the working directory first, and so must we before the import system looks.
    path0 = os.getcwd()
    sys.path.insert(0, path0)
    try:
        spec = _find_spec(name)
        if spec.submodule_search_locations is not None:
            main_name = f"{name}.__main__"
            spec = _find_spec(main_name)
            if spec.submodule_search_locations is not None:
                raise LaunchError(f"'{name}' is a package and cannot be directly executed")
            name = main_name
        loader = spec.loader
        get_code = getattr(loader, "get_code", None)
        if get_code is None or spec.origin is None:
            raise LaunchError(f"no code object available for '{name}'")
        code = get_code(name)
        if code is None:
            raise LaunchError(f"no code object available for '{name}'")
    finally:
        sys.path.remove(path0)
    top = name.partition(".")[0]
    top_spec = importlib.util.find_spec(top) if top != name else spec
    root = _package_root(top_spec, spec.origin)
    chosen = f"the folder of {top}, the module run with -m"
    if is_installed(root):
        # `-m pytest`, `-m black`, `-m uvicorn app:app`: the tool is installed code, and what
        # a person wants timed is the project they run it on.
        root = project_root(path0)
        chosen = f"the project in the current folder, as {top} is installed code"
    module = _main_module(spec.origin, loader, spec)
    return Program(code, module, [spec.origin, *args], path0, name, root, chosen)


def _find_spec(name: str) -> importlib.machinery.ModuleSpec:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as error:
        raise LaunchError(f"error while finding module '{name}': {error}") from None
    if spec is None:
        raise LaunchError(f"no module named '{name}'")
    return spec


def _package_root(spec: importlib.machinery.ModuleSpec | None, origin: str) -> str:
    if spec is not None and spec.submodule_search_locations:
        return os.path.realpath(next(iter(spec.submodule_search_locations)))
    return os.path.dirname(os.path.realpath(origin))


def _compile(source: bytes, file: str) -> CodeType | SyntaxError:
    # A SyntaxError is the program's error, not hotpath's: it is raised when the program runs.
    try:
        return compile(source, file, "exec", dont_inherit=True)
    except SyntaxError as error:
        return error


def _main_module(
    file: str, loader: object, spec: importlib.machinery.ModuleSpec | None
) -> ModuleType:
    module = ModuleType("__main__")
    module.__dict__.update(
        __file__=file,
        __loader__=loader,
        __spec__=spec,
        __package__=spec.parent if spec is not None else None,
        __cached__=spec.cached if spec is not None else None,
        __builtins__=builtins,
    )
    return module


def install(program: Program) -> None:
    """Make the interpreter look as it would under ``python``; call just before ``run``."""
    sys.argv[:] = program.argv
    if sys.path:
        sys.path[0] = program.path0
    else:
        sys.path.append(program.path0)
    sys.modules["__main__"] = program.module


def run(program: Program) -> None:
    if isinstance(program.code, SyntaxError):
        raise program.code
    exec(program.code, program.module.__dict__)


def strip_own_frames(
    traceback: TracebackType | None, own_files: tuple[str, ...]
) -> TracebackType | None:
    """Drop hotpath's frames from a traceback, so it reads as under python: the launcher's at
    the top, and a callback's at the bottom when Ctrl-C lands while hotpath is recording."""
    kept = []
    while traceback is not None:
        if not traceback.tb_frame.f_code.co_filename.startswith(own_files):
            kept.append(traceback)
        traceback = traceback.tb_next
    for outer, inner in itertools.pairwise(kept):
        outer.tb_next = inner
    if kept:
        kept[-1].tb_next = None
    return kept[0] if kept else None

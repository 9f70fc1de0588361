"""Which functions hotpath times: decided once per code object, never on the event path."""

from __future__ import annotations

import fnmatch
import os
import re
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from types import CodeType, FrameType

# What a qualified name can hold (`pkg.mod.Class.method`, `app.main.<locals>.<lambda>`) plus
# the glob operators. Anything else is a typo, or a path given where a name was meant.
_GLOB_CHARS = re.compile(r"^[\w.<>*?\[\]!-]+$")
_INSTALLED_DIRS = frozenset({"site-packages", "dist-packages"})


def own_dirs() -> tuple[str, ...]:
    """hotpath's own packages (the library and its command line), wherever they are installed."""
    dirs = [os.path.dirname(os.path.realpath(__file__))]
    cli = sys.modules.get("hotpath_cli")
    if cli is not None and cli.__file__:
        dirs.append(os.path.dirname(os.path.realpath(cli.__file__)))
    return tuple(dirs)


class GlobError(ValueError):
    """A malformed --include/--exclude pattern."""


def validate_glob(pattern: str) -> str:
    text = pattern.strip()
    if not text:
        raise GlobError("empty pattern")
    if not _GLOB_CHARS.match(text):
        raise GlobError(
            f"invalid glob {pattern!r}: it matches qualified names such as 'app.*' or "
            "'*.handle_request', so it may hold only name characters, '.', '*', '?', '[...]'"
        )
    depth = 0
    for char in text:
        if char == "[":
            if depth:
                raise GlobError(f"invalid glob {pattern!r}: nested '['")
            depth = 1
        elif char == "]" and depth:
            depth = 0
    if depth:
        raise GlobError(f"invalid glob {pattern!r}: '[' is never closed")
    if "[]" in text or "[!]" in text:
        raise GlobError(f"invalid glob {pattern!r}: empty character class")
    return text


def _compile(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = [fnmatch.translate(validate_glob(p)) for p in patterns]
    return re.compile("|".join(parts)) if parts else None


def _library_dirs() -> tuple[str, ...]:
    """Folders of code that is never the user's own: stdlib, site-packages, the interpreter."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        value = sysconfig.get_path(key)
        if value:
            paths.add(value)
    paths.update(p for p in sys.path if os.path.basename(p) in _INSTALLED_DIRS)
    return tuple(os.path.join(os.path.realpath(p), "") for p in paths if p)


PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def is_installed(path: str) -> bool:
    """Whether a folder holds installed code: the standard library, site-packages, the
    interpreter's own, or any site-packages (another virtual environment's)."""
    real = os.path.join(os.path.realpath(path), "")
    return real.startswith(_library_dirs()) or any(
        part in _INSTALLED_DIRS for part in real.split(os.sep)
    )


def project_root(folder: str) -> str:
    """The project a folder lies in: the nearest folder up from it with a pyproject.toml,
    setup.py, setup.cfg or .git, not above the home folder; else the folder itself."""
    start = os.path.realpath(folder)
    home = os.path.realpath(os.path.expanduser("~"))
    current = start
    while True:
        if any(os.path.exists(os.path.join(current, marker)) for marker in PROJECT_MARKERS):
            return current
        parent = os.path.dirname(current)
        if parent == current or current == home:
            return start
        current = parent


class FunctionFilter:
    """Selects functions by qualified-name globs, or by default the program's own source tree."""

    def __init__(
        self,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        roots: Sequence[str] = (),
        roots_chosen: str = "",
    ) -> None:
        self.include = tuple(include)
        self.roots_chosen = roots_chosen  # why the default filter times those folders
        self.exclude = tuple(exclude)
        self.roots = tuple(os.path.join(os.path.realpath(r), "") for r in roots)
        self._include = _compile(include)
        self._exclude = _compile(exclude)
        self._libraries = _library_dirs()
        self._hotpath = tuple(os.path.join(d, "") for d in own_dirs())
        self._real: dict[str, str] = {}

    def selects(self, qualified_name: str, filename: str) -> bool:
        path = self._realpath(filename)
        if path.startswith(self._hotpath):
            return False
        if self._include is not None:
            if not self._include.match(qualified_name):
                return False
        elif not self.in_program_tree(path):
            return False
        return self._exclude is None or not self._exclude.match(qualified_name)

    def in_program_tree(self, path: str) -> bool:
        if not path.startswith(self.roots) or path.startswith(self._libraries):
            return False
        # Installed code in the tree that is not on this interpreter's path: another venv.
        return not any(part in _INSTALLED_DIRS for part in path.split(os.sep))

    def _realpath(self, filename: str) -> str:
        """The file's path with its folder's links resolved: once per folder, not per file.

        realpath() makes a system call per path component, each releasing the GIL, and a
        decision is made in whichever thread first runs the code (hotpath's own included):
        per file, the decisions of a short program's first second cost it up to 18% (W2).
        A file that is itself a link keeps its own name: it belongs where it is linked.
        """
        if not os.path.isabs(filename):
            return filename
        folder, name = os.path.split(filename)
        real = self._real.get(folder)
        if real is None:
            real = os.path.realpath(folder)
            if len(self._real) < 100_000:
                self._real[folder] = real
        return os.path.join(real, name)

    def describe(self) -> dict[str, list[str] | str | None]:
        default = not self.include
        return {
            "include": list(self.include),
            "exclude": list(self.exclude),
            "default_roots": [r.rstrip(os.sep) for r in self.roots] if default else [],
            "default_roots_chosen": self.roots_chosen if default else None,
        }


def shown_path(file: str, root: str) -> str:
    """A source path as reports show it: relative to the program's folder when inside it."""
    if not os.path.isabs(file):
        return file
    relative = os.path.relpath(file, root)
    return file if relative.startswith("..") else relative


def qualified_name(code: CodeType, frame: FrameType | None, main_name: str) -> str:
    """``module.qualname``, the script's module named after its file rather than __main__."""
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    # A spawned multiprocessing child imports the script as __mp_main__: the same names. Its
    # first frame, the `python -c` command that starts it, is __main__'s but not the script's.
    if not isinstance(module, str) or (
        module in ("__main__", "__mp_main__") and not code.co_filename.startswith("<")
    ):
        module = main_name
    return f"{module}.{code.co_qualname}" if module else code.co_qualname

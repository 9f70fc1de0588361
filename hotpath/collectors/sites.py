"""Creation sites: which line of the program made an object, and what the program calls it.

Channels and locks are reported per creation site, named like the program names them: the
variable or attribute the creating line assigns to (``jobs = asyncio.Queue()`` is "jobs",
``self.lock = threading.Lock()`` is "lock"), else ``file:line``.
"""

from __future__ import annotations

import linecache
import re
import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from hotpath.filters import shown_path

_ASSIGNED = re.compile(r"^\s*(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*)\s*(?::[^=]+)?=(?!=)")
MAX_DECISIONS = 4096  # code objects whose verdict is kept; past it, each creation asks again

Selects = Callable[[FrameType], bool]


def creating_frame(instance: object, depth: int) -> FrameType | None:
    """The program's frame that created ``instance``: ``depth`` frames up from the caller,
    past any ``__init__`` of a subclass of the program's own."""
    frame: FrameType | None = sys._getframe(depth + 1)
    while frame is not None and frame.f_code.co_name == "__init__":
        if frame.f_locals.get("self") is not instance:
            break
        frame = frame.f_back
    return frame


def site_name(frame: FrameType, root: str) -> tuple[str, str]:
    """(name, location) of the line ``frame`` is at."""
    file, line = frame.f_code.co_filename, frame.f_lineno
    location = f"{shown_path(file, root)}:{line}"
    match = _ASSIGNED.match(linecache.getline(file, line))
    return (match.group(1) if match else location), location


def kind_name(instance: object, kinds: tuple[tuple[type, str], ...]) -> str:
    """The standard class ``instance`` is (the first of ``kinds`` it is an instance of), with
    the program's own subclass beside it: "asyncio.Lock (TimedLock)"."""
    name = next((name for cls, name in kinds if isinstance(instance, cls)), kinds[-1][1])
    own = type(instance).__qualname__
    return name if name.endswith("." + own) else f"{name} ({own})"


class Verdicts:
    """Whether objects created in a code object are the program's (the function filter
    decides), remembered per code object: locks are created often, by the standard library
    too (every Thread makes three), and a creation the filter declines should cost a lookup.

    Keyed by the code's id, the code kept in the value so that the id stays its own: a code
    object's hash digests its bytecode, constants and names (microseconds for a large
    function), and the SQL and HTTP collectors look up every frame of a call's stack."""

    def __init__(self, selects: Selects) -> None:
        self._selects = selects
        self.known: dict[int, tuple[CodeType, bool]] = {}  # a hot loop may look here first

    def __call__(self, frame: FrameType) -> bool:
        code = frame.f_code
        found = self.known.get(id(code))
        if found is not None:
            return found[1]
        verdict = self._selects(frame)
        if len(self.known) < MAX_DECISIONS:
            self.known[id(code)] = code, verdict
        return verdict


def like[F: Callable[..., Any]](wrapper: F, real: Any) -> F:
    """``wrapper``, answering to the name, qualified name and doc of ``real``, which it
    stands in for."""
    wrapper.__name__ = real.__name__
    wrapper.__qualname__ = real.__qualname__
    wrapper.__doc__ = real.__doc__
    return wrapper


class Patches:
    """What a collector replaced in the standard library, to put back as it was."""

    def __init__(self) -> None:
        self._replaced: list[tuple[object, str, object]] = []
        self._undo: list[Callable[[], object]] = []

    def on_undo(self, undo: Callable[[], object]) -> None:
        """``undo()`` too when the patches are undone (an event listener to remove)."""
        self._undo.append(undo)

    def replace(self, owner: object, name: str, value: object) -> None:
        self._replaced.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def wrap(self, owner: object, name: str, wrapper: Callable[..., Any]) -> None:
        """Replace ``owner.name`` with ``wrapper``, which stands in for it: it answers to the
        original's name, qualified name and doc."""
        self.replace(owner, name, like(wrapper, getattr(owner, name)))

    def wrap_init(self, cls: type, created: Callable[[Any], None]) -> None:
        """``created(instance)`` after each ``cls(...)``, the class itself left as it is."""
        original = cls.__dict__["__init__"]

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            created(self)

        self.wrap(cls, "__init__", __init__)

    def undo(self) -> None:
        while self._replaced:
            owner, name, value = self._replaced.pop()
            setattr(owner, name, value)
        while self._undo:
            self._undo.pop()()

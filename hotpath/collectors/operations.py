"""What the SQL, HTTP and route collectors share: patching a library once it is imported,
naming the program's function that made a call, and the request a call was made inside.

Each of the three collectors (``sql.py``, ``http.py``, ``routes.py``) lists its *patch
points*, (module, function that patches it); a patch point runs when the program first
imports its module (``hotpath.imports``), so a program that never imports a library pays
nothing for it. What was patched is put back after the report and in a forked child.

The caller of an SQL statement or an HTTP call is the innermost frame of the program's own
code (the function filter decides, as for the timed functions: a verdict kept per code
object), found by walking up from the library's frames: ``get_user (app.py:42)`` rather
than SQLAlchemy's ``_execute_context``. A request a served route is handling is a
``RequestScope`` in a context variable: the SQL and HTTP calls made in its context (its
thread, its task, a thread pool the framework hands it to with the context copied) add to it,
and the route folds them in when the request ends.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable
from types import CodeType, FrameType, ModuleType
from typing import Any

from hotpath import stdlib
from hotpath.collectors import Collector
from hotpath.collectors.sites import MAX_DECISIONS, Patches, Selects, Verdicts
from hotpath.filters import qualified_name, shown_path
from hotpath.imports import after_import
from hotpath.recorder import Exclusion
from hotpath.store.operations import MAX_INSIDE, OTHER, Caller, Done, Figures, Inside
from hotpath.store.operations import OperationTable as Table

MAX_DEPTH = 200  # frames walked up to find the program's caller


class RequestScope:
    """The SQL and HTTP calls made while one request is served, and its route once the
    framework has matched it."""

    __slots__ = ("inside", "location", "root", "route")

    def __init__(self, root: str = "") -> None:
        self.inside: dict[Inside, Figures] = {}
        self.root = root  # ASGI: the path the application itself is mounted at
        self.route: str | None = None  # the template, as the framework names it
        self.location: str | None = None  # the endpoint's "file:line"

    def add(self, key: Inside, duration_ns: int) -> None:
        if key not in self.inside and len(self.inside) >= MAX_INSIDE:
            key = (key[0], OTHER)
        calls, time_ns = self.inside.get(key, (0, 0))
        self.inside[key] = Figures(calls + 1, time_ns + duration_ns)


CURRENT: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "hotpath_request", default=None
)

PatchPoint = tuple[str, Callable[[ModuleType], None]]


class OperationCollector(Collector):
    """A collector of one kind of operation (``kind``: "sql", "http" or "route") into
    ``table``. Subclasses list their patch points and call ``finished`` for each call."""

    kind = ""

    def __init__(
        self,
        table: Table,
        selects: Selects,
        root: str,
        main_name: str,
        own_idents: set[int],
        exclusion: Exclusion | None = None,
    ) -> None:
        self.table = table
        self.root = root
        self.main_name = main_name
        self.own_idents = own_idents  # hotpath's threads: what they do is not the program's
        self.exclusion = exclusion  # --alloc: what the hooks allocate is not the program's
        self.patches = Patches()
        self._verdicts = Verdicts(selects)
        # Call sites already named: (id of the code, line) -> (the code, kept so that its id
        # stays its own; the caller). Naming one costs ~8 µs (the path made relative:
        # os.path.relpath), more than the rest of a statement's bookkeeping; a program calls
        # from the same few lines again and again.
        self._callers: dict[tuple[int, int], tuple[CodeType, Caller]] = {}
        self._active = False

    def patch_points(self) -> list[PatchPoint]:
        raise NotImplementedError

    def install(self) -> None:
        self._active = True
        for module, patch in self.patch_points():
            after_import(module, self._when_active(patch))

    def _when_active(self, patch: Callable[[ModuleType], None]) -> Callable[[ModuleType], None]:
        def apply(module: ModuleType) -> None:
            if self._active:  # imported first after the report: left as it is
                patch(module)

        return apply

    def release(self) -> None:
        self._active = False
        self.patches.undo()

    def forget_in_child(self) -> None:
        self.release()

    def ours(self) -> bool:
        """Whether a call starting now is to be recorded: the collector is on, and the
        calling thread is the program's (not one of hotpath's own). Off after the report and
        in a forked child, where objects made before still hold timed methods: their calls
        then pass through untouched, never into a store whose locks a thread of the parent's
        may have held at the fork."""
        return self._active and stdlib.get_ident() not in self.own_idents

    def caller(self, depth: int) -> Caller | None:
        """The innermost frame of the program's own code, ``depth`` frames up from the
        caller and beyond: its function's name and the line it is at."""
        frame: FrameType | None = sys._getframe(depth + 1)
        known, callers = self._verdicts.known, self._callers
        for _ in range(MAX_DEPTH):
            if frame is None:
                return None
            code = frame.f_code
            found = known.get(id(code))  # inlined: this loop runs for every statement
            if found[1] if found is not None else self._verdicts(frame):
                site = id(code), frame.f_lineno
                named = callers.get(site)
                if named is not None:
                    return named[1]
                caller = (
                    qualified_name(code, frame, self.main_name),
                    f"{shown_path(code.co_filename, self.root)}:{site[1]}",
                )
                if len(callers) < MAX_DECISIONS:
                    callers[site] = code, caller
                return caller
            frame = frame.f_back
        return None

    def finished(
        self,
        name: str,
        location: str | None,
        library: str,
        started: int,
        error: BaseException | None,
        status: int | None = None,
        **figures: Any,
    ) -> None:
        """File a call that began at ``started`` and ended now, with ``status`` or by
        raising ``error``, under ``name``; ``location`` (None: where the caller is). Its
        outcome is the status class, else the error's class, else "ok"; it failed if it
        raised or its status is a 5xx. ``figures``: rows, sent, received, inside.
        Subclasses call it from hooks run under ``excluded(..., self.exclusion)``."""
        duration = stdlib.perf_counter_ns() - started
        if status is not None:  # a response started (Starlette re-raises after its 500)
            outcome = status_class(status)
        else:
            outcome = "ok" if error is None else type(error).__name__
        failed = error is not None or (status is not None and status >= 500)
        caller = None if self.kind == "route" else self.caller(1)
        done = Done(duration, outcome, failed, caller, status, **figures)
        if location is None:
            location = caller[1] if caller is not None else library
        self.table.record(name, location, library, done)
        request = CURRENT.get()
        if request is not None and self.kind != "route":
            request.add((self.kind, name), duration)


def status_class(status: int) -> str:
    """The status's class: "2xx" for 200-299, and so on; "?" outside 100-599."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "?"

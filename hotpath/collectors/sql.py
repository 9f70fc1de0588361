"""SQL: each statement the program executes, by its normalized text, with no code changes.

- ``sqlite3``: its connection and cursor are C types whose methods cannot be replaced, so
  ``sqlite3.connect`` hands sqlite3 a ``factory``: a subclass of the connection class asked
  for (``sqlite3.Connection`` by default), named as it is, whose cursors are subclasses of
  theirs with a timed ``execute``, ``executemany`` and ``executescript`` (the connection's
  shortcuts go through them). ``isinstance`` holds; ``type(connection) is
  sqlite3.Connection`` does not. A connection made with a positional ``factory`` (a sixth
  positional argument) is left alone.
- SQLAlchemy: its engines' ``before_cursor_execute``, ``after_cursor_execute`` and
  ``handle_error`` events, for every engine. While SQLAlchemy times a statement, the driver
  under it does not count it again (``sqlite3`` here).

A statement's time is its ``execute`` call: a SELECT's rows fetched afterwards are the
program's own time. Parameters are never read: they may hold secrets. The statement's text
is normalized (``normalize``), so one entry holds every run of a query whatever its values.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from hotpath import stdlib
from hotpath.collectors.operations import OperationCollector, PatchPoint
from hotpath.collectors.sites import like
from hotpath.recorder import excluded

MAX_SQL = 300  # characters of a normalized statement; longer ones end with "…"
MAX_READ = 4096  # characters of a statement normalized: a script of megabytes is not read whole
MAX_NORMALIZED = 4096  # statements whose normalized text is kept: queries repeat...
MAX_KEPT = 1024  # ...and short enough to keep (the cache holds at most 4 MiB of text)


@functools.cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    """Compiled at the first statement, not at start (about 1 ms a program without SQL
    would pay): comments; a quoted string, or a number that is not part of a name or a
    placeholder ($1, :1, t1); whitespace; an IN list; rows of VALUES (?, ?), (?, ?)."""
    return (
        re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL),
        re.compile(
            r"'(?:[^']|'')*'|(?<![\w$:@.])(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\b"
        ),
        re.compile(r"\s+"),
        re.compile(r"\bIN \(\?(?:, \?)+\)", re.IGNORECASE),
        re.compile(r"(\((?:\?, )*\?\))(?:, \((?:\?, )*\?\))+"),
    )


# Set while SQLAlchemy times a statement: the driver's cursor under it does not count it too.
_TIMED = contextvars.ContextVar("hotpath_sql_timed", default=False)


def _timed_above() -> bool:
    """Whether SQLAlchemy times the statement the driver is about to run; if so, the flag is
    spent: SQLAlchemy's one statement is one driver call, and a flag that its after-event
    never cleared (an interrupt inside the driver) must not hide the thread's later calls."""
    if not _TIMED.get():
        return False
    _TIMED.set(False)
    return True


def normalize(statement: str) -> str:
    """Literals replaced by ``?``, comments dropped, whitespace collapsed, ``IN`` lists and
    rows of values folded to one, bounded length: ``SELECT * FROM t WHERE id IN (1, 2)``
    and ``select *  from t where id in (7)`` are both ``SELECT * FROM t WHERE id IN (?)``
    but for the keywords' case, which is kept as written."""
    comment, literal, space, in_list, rows = _patterns()
    text = comment.sub(" ", statement)
    text = literal.sub("?", text)
    text = space.sub(" ", text).strip()
    text = in_list.sub(lambda m: m.group(0)[:2] + " (?)", text)
    text = rows.sub(r"\1", text)
    return text if len(text) <= MAX_SQL else text[: MAX_SQL - 1] + "…"


class SqlCollector(OperationCollector):
    kind = "sql"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._normalized: dict[str, str] = {}
        self._classes: dict[type, type] = {}  # a connection or cursor class -> its timed one
        self._made: set[type] = set()  # the timed ones: asked for again, they are used as is
        self.statement_done = excluded(self._statement_done, self.exclusion)
        self.started = excluded(self._started, self.exclusion)

    def provides(self) -> dict[str, bool]:
        return {"sql": True}

    def patch_points(self) -> list[PatchPoint]:
        return [
            ("sqlite3", self._patch_sqlite3),
            ("sqlalchemy", self._patch_sqlalchemy),
            ("psycopg", self._patch_psycopg),
            ("psycopg2", self._patch_psycopg2),
            ("asyncpg", self._patch_asyncpg),
        ]

    def _name(self, statement: object) -> str:
        if not isinstance(statement, str):
            statement = _text(statement)
        name = self._normalized.get(statement)
        if name is None:
            name = normalize(statement[:MAX_READ])
            if len(self._normalized) < MAX_NORMALIZED and len(statement) <= MAX_KEPT:
                self._normalized[statement] = name
        return name

    def _statement_done(
        self,
        library: str,
        statement: object,
        started: int,
        error: BaseException | None,
        rows: int | None,
    ) -> None:
        self.finished(self._name(statement), None, library, started, error, rows=rows)

    # -- sqlite3 ------------------------------------------------------------------------------

    def _patch_sqlite3(self, module: ModuleType) -> None:
        real = module.connect
        base = module.Connection
        timed_class = self._timed_connection

        def connect(*args: Any, **kwargs: Any) -> Any:
            factory = kwargs.get("factory", base)
            if len(args) <= 5 and isinstance(factory, type) and issubclass(factory, base):
                kwargs["factory"] = timed_class(factory, module)
            return real(*args, **kwargs)

        self.patches.wrap(module, "connect", connect)
        dbapi2 = getattr(module, "dbapi2", None)  # SQLAlchemy connects through it
        if dbapi2 is not None and dbapi2.connect is real:
            self.patches.replace(dbapi2, "connect", connect)

    def _timed_connection(self, base: type, module: ModuleType) -> type:
        found = self._classes.get(base)
        if found is not None:
            return found
        timed_cursor = self._timed_cursor
        default_cursor = module.Cursor
        default_timed = timed_cursor(default_cursor, "sqlite3")
        new_cursor = module.Connection.cursor  # sqlite3's own, past any override

        class Connection(base):  # type: ignore[misc]
            __slots__ = ()

            def cursor(self, factory: type = default_cursor) -> Any:
                if isinstance(factory, type) and issubclass(factory, default_cursor):
                    factory = timed_cursor(factory, "sqlite3")
                return super().cursor(factory)

            # sqlite3's own shortcuts make their cursor in C, with sqlite3's cursor() and its
            # default class, a subclass's cursor() never called: these do the same, with the
            # timed class (a new cursor, its method called, the cursor returned).
            def execute(self, sql: str, parameters: Any = (), /) -> Any:
                return new_cursor(self, default_timed).execute(sql, parameters)

            def executemany(self, sql: str, parameters: Any, /) -> Any:
                return new_cursor(self, default_timed).executemany(sql, parameters)

            def executescript(self, script: str, /) -> Any:
                return new_cursor(self, default_timed).executescript(script)

        _named_as(Connection, base)
        self._classes[base] = Connection
        return Connection

    def _timed_cursor(self, base: Any, library: str) -> type:
        """A subclass of the cursor class ``base``, named as it is, whose ``execute``,
        ``executemany`` (and sqlite3's ``executescript``) are timed."""
        if base in self._made:  # type(cursor) of a timed cursor: timing it twice counts twice
            made: type = base
            return made
        found = self._classes.get(base)
        if found is not None:
            return found
        call = self._cursor_call
        namespace: dict[str, Any] = {"__slots__": ()}
        for name in ("execute", "executemany", "executescript"):
            real = getattr(base, name, None)  # the next in line, once: super() costs ~0.2 µs
            if real is not None:
                namespace[name] = _cursor_method(call, library, real)
        timed: type = type(base.__name__, (base,), namespace)
        _named_as(timed, base)
        self._classes[base] = timed
        self._made.add(timed)
        return timed

    def _cursor_call(
        self,
        library: str,
        cursor: Any,
        method: Callable[..., Any],
        statement: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """``method(cursor, statement, *args, **kwargs)``, timed (the arguments passed as
        they came: unpacked once, here, ~0.3 µs less than forwarding them again)."""
        if _timed_above() or not self.ours():
            return method(cursor, statement, *args, **kwargs)
        started = stdlib.perf_counter_ns()
        try:
            result = method(cursor, statement, *args, **kwargs)
        except BaseException as error:
            self.statement_done(library, statement, started, error, None)
            raise
        self.statement_done(library, statement, started, None, cursor.rowcount)
        return result

    # -- psycopg2: C types too, a connection made of a timed subclass -------------------------

    def _patch_psycopg2(self, module: ModuleType) -> None:
        """``psycopg2.connect`` makes its connection of a subclass of the class asked for
        (``connection_factory``), whose ``cursor()`` makes its cursor of a timed subclass of
        the cursor class asked for (``cursor_factory``, the connection's default, or
        ``extensions.cursor``). A connection factory that is not a connection class (a
        function) is left alone."""
        real = module.connect
        base = module.extensions.connection
        timed_connection = self._timed_psycopg2_connection

        def connect(
            dsn: Any = None,
            connection_factory: Any = None,
            cursor_factory: Any = None,
            **kwargs: Any,
        ) -> Any:
            factory = connection_factory or base
            if isinstance(factory, type) and issubclass(factory, base):
                connection_factory = timed_connection(factory, module.extensions.cursor)
            return real(dsn, connection_factory, cursor_factory, **kwargs)

        self.patches.wrap(module, "connect", connect)

    def _timed_psycopg2_connection(self, base: Any, default_cursor: type) -> type:
        found = self._classes.get(base)
        if found is not None:
            return found
        timed_cursor = self._timed_cursor

        class connection(base):  # type: ignore[misc]  # named as psycopg2's
            __slots__ = ()

            def cursor(self, *args: Any, **kwargs: Any) -> Any:
                # cursor(name=None, cursor_factory=None, withhold=False, scrollable=None)
                given = args[1] if len(args) > 1 else kwargs.get("cursor_factory")
                factory = given or self.cursor_factory or default_cursor
                if isinstance(factory, type) and issubclass(factory, default_cursor):
                    timed = timed_cursor(factory, "psycopg2")
                    if len(args) > 1:
                        args = (args[0], timed, *args[2:])
                    else:
                        kwargs["cursor_factory"] = timed
                return super().cursor(*args, **kwargs)

        _named_as(connection, base)
        self._classes[base] = connection
        return connection

    # -- drivers whose cursor (or connection) methods are Python: psycopg 3, asyncpg --------

    def _patch_psycopg(self, module: ModuleType) -> None:
        """``Cursor`` and ``AsyncCursor``: the connection's ``execute`` goes through them."""
        for cls, asynchronous in ((module.Cursor, False), (module.AsyncCursor, True)):
            for name in ("execute", "executemany"):
                self._time_method(cls, name, "psycopg", asynchronous, _cursor_rows)

    def _patch_asyncpg(self, module: ModuleType) -> None:
        """A ``Connection``'s query methods (each runs its statement itself, none through
        another of them)."""
        cls = module.connection.Connection
        for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval", "fetchmany"):
            self._time_method(cls, name, "asyncpg", True, _fetched_rows)

    def _time_method(
        self,
        cls: type,
        name: str,
        library: str,
        asynchronous: bool,
        rows: Callable[[Any, Any], int | None],
    ) -> None:
        """``cls.name(self, statement, ...)`` timed, its rows ``rows(self, result)``."""
        real = cls.__dict__.get(name)
        if real is None:
            return  # another version than the one this knows: left alone
        ours, done = self.ours, self.statement_done

        def method(obj: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
            if _timed_above() or not ours():
                return real(obj, statement, *args, **kwargs)
            started = stdlib.perf_counter_ns()
            try:
                result = real(obj, statement, *args, **kwargs)
            except BaseException as error:
                done(library, statement, started, error, None)
                raise
            done(library, statement, started, None, rows(obj, result))
            return result

        async def coroutine_method(obj: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
            if _timed_above() or not ours():
                return await real(obj, statement, *args, **kwargs)
            started = stdlib.perf_counter_ns()
            try:
                result = await real(obj, statement, *args, **kwargs)
            except BaseException as error:
                done(library, statement, started, error, None)
                raise
            done(library, statement, started, None, rows(obj, result))
            return result

        self.patches.wrap(cls, name, coroutine_method if asynchronous else method)

    # -- SQLAlchemy ---------------------------------------------------------------------------

    def _patch_sqlalchemy(self, module: ModuleType) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        listeners: list[tuple[str, Callable[..., Any]]] = [
            ("before_cursor_execute", self._before),
            ("after_cursor_execute", self._after),
            ("handle_error", self._failed),
        ]
        for name, listener in listeners:
            event.listen(Engine, name, listener)
            self.patches.on_undo(functools.partial(event.remove, Engine, name, listener))

    def _before(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        context = rest[1] if len(rest) > 1 else None
        if context is not None and self.ours():
            self.started(context)

    @staticmethod
    def _started(context: Any) -> None:
        context._hotpath_sql = (stdlib.perf_counter_ns(), _TIMED.set(True))

    def _after(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        context = rest[1] if len(rest) > 1 else None
        started = self._untimed(context)
        if started is not None:
            rowcount = getattr(cursor, "rowcount", None)
            rows = rowcount if isinstance(rowcount, int) else None
            self.statement_done(_library(conn), statement, started, None, rows)

    def _failed(self, exception_context: Any) -> None:
        started = self._untimed(exception_context.execution_context)
        if started is not None:
            error = exception_context.original_exception
            connection = exception_context.connection
            library = _library(connection) if connection is not None else "sqlalchemy"
            self.statement_done(library, exception_context.statement, started, error, None)

    @staticmethod
    def _untimed(context: Any) -> int | None:
        """When the statement of ``context`` started (None: not timed), no longer timed."""
        timed = getattr(context, "_hotpath_sql", None)
        if timed is None:
            return None
        del context._hotpath_sql
        started, token = timed
        try:
            _TIMED.reset(token)
        except ValueError:  # set in another context (a greenlet of async SQLAlchemy)
            _TIMED.set(False)
        return int(started)


def _cursor_method(
    call: Callable[..., Any], library: str, real: Callable[..., Any]
) -> Callable[..., Any]:
    """A timed cursor class's method: ``real`` (the base class's), through ``call``."""

    def method(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return call(library, self, real, statement, args, kwargs)

    return like(method, real)


def _text(statement: object) -> str:
    """A statement that is not a str: bytes decoded, a psycopg ``sql.Composed`` as the text
    it stands for (its ``repr`` would list its literals), anything else by its type."""
    if isinstance(statement, bytes | bytearray):
        return bytes(statement).decode("utf-8", "replace")
    as_string = getattr(statement, "as_string", None)
    if as_string is not None:
        with contextlib.suppress(Exception):
            text = as_string(None)
            if isinstance(text, str):
                return text
    return f"<{type(statement).__name__}>"


def _cursor_rows(cursor: Any, result: Any) -> int | None:
    rowcount = getattr(cursor, "rowcount", None)
    return rowcount if isinstance(rowcount, int) else None


def _fetched_rows(connection: Any, result: Any) -> int | None:
    """asyncpg: the rows a ``fetch`` returned; the others do not say."""
    return len(result) if isinstance(result, list) else None


def _library(connection: Any) -> str:
    dialect = getattr(getattr(connection, "dialect", None), "name", None)
    return f"sqlalchemy ({dialect})" if dialect else "sqlalchemy"


def _named_as(timed: type, base: type) -> None:
    """The timed subclass answers to its base's name: reprs and error messages read as
    without hotpath."""
    timed.__name__ = base.__name__
    timed.__qualname__ = base.__qualname__
    timed.__module__ = base.__module__

"""SQL statements, outbound HTTP endpoints and served routes: the program's operations, one
entry per normalized name.

The three tables have one shape. An entry counts its calls, errors and times, the outcomes
(an SQL statement's "ok" or error class, an HTTP call's or a request's status class), rows
and bytes where the library says, the callers (the program's function and line that made
the call) and, for a route, the operations made inside its requests. A table is capped: past
``max_entries`` names, calls go to one ``<other>`` entry, so what did not fit is counted
too. Every per-entry breakdown is capped the same way, and the log is a ring.

Nothing here holds a parameter, a header or a body: callers give names already normalized
(hotpath/collectors/operations.py), and figures.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import NamedTuple

from hotpath import stdlib
from hotpath.store.capped import CappedTable, copies
from hotpath.store.histogram import Distribution, DistributionReading

OTHER = "<other>"  # the entry of every name past the cap, and of breakdown keys past theirs
MAX_KEYS = 20  # outcomes and callers kept per entry
MAX_INSIDE = 50  # operations inside a route kept per route

Caller = tuple[str, str]  # the program's function (module.qualname) and "file:line" of the call
Inside = tuple[str, str]  # ("sql" or "http", the operation's name)


class Figures(NamedTuple):
    """Calls and their total time: a breakdown's value."""

    calls: int
    time_ns: int


class Done(NamedTuple):
    """One finished operation, as a collector reports it."""

    duration_ns: int
    outcome: str  # "ok", a status class ("2xx"), or the error's class name
    failed: bool  # it raised, or its status is a 5xx
    caller: Caller | None
    status: int | None = None  # an HTTP call's or a request's status code
    rows: int | None = None  # rows the driver says the statement touched
    sent: int | None = None  # bytes
    received: int | None = None
    inside: dict[Inside, Figures] | None = None  # a request's own SQL and HTTP calls


class Call(NamedTuple):
    """A logged call."""

    at_ns: int  # when it ended
    duration_ns: int
    outcome: str
    caller: Caller | None
    status: int | None
    rows: int | None


class OperationReading(NamedTuple):
    id: int
    name: str
    location: str  # where it was first called from (a route: its endpoint), else the kind
    kind: str  # the library: sqlite3, sqlalchemy, http.client, httpx, starlette, flask, django
    calls: int
    errors: int
    time: DistributionReading
    outcomes: Counter[str]
    rows: int
    rows_known: int  # calls whose driver said how many rows
    sent: int
    received: int
    callers: dict[Caller, Figures]
    inside: dict[Inside, Figures]
    first_ns: int  # when its entry was made (the rate's start)


def _add[K](
    table: dict[K, list[int]], key: K, other: K, calls: int, time_ns: int, limit: int
) -> None:
    """Add to a capped breakdown: a key past ``limit`` is counted under ``other``."""
    slot = table.get(key)
    if slot is None:
        if len(table) >= limit:
            key = other
        slot = table.setdefault(key, [0, 0])
    slot[0] += calls
    slot[1] += time_ns


def _figures[K](table: dict[K, list[int]]) -> dict[K, Figures]:
    return {key: Figures(calls, time_ns) for key, (calls, time_ns) in table.items()}


class Operation:
    def __init__(self, entry_id: int, name: str, location: str, kind: str, log_limit: int):
        self.id = entry_id
        self.name = name
        self.location = location
        self.kind = kind
        self.lock = stdlib.new_rlock()  # reentrant: see hotpath/store/__init__.py
        self.calls = 0
        self.errors = 0
        self.time = Distribution()
        self.outcomes: dict[str, int] = {}
        self.rows = 0
        self.rows_known = 0
        self.sent = 0
        self.received = 0
        # Breakdowns as [calls, time_ns] slots, and the log as plain tuples: a statement's
        # bookkeeping is most of what hotpath adds to it (Figures and Call namedtuples made
        # per call cost ~1 µs of an in-memory INSERT's ~2.4 µs here).
        self.callers: dict[Caller, list[int]] = {}
        self.inside: dict[Inside, list[int]] = {}
        self.log: deque[tuple[int, int, str, Caller | None, int | None, int | None]] = deque(
            maxlen=log_limit
        )
        self.first_ns = stdlib.perf_counter_ns()

    def add(self, done: Done, now: int) -> None:
        duration, outcome, failed, caller, status, rows, sent, received, inside = done
        with self.lock:
            self.calls += 1
            self.errors += failed
            self.time.add(duration)
            outcomes = self.outcomes
            if outcome in outcomes:
                outcomes[outcome] += 1
            else:
                kept = outcome if len(outcomes) < MAX_KEYS else OTHER
                outcomes[kept] = outcomes.get(kept, 0) + 1
            if rows is not None and rows >= 0:
                self.rows += rows
                self.rows_known += 1
            if sent:
                self.sent += sent
            if received:
                self.received += received
            if caller is not None:
                _add(self.callers, caller, (OTHER, ""), 1, duration, MAX_KEYS)
            if inside:
                for key, (calls, time_ns) in inside.items():
                    _add(self.inside, key, (key[0], OTHER), calls, time_ns, MAX_INSIDE)
            self.log.append((now, duration, outcome, caller, status, rows))

    def read(self) -> OperationReading:
        return OperationReading(
            self.id,
            self.name,
            self.location,
            self.kind,
            self.calls,
            self.errors,
            self.time.read(),
            Counter(self.outcomes),
            self.rows,
            self.rows_known,
            self.sent,
            self.received,
            _figures(self.callers),
            _figures(self.inside),
            self.first_ns,
        )


class OperationTable(CappedTable[str, Operation]):
    """Entries by normalized name, up to ``max_entries``; then the ``<other>`` entry."""

    def __init__(self, log_limit: int, max_entries: int = 1_000) -> None:
        super().__init__(max_entries)
        self.log_limit = log_limit
        self.other = Operation(max_entries + 1, OTHER, "", "", log_limit)

    def record(self, name: str, location: str, kind: str, done: Done) -> None:
        """File ``done`` under ``name``: an entry made at its first call, with that call's
        ``location`` and ``kind``; past the cap, under ``<other>``."""
        entry = self._items.get(name)  # first: the maker's closure costs ~0.3 µs a call
        if entry is None:
            made = self.get(name, lambda i: Operation(i, name, location, kind, self.log_limit))
            entry = made or self.other
        entry.add(done, stdlib.perf_counter_ns())

    def entries(self) -> list[Operation]:
        """Every entry, ``<other>`` last once a call went there."""
        return self.all() + ([self.other] if self.other.calls else [])

    def read(self) -> list[OperationReading]:
        return copies(self.entries(), Operation.read)

    def calls(self, entry_id: int) -> list[Call]:
        """An entry's logged calls, oldest first."""
        entry = next(e for e in self.entries() if e.id == entry_id)
        with entry.lock:
            return [Call._make(call) for call in entry.log]

"""Child processes: what each one said of itself and its latest figures, merged with the
parent's by function name.

A child sends each function's figures *so far* (cumulative), so the table keeps only the
latest per child and function: a lost batch costs latency, never a double count. Bounded: the last
``MAX_ENDED`` ended children are kept whole; older ones are folded into one entry whose
figures are their sums, as ended threads are.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from hotpath import stdlib
from hotpath.store.cpu import CpuReading
from hotpath.store.functions import (
    ALLOCATION_FIELDS,
    Allocations,
    AllocationTotals,
    FunctionInfo,
    FunctionKind,
    FunctionStats,
    Totals,
)
from hotpath.store.threads import ProcessFigures

MAX_ENDED = 100
Wire = dict[str, Any]  # one function's figures as a batch carries them (JSON)


def to_wire(stats: FunctionStats) -> Wire:
    """One function's figures, as a child sends them."""
    info, totals = stats.info, stats.totals
    return {
        "name": info.name,
        "module": info.module,
        "qualname": info.qualname,
        "filename": info.filename,
        "lineno": info.lineno,
        "kind": info.kind,
        "completed": totals.completed,
        "all_ns": totals.all_ns,
        "min_ns": totals.min_ns,
        "max_ns": totals.max_ns,
        "total_ns": totals.total_ns,
        "child_ns": totals.child_ns,
        "active_ns": totals.active_ns,
        "starts": totals.starts,
        "errors": totals.errors,
        "error_types": dict(totals.error_types),
        "buckets": sorted(totals.buckets.items()),
        "first": totals.first,
        "running": stats.running,
        "running_ns": stats.running_ns,
        "running_own_ns": stats.running_own_ns,
        "running_child_ns": stats.running_child_ns,
        "allocations": None if stats.allocations is None else _allocations_wire(stats.allocations),
    }


def _allocations_wire(allocations: AllocationTotals) -> Wire:
    wire: Wire = {
        name: [getattr(allocations, name).count, getattr(allocations, name).bytes]
        for name in ALLOCATION_FIELDS
    }
    wire["buckets"] = sorted(allocations.buckets.items())
    return wire


def _allocations(wire: Wire | None) -> AllocationTotals | None:
    if wire is None:
        return None
    pairs = {
        name: Allocations(int(wire[name][0]), int(wire[name][1])) for name in ALLOCATION_FIELDS
    }
    buckets = Counter({int(b): int(n) for b, n in wire["buckets"]})
    return AllocationTotals(buckets=buckets, **pairs)


def _totals(wire: Wire) -> Totals:
    totals = Totals(0)
    totals.completed = int(wire["completed"])
    totals.all_ns = int(wire["all_ns"])
    totals.min_ns = int(wire["min_ns"])
    totals.max_ns = int(wire["max_ns"])
    totals.total_ns = int(wire["total_ns"])
    totals.child_ns = int(wire["child_ns"])
    totals.active_ns = int(wire["active_ns"])
    totals.starts = int(wire["starts"])
    totals.errors = int(wire["errors"])
    totals.error_types = Counter({str(k): int(v) for k, v in wire["error_types"].items()})
    totals.buckets = Counter({int(b): int(n) for b, n in wire["buckets"]})
    first = wire["first"]
    totals.first = None if first is None else [int(d) for d in first]
    return totals


@dataclass(slots=True)
class ChildProcess:
    pid: int
    parent_pid: int
    argv: list[str]
    how: str  # fork, spawn, forkserver or subprocess
    started_ns: int
    exit: str | None = None  # None while alive; "code N" or "signal N"
    ended_ns: int | None = None
    batches: int = 0
    functions: dict[str, Wire] = field(default_factory=dict)  # by name, the latest batch
    # What a child sends every few batches besides its functions: its rows of the tools that
    # list them (per tool, per key of its answer), its CPU samples and its process figures.
    rows: dict[str, dict[str, list[Wire]]] = field(default_factory=dict)
    cpu: CpuReading | None = None
    process: ProcessFigures = field(default_factory=ProcessFigures)


@dataclass(slots=True)
class Extras:
    """The parts of a batch a child sends less often than its functions."""

    rows: dict[str, dict[str, list[Wire]]]
    cpu: CpuReading | None
    process: ProcessFigures


class ProcessTable:
    def __init__(self) -> None:
        self._lock = stdlib.new_rlock()
        self._alive: dict[int, ChildProcess] = {}
        self._ended: deque[ChildProcess] = deque()
        self._folded: dict[str, FunctionStats] = {}  # children beyond the kept ones, summed
        self.folded_processes = 0

    def hello(self, pid: int, parent_pid: int, argv: list[str], how: str) -> None:
        with self._lock:
            self._alive[pid] = ChildProcess(pid, parent_pid, argv, how, stdlib.perf_counter_ns())

    def batch(
        self, pid: int, functions: list[Wire], exit: str | None = None, extras: Extras | None = None
    ) -> None:
        """A child's figures so far (they replace its previous batch); ``exit`` when it ended."""
        with self._lock:
            child = self._alive.get(pid)
            if child is None:
                return  # no hello, or already ended: nothing to merge it with
            child.batches += 1
            # What changed since its last batch: replaced by name, in a new dict (views
            # iterate the one they got without the lock).
            child.functions = {**child.functions, **{str(w["name"]): w for w in functions}}
            if extras is not None:
                child.rows, child.cpu, child.process = extras.rows, extras.cpu, extras.process
            if exit is not None:
                self._end(child, exit)

    def lost(self, pid: int, why: str) -> None:
        """The child's connection closed without a last batch: it keeps its latest figures."""
        with self._lock:
            child = self._alive.get(pid)
            if child is not None:
                self._end(child, why)

    def ended_as(self, pid: int, exit: str) -> None:
        """How a child that ended without saying it did ended, found out afterwards."""
        with self._lock:
            for child in self._ended:
                if child.pid == pid:
                    child.exit = exit

    def _end(self, child: ChildProcess, exit: str) -> None:
        child.exit = exit
        child.ended_ns = stdlib.perf_counter_ns()
        del self._alive[child.pid]
        self._ended.append(child)
        while len(self._ended) > MAX_ENDED:
            oldest = self._ended.popleft()
            for wire in oldest.functions.values():
                merged = self._folded.get(str(wire["name"]))
                stats = stats_from_wire(wire, 0)
                if merged is None:
                    self._folded[str(wire["name"])] = stats
                else:
                    _add(merged, stats)
            self.folded_processes += 1

    def contributions(self) -> dict[str, list[tuple[int, int]]]:
        """Per function name, the children that ran it: (pid, calls), folded ones as pid 0."""
        found: dict[str, list[tuple[int, int]]] = {}
        with self._lock:
            for child in [*self._alive.values(), *self._ended]:
                for name, wire in child.functions.items():
                    calls = stats_from_wire(wire, 0).calls
                    found.setdefault(name, []).append((child.pid, calls))
            for name, stats in self._folded.items():
                found.setdefault(name, []).append((0, stats.calls))
        return found

    def children(self) -> list[ChildProcess]:
        with self._lock:
            return [*self._alive.values(), *self._ended]

    def rows(self, tool: str, key: str) -> list[Wire]:
        """The rows the children listed under ``key`` in their answers of ``tool``, each
        marked with its process (children folded away keep their functions only)."""
        return [
            {**row, "pid": child.pid}
            for child in self.children()
            for row in child.rows.get(tool, {}).get(key, [])
        ]

    def cpu_readings(self) -> list[CpuReading]:
        return [child.cpu for child in self.children() if child.cpu is not None]

    def only(self, pid: int) -> ProcessTable | None:
        """A table of this one child (what a ``process`` argument looks at), or None."""
        with self._lock:
            child = self._alive.get(pid) or next((c for c in self._ended if c.pid == pid), None)
            if child is None:
                return None
            table = ProcessTable()
            if child.exit is None:
                table._alive[pid] = child
            else:
                table._ended.append(child)
            return table

    def merged(self, parent: list[FunctionStats]) -> list[FunctionStats]:
        """The parent's functions with every child's summed in, by name; a function only
        children ran is added (with ids after the parent's)."""
        with self._lock:
            if not self._alive and not self._ended and not self._folded:
                return parent  # no child: the parent's figures as they are
            rows = [_copy(stats) for stats in parent]
            # A child's function joins the parent's first of that name (a program may make
            # several functions of one name; the parent's rows stay apart as they were).
            by_name: dict[str, FunctionStats] = {}
            for stats in rows:
                by_name.setdefault(stats.info.name, stats)
            sources = [
                *(wire for child in self._alive.values() for wire in child.functions.values()),
                *(wire for child in self._ended for wire in child.functions.values()),
            ]
            folded = [_copy(stats) for stats in self._folded.values()]
        next_id = max((stats.info.id for stats in parent), default=0) + 1
        for stats in [*(stats_from_wire(wire, 0) for wire in sources), *folded]:
            mine = by_name.get(stats.info.name)
            if mine is None:
                stats.info.id = next_id
                next_id += 1
                by_name[stats.info.name] = stats
                rows.append(stats)
            else:
                _add(mine, stats)
        return rows


def by_name(stats: list[FunctionStats]) -> list[FunctionStats]:
    """Functions with calls, those of one name summed (a program can make several functions
    of one name; the parent keeps a child's figures by name)."""
    named: dict[str, FunctionStats] = {}
    summed: set[str] = set()
    for one in stats:
        if not one.calls:
            continue
        name = one.info.name
        mine = named.get(name)
        if mine is None:
            named[name] = one
            continue
        if name not in summed:  # a copy to add into: the reading's own stays as it was
            mine = named[name] = _copy(mine)
            summed.add(name)
        _add(mine, one)
    return list(named.values())


def stats_from_wire(wire: Wire, function_id: int) -> FunctionStats:
    kind: FunctionKind = wire["kind"]
    info = FunctionInfo(
        id=function_id,
        name=str(wire["name"]),
        module=str(wire["module"]),
        qualname=str(wire["qualname"]),
        filename=str(wire["filename"]),
        lineno=int(wire["lineno"]),
        kind=kind,
        code=None,
        log_limit=0,
    )
    return FunctionStats(
        info,
        _totals(wire),
        int(wire["running"]),
        int(wire["running_ns"]),
        int(wire["running_own_ns"]),
        int(wire["running_child_ns"]),
        _allocations(wire.get("allocations")),
    )


def _copy(stats: FunctionStats) -> FunctionStats:
    return FunctionStats(
        stats.info,
        stats.totals.copy(),
        stats.running,
        stats.running_ns,
        stats.running_own_ns,
        stats.running_child_ns,
        stats.allocations,
    )


def _add(into: FunctionStats, other: FunctionStats) -> None:
    into.totals.merge(other.totals)
    into.running += other.running
    into.running_ns += other.running_ns
    into.running_own_ns += other.running_own_ns
    into.running_child_ns += other.running_child_ns
    if other.allocations is not None:
        into.allocations = _sum_allocations(into.allocations, other.allocations)


def _sum_allocations(mine: AllocationTotals | None, other: AllocationTotals) -> AllocationTotals:
    """A new sum (the parent's own totals are never changed in place)."""
    if mine is None:
        return AllocationTotals(buckets=Counter(other.buckets), **_pairs(other))
    a, b = _pairs(mine), _pairs(other)
    summed = {k: Allocations(a[k].count + b[k].count, a[k].bytes + b[k].bytes) for k in a}
    return AllocationTotals(buckets=mine.buckets + other.buckets, **summed)


def _pairs(allocations: AllocationTotals) -> dict[str, Allocations]:
    return {name: getattr(allocations, name) for name in ALLOCATION_FIELDS}

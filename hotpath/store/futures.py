"""Futures: asyncio tasks, grouped by the coroutine function they run.

The task collector and the recorder write the records; whether a started task is running
right now (or waiting) only the live task knows, so the collector attaches a probe that the
table asks once per ``read``. Views see ``FutureReading``s and ``TaskReading``s: copies.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hotpath import stdlib
from hotpath.store.capped import CappedTable, copies
from hotpath.store.histogram import Distribution, DistributionReading


class TaskRecord:
    """One task. Its figures while running are written by the recorder."""

    __slots__ = (
        "active_ns",
        "created_at",
        "created_ns",
        "done_ns",
        "group",
        "id",
        "name",
        "outcome",
        "polls",
        "state",
    )

    def __init__(
        self, record_id: int, group: FutureGroup, name: str, created_at: str, now: int
    ) -> None:
        self.id = record_id
        self.group = group
        self.name = name
        self.created_at = created_at
        self.created_ns = now
        self.done_ns: int | None = None
        self.state = "pending"  # then "started", then "done", "cancelled" or "failed"
        self.polls = 0  # steps: the first run, then every resume
        self.active_ns = 0  # time the coroutine actually ran
        self.outcome: str | None = None  # result or exception type


@dataclass(slots=True, eq=False)
class FutureGroup:
    id: int
    name: str  # module.qualname of the coroutine function
    location: str
    log_limit: int
    lock: Any = field(default_factory=stdlib.new_rlock)  # reentrant: see store/__init__.py
    created: int = 0
    done: int = 0
    cancelled: int = 0
    failed: int = 0
    collected_unfinished: int = 0  # dropped by the program before they finished
    outcomes: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    active: Distribution = field(default_factory=Distribution)  # running time per task
    wall: Distribution = field(default_factory=Distribution)  # time alive per task
    live: dict[int, TaskRecord] = field(default_factory=dict)  # not finished yet
    log: deque[TaskRecord] = field(init=False)  # recently finished

    def __post_init__(self) -> None:
        self.log = deque(maxlen=self.log_limit)

    def finished(self, record: TaskRecord) -> None:
        """Count a finished task; the caller holds ``lock``."""
        self.live.pop(record.id, None)
        if record.state == "cancelled":
            self.cancelled += 1
        elif record.state == "failed":
            self.failed += 1
        else:
            self.done += 1
        if record.outcome is not None:
            self.outcomes[record.outcome] += 1
        self.polls += record.polls
        self.active.add(record.active_ns)
        self.wall.add((record.done_ns or record.created_ns) - record.created_ns)
        self.log.append(record)


class TaskReading(NamedTuple):
    id: int
    name: str
    state: str  # pending, running, suspended, done, cancelled or failed
    polls: int
    active_ns: int
    created_at: str
    created_ns: int
    done_ns: int | None
    outcome: str | None


class FutureReading(NamedTuple):
    id: int
    name: str
    location: str
    created: int
    done: int
    cancelled: int
    failed: int
    collected_unfinished: int
    outcomes: Counter[str]
    polls: int  # of finished tasks
    active: DistributionReading
    wall: DistributionReading
    live: list[TaskReading]  # not finished yet


Running = Callable[[list[TaskRecord]], set[int]]


class FutureTable(CappedTable[tuple[str, int], FutureGroup]):
    """Task groups by the coroutine function's (file, first line)."""

    def __init__(self, log_limit: int, max_groups: int = 1_000) -> None:
        super().__init__(max_groups)
        self.log_limit = log_limit
        self._task_ids = itertools.count(1)
        self._running: Running = lambda records: set()

    def attach(self, running: Running) -> None:
        """The collector's probe: which of these started tasks (by record id) run now."""
        self._running = running

    def read(self) -> list[FutureReading]:
        return copies(self.all(), self._reading)

    def _reading(self, group: FutureGroup) -> FutureReading:
        return FutureReading(
            id=group.id,
            name=group.name,
            location=group.location,
            created=group.created,
            done=group.done,
            cancelled=group.cancelled,
            failed=group.failed,
            collected_unfinished=group.collected_unfinished,
            outcomes=Counter(group.outcomes),
            polls=group.polls,
            active=group.active.read(),
            wall=group.wall.read(),
            live=self._tasks(list(group.live.values())),
        )

    def tasks(self, group_id: int) -> list[TaskReading]:
        """A group's unfinished and recently finished tasks."""
        group = self.by_id(group_id)
        with group.lock:
            return self._tasks([*group.live.values(), *group.log])

    def _tasks(self, records: list[TaskRecord]) -> list[TaskReading]:
        running = self._running([r for r in records if r.state == "started"])
        return [
            TaskReading(
                id=r.id,
                name=r.name,
                state=(
                    r.state
                    if r.state != "started"
                    else ("running" if r.id in running else "suspended")
                ),
                polls=r.polls,
                active_ns=r.active_ns,
                created_at=r.created_at,
                created_ns=r.created_ns,
                done_ns=r.done_ns,
                outcome=r.outcome,
            )
            for r in records
        ]

    def group(self, file: str, line: int, name: str, location: str) -> FutureGroup | None:
        return self.get((file, line), lambda i: FutureGroup(i, name, location, self.log_limit))

    def next_task_id(self) -> int:
        return next(self._task_ids)  # itertools.count is atomic under the GIL

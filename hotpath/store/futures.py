"""Futures: asyncio tasks, grouped by the coroutine function they run."""

from __future__ import annotations

import threading
import weakref
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from hotpath.store.histogram import add_buckets


class TaskRecord:
    """One task. Its figures while running come from the timing collector's activation."""

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
        "started_ns",
        "state",
        "task",
    )

    def __init__(
        self, record_id: int, group: FutureGroup, name: str, created_at: str, now: int
    ) -> None:
        self.id = record_id
        self.group = group
        self.name = name
        self.created_at = created_at
        self.created_ns = now
        self.started_ns: int | None = None
        self.done_ns: int | None = None
        self.state = "pending"  # then "started", then "done", "cancelled" or "failed"
        self.polls = 0  # steps: the first run, then every resume
        self.active_ns = 0  # time the coroutine actually ran
        self.outcome: str | None = None  # result or exception type
        self.task: weakref.ref[Any] | None = None


@dataclass(slots=True, eq=False)
class FutureGroup:
    id: int
    name: str  # module.qualname of the coroutine function
    location: str
    log_limit: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    created: int = 0
    done: int = 0
    cancelled: int = 0
    failed: int = 0
    collected_unfinished: int = 0  # dropped by the program before they finished
    outcomes: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    active_buckets: Counter[int] = field(default_factory=Counter)
    wall_buckets: Counter[int] = field(default_factory=Counter)
    active_total_ns: int = 0
    wall_total_ns: int = 0
    active_max_ns: int = 0
    wall_max_ns: int = 0
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
        wall = (record.done_ns or record.created_ns) - record.created_ns
        add_buckets(self.active_buckets, [record.active_ns])
        add_buckets(self.wall_buckets, [wall])
        self.active_total_ns += record.active_ns
        self.wall_total_ns += wall
        self.active_max_ns = max(self.active_max_ns, record.active_ns)
        self.wall_max_ns = max(self.wall_max_ns, wall)
        self.log.append(record)


@dataclass(slots=True)
class FutureTable:
    log_limit: int
    max_groups: int = 1_000
    dropped: int = 0
    _groups: dict[tuple[str, int], FutureGroup] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_task_id: int = 0

    def group(self, file: str, line: int, name: str, location: str) -> FutureGroup | None:
        with self._lock:
            found = self._groups.get((file, line))
            if found is None:
                if len(self._groups) >= self.max_groups:
                    self.dropped += 1
                    return None
                found = FutureGroup(len(self._groups) + 1, name, location, self.log_limit)
                self._groups[(file, line)] = found
            return found

    def next_task_id(self) -> int:
        with self._lock:
            self._next_task_id += 1
            return self._next_task_id

    def all(self) -> list[FutureGroup]:
        with self._lock:
            return list(self._groups.values())

"""Per-thread CPU and process figures, written by the sampler, read by views."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from hotpath import stdlib

ENDED_THREADS_KEPT = 100


@dataclass(slots=True)
class ThreadFigures:
    native_id: int
    name: str
    own: bool  # one of hotpath's threads
    status: str
    user_s: float
    system_s: float
    cpu_percent: float  # over the last sample interval
    cpu_percent_max: float
    first_seen_ns: int
    last_seen_ns: int
    cpu_at_first_seen_s: float  # CPU spent before hotpath first saw the thread
    alive: bool = True

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.system_s

    @property
    def cpu_percent_avg(self) -> float:
        """Average CPU use while hotpath watched the thread."""
        seen_ns = self.last_seen_ns - self.first_seen_ns
        spent = self.cpu_s - self.cpu_at_first_seen_s
        return 100.0 * spent / (seen_ns / 1e9) if seen_ns > 0 else 0.0


@dataclass(slots=True)
class ProcessFigures:
    rss_bytes: int = 0
    rss_max_bytes: int = 0
    cpu_percent: float = 0.0
    user_s: float = 0.0
    system_s: float = 0.0
    threads: int = 0
    open_fds: int = 0
    samples: int = 0


@dataclass(slots=True)
class ThreadsReading:
    alive: list[ThreadFigures]
    ended: list[ThreadFigures]
    process: ProcessFigures


class ThreadTable:
    def __init__(self) -> None:
        self._lock = stdlib.new_rlock()
        self._alive: dict[int, ThreadFigures] = {}
        self._ended: deque[ThreadFigures] = deque(maxlen=ENDED_THREADS_KEPT)
        self._process = ProcessFigures()

    def previous(self, native_id: int) -> ThreadFigures | None:
        with self._lock:
            return self._alive.get(native_id)

    def update(self, alive: dict[int, ThreadFigures], process: ProcessFigures) -> None:
        """Replace the live figures; threads that disappeared move to the ended list."""
        with self._lock:
            for native_id, figures in self._alive.items():
                if native_id not in alive:
                    figures.alive = False
                    figures.status = "ended"
                    figures.cpu_percent = 0.0
                    self._ended.append(figures)
            self._alive = alive
            self._process = process

    def read(self) -> ThreadsReading:
        with self._lock:
            return ThreadsReading(
                [replace(f) for f in self._alive.values()],
                [replace(f) for f in self._ended],
                replace(self._process),
            )

"""The child's end of following child processes (issue 17, in progress on this branch): it
reports the child's figures to the parent's receiver (collectors/children.py).

It sends the figures *so far* every 500 ms, at exit, and, in a pool worker, before each
result goes back (``flush``: the pool's ``worker`` and the executor's ``_process_worker`` are
wrapped so that their results queue flushes first), so that when a ``map`` returns in the
parent every worker's calls are already there, even if the pool then terminates its
workers. A child that cannot reach the parent stays unprofiled, silently.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from typing import Any

from hotpath import stdlib
from hotpath.store import Store
from hotpath.store.processes import to_wire

INTERVAL_S = 0.5
CONNECT_TIMEOUT_S = 1.0

_reporter: ChildReporter | None = None  # this process's, when it is a followed child


class ChildReporter:
    def __init__(self, address: str, store: Store, how: str) -> None:
        host, port, self.token = address.rsplit(":", 2)
        self.address = (host, int(port))
        self.store = store
        self.how = how
        self._sock: socket.socket | None = None
        self._lock = stdlib.new_rlock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hotpath-child", daemon=True)

    def connect(self) -> bool:
        try:
            self._sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT_S)
            self._send(
                {
                    "hello": self.token,
                    "pid": os.getpid(),
                    "parent_pid": os.getppid(),
                    "argv": list(sys.argv),
                    "how": self.how,
                }
            )
        except OSError:
            self._close()
            return False
        return self._sock is not None

    def start(self) -> None:
        global _reporter
        _reporter = self
        self._thread.start()
        self.store.mark_own_thread(self._thread)

    def _run(self) -> None:
        while not self._stopping.wait(INTERVAL_S):
            self.send()

    def send(self, exit: str | None = None) -> None:
        """The figures so far (and, last, how the child ended)."""
        with self._lock:
            if self._sock is None:
                return
            stats = self.store.functions.snapshot(self.store.now_ns())
            message: dict[str, Any] = {"batch": [to_wire(s) for s in stats if s.calls]}
            if exit is not None:
                message["exit"] = exit
            self._send(message)

    def finish(self, exit: str) -> None:
        self._stopping.set()
        self.send(exit)
        self._close()

    def _send(self, message: dict[str, Any]) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError:  # the parent is gone: the child runs on, unreported
            self._close()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def flush() -> None:
    """Send this child's figures now, if it is a followed child."""
    reporter = _reporter
    if reporter is not None:
        reporter.send()


class FlushingQueue:
    """A pool worker's results queue whose ``put`` sends the worker's figures first."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def put(self, item: Any) -> None:
        flush()
        self._queue.put(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)

"""The parent's end of following child processes: a loopback socket the program's children
report to, read by a thread of hotpath's own.

Each connection is one child: newline-delimited JSON, first ``{"hello": TOKEN, "pid",
"parent_pid", "argv", "how"}`` (a wrong token closes it), then ``{"batch": [functions...]}``
with the figures so far of the functions that changed, every 500 ms and before each result a
pool worker hands back; every 2 s a batch also carries ``rows``, ``cpu`` and ``process``, and
the last one ``"exit"``. What a connection may hold is bounded: 64 children at once
(more wait in the backlog), 4 MiB per line (a longer one closes that connection and is
noted as a problem).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import selectors
import socket
from dataclasses import fields
from typing import Any

from hotpath import stdlib
from hotpath.collectors import SamplingThread
from hotpath.store import Store
from hotpath.store.cpu import from_wire as cpu_from_wire
from hotpath.store.processes import Extras, stats_from_wire
from hotpath.store.threads import ProcessFigures

THREAD_NAME = "hotpath-children"
MAX_CHILDREN = 64
MAX_LINE = 4 * 2**20
BACKLOG = 16
DRAIN_S = 1.0  # at exit, reading what children sent takes at most this long
EXIT_LOOKS = 5  # a lost child's exit status is looked for this many times, 0.2 s apart


class _Connection:
    __slots__ = ("buffer", "pid", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.pid: int | None = None  # known after a hello with the right token


class ChildReceiver(SamplingThread):
    def __init__(self, store: Store, settings: str | None = None) -> None:
        """``settings``: what a spawned child needs to profile itself (``child.settings``);
        None: only forked children are followed."""
        super().__init__(store, THREAD_NAME)
        self.settings = settings
        self.token = secrets.token_hex(16)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(BACKLOG)
        self._selector = selectors.DefaultSelector()
        host, port = self._listener.getsockname()[:2]
        self.address = f"{host}:{port}:{self.token}"  # what a child needs to report here
        self._lost: dict[int, int] = {}  # children gone without a last batch: looks left
        # Written to at exit, so that the thread's select returns at once: waiting out its
        # timeout cost 200 ms of every run's exit (measured).
        self._wake, self._waker = socket.socketpair()

    def provides(self) -> dict[str, bool]:
        return {"processes": True}

    def install(self) -> None:
        from hotpath.child import load_views
        from hotpath.follow import follow_children

        follow_children(self.address, self.settings)
        os.register_at_fork(before=load_views)
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake, selectors.EVENT_READ, "wake")
        self._start_thread()

    def finish(self) -> str | None:
        """Stop, then read what the children sent and the thread had not read yet: a pool
        worker's figures are sent before its result, but the thread may lag behind the
        program, and the report must have them. At most DRAIN_S of it."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._waker.send(b"x")
        super().finish()
        deadline = stdlib.monotonic() + DRAIN_S
        try:
            while stdlib.monotonic() < deadline:
                events = self._selector.select(timeout=0)
                ready = [key for key, _ in events if isinstance(key.data, _Connection)]
                if not ready:
                    break
                for key in ready:
                    self._read(key.data)
        except (OSError, ValueError):
            pass
        self._look_for_exits()
        self._close_all()
        return None

    def forget_in_child(self) -> None:
        """A forked child must not hold the parent's listening socket."""
        self._close_all()

    def _close_all(self) -> None:
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        self._listener.close()  # (not registered in a run that never started)
        self._wake.close()
        self._waker.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                events = self._selector.select(timeout=0.2)
            except (OSError, ValueError):
                return  # closed under it: the run is over
            for key, _ in events:
                if key.data is None:
                    self._accept()
                elif isinstance(key.data, _Connection):
                    self._read(key.data)
            self._look_for_exits()

    def _look_for_exits(self) -> None:
        """A child killed by a signal (or ended by ``os._exit``) sends no last batch; until
        the program reaps it, the kernel keeps its exit status, which Linux shows in
        /proc/PID/stat. Looked for a few times, then left as "connection closed"."""
        for pid in list(self._lost):
            exit = exit_status(pid)
            self._lost[pid] -= 1
            if exit is not None:
                self.store.processes.ended_as(pid, exit)
            if exit is not None or not self._lost[pid]:
                del self._lost[pid]

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        if len(self._selector.get_map()) > MAX_CHILDREN:
            sock.close()
            self.store.note_problem(f"child processes: more than {MAX_CHILDREN} at once")
            return
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, _Connection(sock))

    def _read(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(connection, "connection closed before its last batch")
            return
        connection.buffer += data
        *lines, connection.buffer = connection.buffer.split(b"\n")
        if len(connection.buffer) > MAX_LINE:
            self.store.note_problem("child processes: a message longer than 4 MiB")
            self._drop(connection, "sent a message too long")
            return
        for line in lines:
            if not self._message(connection, line):
                self._drop(connection, "sent what hotpath cannot read")
                return

    def _message(self, connection: _Connection, line: bytes) -> bool:
        """File one message; False when it is not what a child of hotpath's sends (checked
        whole here, so that nothing malformed reaches the views)."""
        try:
            message: Any = json.loads(line)
            if isinstance(message, dict):
                return self._file(connection, message)
        except (KeyError, TypeError, ValueError):
            pass
        return False

    def _file(self, connection: _Connection, message: dict[str, Any]) -> bool:
        processes = self.store.processes
        if connection.pid is None:
            token = message.get("hello")
            if not isinstance(token, str) or not hmac.compare_digest(token, self.token):
                return False
            connection.pid = int(message["pid"])
            processes.hello(
                connection.pid,
                int(message["parent_pid"]),
                [str(arg) for arg in message["argv"]],
                str(message["how"]),
            )
            return True
        exit = message.get("exit")
        functions = list(message.get("batch", []))
        for wire in functions:
            stats_from_wire(wire, 0)  # raises on anything malformed
        extras = _extras(message) if "rows" in message else None
        processes.batch(connection.pid, functions, None if exit is None else str(exit), extras)
        return True

    def _drop(self, connection: _Connection, why: str) -> None:
        self._selector.unregister(connection.sock)
        connection.sock.close()
        if connection.pid is not None:
            self.store.processes.lost(connection.pid, why)
            if len(self._lost) < MAX_CHILDREN:
                self._lost[connection.pid] = EXIT_LOOKS


def exit_status(pid: int) -> str | None:
    """ "code N" or "signal N" for a child that has ended and not been reaped yet (a zombie),
    as Linux's /proc/PID/stat says (its 52nd field: the status waitpid would return); None
    while it runs, once it is reaped, or where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    if fields[0] != b"Z" or len(fields) < 50:
        return None
    status = int(fields[49])  # field 52; fields[0] is field 3, the state
    return f"signal {status & 0x7F}" if status & 0x7F else f"code {status >> 8 & 0xFF}"


def _extras(message: dict[str, Any]) -> Extras:
    """The rows, CPU samples and process figures of a whole batch; raises (KeyError,
    TypeError, ValueError) on anything of the wrong shape. The rows are what the child's
    views made, kept for the parent's views to list: checked here against the fields the
    views' schemas require of them (the one thing of the views a collector reads), so that a
    view never meets a row it cannot read."""
    from hotpath.views.registry import CHILD_ROWS, child_row_fields

    expected = child_row_fields()
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for tool, keyed in dict(message["rows"]).items():
        rows[str(tool)] = {}
        for key, listed in dict(keyed).items():
            required = expected[str(tool), str(key)]  # KeyError: nothing the views list
            if not isinstance(listed, list) or len(listed) > CHILD_ROWS:
                raise TypeError(f"at most {CHILD_ROWS} rows in a list")
            if not all(isinstance(row, dict) and required <= row.keys() for row in listed):
                raise TypeError("rows are objects with the fields of the view's rows")
            rows[str(tool)][str(key)] = listed
    figures = {f.name: message["process"][f.name] for f in fields(ProcessFigures)}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in figures.values()):
        raise TypeError("process figures are numbers")
    return Extras(rows, cpu_from_wire(message["cpu"]), ProcessFigures(**figures))

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

    def provides(self) -> dict[str, bool]:
        return {"processes": True}

    def install(self) -> None:
        flush_before_results()
        from hotpath.child import load_views, report_exit_codes

        report_exit_codes()
        os.register_at_fork(before=load_views)
        if self.settings is not None:
            from hotpath.child import rewrite_subprocesses

            spawn_through(self.address, self.settings)
            rewrite_subprocesses(self.address, self.settings)
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._start_thread()

    def finish(self) -> str | None:
        """Stop, then read what the children sent and the thread had not read yet: a pool
        worker's figures are sent before its result, but the thread may lag behind the
        program, and the report must have them. At most DRAIN_S of it."""
        super().finish()
        deadline = stdlib.monotonic() + DRAIN_S
        try:
            while stdlib.monotonic() < deadline:
                ready = [k for k, _ in self._selector.select(timeout=0) if k.data is not None]
                if not ready:
                    break
                for key in ready:
                    self._read(key.data)
        except (OSError, ValueError):
            pass
        self._close_all()
        return None

    def forget_in_child(self) -> None:
        """A forked child must not hold the parent's listening socket."""
        self._close_all()

    def _close_all(self) -> None:
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                events = self._selector.select(timeout=0.2)
            except (OSError, ValueError):
                return  # closed under it: the run is over
            for key, _ in events:
                if key.data is None:
                    self._accept()
                else:
                    self._read(key.data)

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


def flush_before_results() -> None:
    """Pool workers made from now on send their figures before each result: the wrappers
    take the place of the functions the pools look up when they start a worker."""
    import concurrent.futures.process as executor
    import multiprocessing.pool as pool

    from hotpath.child import FlushingQueue

    worker: Any = getattr(pool, "worker")  # noqa: B009 - not in typeshed
    process_worker: Any = executor._process_worker
    if getattr(worker, "hotpath", False):
        return  # once per process (a fork inherits it)

    def pool_worker(inqueue: Any, outqueue: Any, *args: Any, **kwargs: Any) -> Any:
        return worker(inqueue, FlushingQueue(outqueue), *args, **kwargs)

    def executor_worker(call_queue: Any, result_queue: Any, *args: Any, **kwargs: Any) -> Any:
        return process_worker(call_queue, FlushingQueue(result_queue), *args, **kwargs)

    # Named as what they replace: spawn pickles a worker's target by module and name.
    for wrapper, replaced in ((pool_worker, worker), (executor_worker, process_worker)):
        wrapper.__module__, wrapper.__qualname__ = replaced.__module__, replaced.__qualname__
        wrapper.__name__ = replaced.__name__
    pool_worker.hotpath = True  # type: ignore[attr-defined]
    setattr(pool, "worker", pool_worker)  # noqa: B010
    setattr(executor, "_process_worker", executor_worker)  # noqa: B010


def spawn_through(address: str, settings: str) -> None:
    """Children that multiprocessing spawns (spawn, and the forkserver's server) start by
    profiling themselves: their ``-c`` command gets a first line that does it. Both go
    through ``multiprocessing.util.spawnv_passfds``, looked up when they start a process;
    nothing in the environment changes."""
    import multiprocessing.util as util

    spawn: Any = util.spawnv_passfds
    if getattr(spawn, "hotpath", False):
        return  # once per process (a fork inherits it)

    def spawnv_passfds(path: Any, args: Any, passfds: Any) -> Any:
        args = list(args)
        at = args.index("-c") + 1 if "-c" in args[:-1] else 0
        # The program's processes, not multiprocessing's resource tracker (it has no code
        # of the program's, and lives until the parent has ended).
        command = args[at] if at else ""
        how = "forkserver" if "multiprocessing.forkserver" in command else "spawn"
        if "spawn_main" in command or how == "forkserver":
            first = (
                f"__import__('hotpath.child').child.follow_spawned("
                f"{address!r}, {settings!r}, {how!r})\n"
            )
            args[at] = first + args[at]
        return spawn(path, args, passfds)

    spawnv_passfds.hotpath = True  # type: ignore[attr-defined]
    setattr(util, "spawnv_passfds", spawnv_passfds)  # noqa: B010

"""How hotpath gets into the program's child processes: the patch points, each applied when
the module it patches is first imported (``imports.after_import``), so that a program that
starts no child pays nothing for them.

- ``multiprocessing.util.spawnv_passfds`` (spawn, and the forkserver's server): the child's
  ``-c`` command gets a first line that follows it (``child.follow_spawned``).
- ``subprocess.Popen._execute_child``: a Python subprocess of this interpreter runs
  ``python -m hotpath child ADDRESS SETTINGS ...`` instead (``child.run_followed``).
- ``multiprocessing.pool.worker``, ``concurrent.futures.process._process_worker``: a pool
  worker sends its figures before each result goes back.
- ``multiprocessing.process.BaseProcess._bootstrap``: a multiprocessing child sends its exit
  code with its last batch.
Forked children need none of these: the session's fork handler follows them.

Every patch is applied once per process (a fork inherits it: the ``hotpath`` mark on the
replacement says so) and changes nothing in the environment.
"""

from __future__ import annotations

import inspect
import os
import sys
from types import ModuleType
from typing import Any

from hotpath import child
from hotpath.imports import after_import


def follow_children(address: str, settings: str | None) -> None:
    """Patch what starts children of this process so that they report to ``address``;
    ``settings`` (``child.settings``): what a spawned child needs, None: forks only."""
    after_import("multiprocessing.pool", _flush_pool_results)
    after_import("concurrent.futures.process", _flush_executor_results)
    after_import("multiprocessing.process", _report_exit_codes)
    if settings is not None:
        after_import("multiprocessing.util", lambda util: _spawn_through(util, address, settings))
        after_import("subprocess", lambda module: _rewrite(module, address, settings))


class FlushingQueue:
    """A pool worker's results queue whose ``put`` sends the worker's figures first."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def put(self, item: Any) -> None:
        child.flush()
        self._queue.put(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


def _replace(module: Any, name: str, wrapper: Any, replaced: Any) -> None:
    """Put ``wrapper`` where ``replaced`` was, named as it (spawn pickles a worker's target
    by module and name), marked as hotpath's."""
    wrapper.__module__, wrapper.__qualname__ = replaced.__module__, replaced.__qualname__
    wrapper.__name__ = replaced.__name__
    wrapper.hotpath = True
    setattr(module, name, wrapper)


def _flush_pool_results(pool: ModuleType) -> None:
    worker: Any = getattr(pool, "worker")  # noqa: B009 - not in typeshed
    if getattr(worker, "hotpath", False):
        return

    def pool_worker(inqueue: Any, outqueue: Any, *args: Any, **kwargs: Any) -> Any:
        return worker(inqueue, FlushingQueue(outqueue), *args, **kwargs)

    _replace(pool, "worker", pool_worker, worker)


def _flush_executor_results(executor: ModuleType) -> None:
    process_worker: Any = getattr(executor, "_process_worker")  # noqa: B009
    if getattr(process_worker, "hotpath", False):
        return

    def executor_worker(call_queue: Any, result_queue: Any, *args: Any, **kwargs: Any) -> Any:
        return process_worker(call_queue, FlushingQueue(result_queue), *args, **kwargs)

    _replace(executor, "_process_worker", executor_worker, process_worker)


def _report_exit_codes(process: ModuleType) -> None:
    """A multiprocessing child returns its exit code from ``_bootstrap`` and then ends with
    ``os._exit``, after its finalizers: the wrapper sends it with the last batch. Patched on
    the class, in the parent (its forks inherit it) and in a spawned child before its process
    object is unpickled."""
    base: Any = getattr(process, "BaseProcess")  # noqa: B009
    bootstrap: Any = base._bootstrap
    if getattr(bootstrap, "hotpath", False):
        return

    def _bootstrap(self: Any, *args: Any, **kwargs: Any) -> Any:
        code = bootstrap(self, *args, **kwargs)
        child.last_batch(f"code {code}")
        return code

    _replace(base, "_bootstrap", _bootstrap, bootstrap)


def _spawn_through(util: ModuleType, address: str, settings: str) -> None:
    """Children that multiprocessing spawns (spawn, and the forkserver's server) start by
    profiling themselves. Both go through ``spawnv_passfds``, looked up when they start a
    process."""
    spawn: Any = getattr(util, "spawnv_passfds")  # noqa: B009
    if getattr(spawn, "hotpath", False):
        return

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

    _replace(util, "spawnv_passfds", spawnv_passfds, spawn)


def _rewrite(subprocess: ModuleType, address: str, settings: str) -> None:
    """Python subprocesses of this interpreter (``[sys.executable, script | -m module, ...]``
    without a shell) run as ``sys.executable -m hotpath child ADDRESS SETTINGS ...``: the
    child runs the program as python would, followed. Any other command is left as it is."""
    popen: Any = getattr(subprocess, "Popen")  # noqa: B009
    execute: Any = popen._execute_child
    if getattr(execute, "hotpath", False):
        return
    parameters = inspect.signature(execute)
    ours = os.path.realpath(sys.executable)

    def _execute_child(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = parameters.bind(self, *args, **kwargs)
        command = bound.arguments.get("args")
        if (
            not bound.arguments.get("shell")
            and bound.arguments.get("executable") is None
            and isinstance(command, list | tuple)
            and len(command) >= 2
            and isinstance(command[0], str)
            and os.path.realpath(command[0]) == ours
            and isinstance(command[1], str)
            and (command[1] == "-m" or not command[1].startswith("-"))
        ):
            bound.arguments["args"] = [
                command[0], "-m", "hotpath", "child", address, settings, *command[1:]
            ]  # fmt: skip
        return execute(*bound.args, **bound.kwargs)

    _replace(popen, "_execute_child", _execute_child, execute)

"""Collectors watch the program and write into the store; they never format text.

Every collector is a ``Collector``: the session keeps them in one list and calls each hook on
all of them, in the list's order, at the same moments of the run. A new collector is one
module (a ``Collector`` that writes into a store table) and one line in ``Session.__init__``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hotpath.store import Store


class Collector:
    """The hooks of a collector's life; each does nothing unless the collector needs it."""

    def provides(self) -> dict[str, bool]:
        """What it adds to ``profiler_status``'s ``collectors``: name -> on."""
        return {}

    def install(self) -> None:
        """Before the program's first line: patch what it watches, start its thread."""

    def start(self) -> None:
        """Last, just before the program's first line, once every collector is installed."""

    def finish(self) -> str | None:
        """At exit, before the report: stop collecting and take the last figures. Returns a
        warning for the user when what was collected is incomplete."""
        return None

    def release(self) -> None:
        """After the report is written: stop anything that still costs the program."""

    def forget_in_child(self) -> None:
        """In a forked child, which hotpath does not profile: undo what ``install`` did,
        without waiting on any lock (a thread of the parent's may have held it)."""


class SamplingThread(Collector):
    """A collector whose work runs in a thread of hotpath's own (marked so in the store):
    ``_run`` loops until ``_stopping`` is set; ``finish`` sets it and waits a little."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _start_thread(self) -> None:
        self._thread.start()
        self.store.mark_own_thread(self._thread)

    def _run(self) -> None:
        raise NotImplementedError

    def finish(self) -> str | None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        return None

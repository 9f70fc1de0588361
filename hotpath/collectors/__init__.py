"""Collectors watch the program and write into the store; they never format text.

Every collector is a ``Collector``: the session keeps them in one list and calls each hook on
all of them, in the list's order, at the same moments of the run. A new collector is one
module (a ``Collector`` that writes into a store table) and one line in ``Session.__init__``.
"""

from __future__ import annotations


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

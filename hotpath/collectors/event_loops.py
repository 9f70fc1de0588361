"""Which asyncio event loops are running, and in which threads.

``asyncio.events._set_running_loop`` is called by every ``run_forever`` (so by ``asyncio.run``
and ``Runner`` too) as a loop starts and stops. Wrapping it, rather than ``run_forever``, keeps
hotpath's frames out of the program's tracebacks: it returns at once and is never on the path
of an exception.
"""

from __future__ import annotations

import asyncio
import weakref
from asyncio import events

from hotpath import stdlib
from hotpath.collectors import Collector


class LoopRegistry(Collector):
    def __init__(self) -> None:
        self._loops: dict[int, weakref.ref[asyncio.AbstractEventLoop]] = {}  # thread ident
        self._original = events._set_running_loop

    def install(self) -> None:
        original = self._original
        loops = self._loops
        get_ident = stdlib.get_ident

        def _set_running_loop(loop: asyncio.AbstractEventLoop | None) -> None:
            original(loop)
            if loop is None:
                loops.pop(get_ident(), None)
            else:
                loops[get_ident()] = weakref.ref(loop)

        events._set_running_loop = _set_running_loop

    def forget_in_child(self) -> None:
        self.uninstall()

    def uninstall(self) -> None:
        events._set_running_loop = self._original

    def running(self) -> list[tuple[int, asyncio.AbstractEventLoop]]:
        """(thread ident, loop) for every loop running now."""
        found = []
        for ident, ref in list(self._loops.items()):
            loop = ref()
            if loop is not None and loop.is_running():
                found.append((ident, loop))
        return found

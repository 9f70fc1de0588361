"""Work hotpath does in its own threads beside a busy program: a lazy import, an answer."""

from __future__ import annotations

import sys
from types import TracebackType

SHORT_SWITCH_INTERVAL = 0.0002  # seconds


class ShortSwitchInterval:
    """While any of hotpath's work is in progress, a short switch interval; else the
    program's own.

    Work in hotpath's thread releases the GIL at every file it reads or packet it sends, then
    waits for the program's thread to give it back: a whole switch interval (5 ms) each time.
    Importing mcp, pydantic and uvicorn took several seconds that way, and an MCP answer
    needs several hand-overs: with the main thread busy, 18.5 ms median and 41 ms p99 at 5 ms,
    against 1.8 and 4.4 ms at 0.2 ms. A short interval while (and only while) hotpath works
    costs the program a little throughput then, and nothing the rest of the time.

    Counted, so that overlapping answers keep it short; put back unless the program changed
    it meanwhile.
    """

    def __init__(self) -> None:
        self._working = 0
        self._previous = 0.0
        self._ours = 0.0

    def __enter__(self) -> None:
        self._working += 1
        if self._working == 1:
            self._previous = sys.getswitchinterval()
            sys.setswitchinterval(min(self._previous, SHORT_SWITCH_INTERVAL))
            # Read back, not the value given: it is kept in microseconds and comes back as
            # 0.00019999999999999998, so comparing with 0.0002 never matched and the interval
            # was never put back (every program questioned over MCP kept 0.2 ms for good).
            self._ours = sys.getswitchinterval()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._working -= 1
        if self._working == 0 and sys.getswitchinterval() == self._ours:
            sys.setswitchinterval(self._previous)

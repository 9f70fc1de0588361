"""Work hotpath does in its own threads beside a busy program, such as a lazy import."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

IMPORT_SWITCH_INTERVAL = 0.0002  # seconds


@contextlib.contextmanager
def short_switch_interval() -> Iterator[None]:
    """Let one of hotpath's threads import libraries while the program keeps the CPU busy.

    An import releases the GIL at every file it reads, and then waits for the program's thread
    to give it back: a whole switch interval (5 ms) each time, or a hand-over at each of an
    event loop's select() calls. mcp, pydantic and uvicorn took several seconds that way (and
    psutil, 20 ms alone, was still importing 2.5 s into an asyncio program when the sampler
    imported it so: it is imported before the program now). A short interval, only while
    importing, makes it well under a second. It is put back unless the program changed it.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, IMPORT_SWITCH_INTERVAL))
    # Read back, not the value given: it is kept in microseconds and comes back as
    # 0.00019999999999999998, so comparing with 0.0002 never matched and the interval was
    # never put back (every program questioned over MCP kept a 0.2 ms interval).
    ours = sys.getswitchinterval()
    try:
        yield
    finally:
        if sys.getswitchinterval() == ours:
            sys.setswitchinterval(previous)

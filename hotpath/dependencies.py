"""The modules hotpath imports while the program runs, and whether the program has its own.

A program may ship a module called ``rich`` or ``starlette`` beside its script. Python finds
it first, and so would hotpath's own imports, with two bad outcomes: hotpath breaks, or worse,
hotpath imports the real library first and the program then gets it instead of its own
module. So when the program's folder holds a module of the same name, hotpath does without the
piece that needs it and says so.

The lists were taken from ``sys.modules`` after running each piece (tests/test_hostile.py checks
that the server's list still covers what it imports).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable

SERVER = frozenset(
    {
        "annotated_types", "anyio", "click", "cryptography", "h11", "httpcore2", "httpx2",
        "idna", "mcp", "mcp_types", "opentelemetry", "pydantic", "pydantic_core",
        "python_multipart", "sniffio", "sse_starlette", "starlette", "truststore",
        "typing_extensions", "typing_inspection", "uvicorn",
    }
)  # fmt: skip
SAMPLER = frozenset({"psutil"})
REPORT = frozenset({"rich", "markdown_it", "mdurl", "pygments"})


def shadowed(folder: str, names: Iterable[str]) -> list[str]:
    """Which of ``names`` the program's folder provides itself (a plain directory does not:
    a namespace package loses to the installed one)."""
    found = []
    for name in sorted(names):
        base = os.path.join(folder, name)
        if (
            os.path.isfile(base + ".py")
            or os.path.isfile(os.path.join(base, "__init__.py"))
            or glob.glob(glob.escape(base) + ".*.so")
        ):
            found.append(name)
    return found

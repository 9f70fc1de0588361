"""hotpath: a profiler that needs no code changes and answers an agent's questions live.

This module stays importable on any Python 3 and imports nothing heavy: programs import it for
the gauge API whether or not they run under ``hotpath run``.
"""

import sys

__version__ = "0.1.0"

MIN_PYTHON = (3, 12)


def require_supported_python() -> None:
    """Exit with one line and code 2 on a Python without sys.monitoring."""
    if sys.version_info < MIN_PYTHON:
        major, minor = sys.version_info[:2]
        sys.stderr.write(
            f"hotpath: needs Python 3.12 or newer (sys.monitoring); this is {major}.{minor}\n"
        )
        sys.exit(2)

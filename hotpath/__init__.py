"""hotpath: a profiler that needs no code changes and answers an agent's questions live.

This module stays importable on any Python 3 and imports nothing heavy: programs import it for
the gauge API whether or not they run under ``hotpath run``.
"""

import sys
from typing import TYPE_CHECKING

from hotpath.no_gauge import NO_GAUGE, NoGauge

if TYPE_CHECKING:
    from hotpath.store.gauges import Gauge, GaugeTable

__version__ = "0.1.0"
DISTRIBUTION = "hotpath-profiler"  # its name on PyPI: `pip install hotpath-profiler`

MIN_PYTHON = (3, 12)
__all__ = [
    "DISTRIBUTION", "MIN_PYTHON", "NO_GAUGE", "NoGauge", "__version__", "gauge",
    "require_supported_python",
]  # fmt: skip


def require_supported_python() -> None:
    """Exit with one line and code 2 on a Python without sys.monitoring."""
    if sys.version_info < MIN_PYTHON:
        major, minor = sys.version_info[:2]
        sys.stderr.write(
            f"hotpath: needs Python 3.12 or newer (sys.monitoring); this is {major}.{minor}\n"
        )
        sys.exit(2)


# Set by `hotpath run` to the store's gauge table before the program starts.
_gauges: "GaugeTable | None" = None


def gauge(name: str) -> "Gauge | NoGauge":
    """A named value the program reports: ``hotpath.gauge("queue_depth").set(42).inc().dec(2)``.

    Outside ``hotpath run`` it returns a shared object whose methods do nothing.
    """
    table = _gauges
    if table is None:
        return NO_GAUGE
    return table.gauge(name)

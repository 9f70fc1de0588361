"""Short human strings beside the raw numbers."""

from __future__ import annotations

from datetime import UTC, datetime


def duration(ns: float) -> str:
    if ns >= 60e9:
        minutes, seconds = divmod(ns / 1e9, 60)
        return f"{int(minutes)}m {seconds:04.1f}s"
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.0f} ns"


def size(count: float) -> str:
    for scale, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if abs(count) >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{count:.0f} B"


def timestamp(epoch_ns: int) -> str:
    moment = datetime.fromtimestamp(epoch_ns / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def percentile_key(q: float) -> str:
    return f"p{q:g}"

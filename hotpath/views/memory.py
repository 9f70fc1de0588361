"""Live memory by allocation site (``memory_sites``), from the memory table's snapshots, and
the switch that asks for them (``trace_memory``)."""

from __future__ import annotations

from hotpath.store import Store
from hotpath.views import schema, units
from hotpath.views.common import DEFAULT_LIMIT, JSON
from hotpath.views.schema import BOOL, INT, NUM, STR, maybe, obj

SITES_OFF = (
    "live memory by site is not being traced: call trace_memory to start tracemalloc now "
    "(it slows the program 3-7x while on), or run with --alloc-sites to trace from the start"
)


def _function_ranges(store: Store) -> dict[str, list[tuple[int, int, str]]]:
    """file -> (first line, last line, name) of every timed function, innermost first."""
    ranges: dict[str, list[tuple[int, int, str]]] = {}
    for info in store.functions.infos():
        if info.code is None:
            continue
        lines = [line for _, _, line in info.code.co_lines() if line is not None]
        if lines:
            ranges.setdefault(info.filename, []).append((min(lines), max(lines), info.name))
    for spans in ranges.values():
        spans.sort(key=lambda span: span[1] - span[0])
    return ranges


def take_snapshot(store: Store) -> None:
    """What the tool does before answering: a snapshot now, when tracing."""
    store.memory.take_snapshot()


def memory_sites(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    """Live memory by allocation site in the newest snapshot, the sites that grew most since
    tracing started first."""
    baseline, snapshots = store.memory.snapshots()
    tracing = store.memory.tracing()
    if baseline is None or not snapshots:
        return {"tracing": tracing, "snapshots": 0, "sites": [], "note": SITES_OFF}
    last = snapshots[-1]
    previous = snapshots[-2] if len(snapshots) > 1 else baseline
    ranges = _function_ranges(store)

    def grown(site: tuple[str, int]) -> int:
        return last.sites[site][0] - baseline.sites.get(site, (0, 0))[0]

    order = sorted(last.sites, key=lambda site: (grown(site), last.sites[site][0]), reverse=True)
    rows = []
    for site in order[:limit]:
        file, line = site
        size_bytes, blocks = last.sites[site]
        rising = 0
        for older, newer in zip(snapshots[-2::-1], snapshots[::-1], strict=False):
            if newer.sites.get(site, (0, 0))[0] <= older.sites.get(site, (0, 0))[0]:
                break
            rising += 1
        rows.append(
            {
                "site": f"{file}:{line}",
                "function": next(
                    (name for low, high, name in ranges.get(file, []) if low <= line <= high),
                    None,
                ),
                "live_bytes": size_bytes,
                "live": units.size(size_bytes),
                "blocks": blocks,
                "growth_since_start_bytes": grown(site),
                "growth_since_previous_bytes": size_bytes - previous.sites.get(site, (0, 0))[0],
                "rising_snapshots": rising,
            }
        )
    return {
        "tracing": tracing,
        "sorted_by": "growth_since_start_bytes",
        "snapshots": len(snapshots),
        "tracing_started": units.timestamp(store.epoch_ns(baseline.at_ns)),
        "covers_s": round((last.at_ns - baseline.at_ns) / 1e9, 1),
        "traced_bytes": last.traced_bytes,
        "traced": units.size(last.traced_bytes),
        "traced_growth_bytes": last.traced_bytes - baseline.traced_bytes,
        "snapshot_pause_ms": round(last.took_ns / 1e6, 1),
        "sites": rows,
    }


SITE_ROW = obj(
    site=STR,
    function=maybe(STR),
    live_bytes=INT,
    live=STR,
    blocks=INT,
    growth_since_start_bytes=INT,
    growth_since_previous_bytes=INT,
    rising_snapshots=INT,
)
MEMORY_SITES = schema.one_of(
    obj(tracing=BOOL, snapshots={"const": 0}, sites={"type": "array", "maxItems": 0}, note=STR),
    obj(
        tracing=BOOL,
        sorted_by=STR,
        snapshots=INT,
        tracing_started=STR,
        covers_s=NUM,
        traced_bytes=INT,
        traced=STR,
        traced_growth_bytes=INT,
        snapshot_pause_ms=NUM,
        sites=schema.array(SITE_ROW),
    ),
)


def trace_memory(store: Store, on: bool = True) -> JSON:
    """Start or stop tracing live memory by site."""
    if on:
        started = store.memory.start_tracing()
        note = (
            "tracing started; call memory_sites later to see which sites grew since now"
            if started
            else "already tracing (started earlier, or by the program itself)"
        )
    else:
        stopped = store.memory.stop_tracing()
        note = (
            "tracing stopped; memory_sites keeps answering from the last snapshot"
            if stopped
            else "hotpath was not tracing (tracing the program started itself is left on)"
        )
    return {"tracing": store.memory.tracing(), "note": note}


TRACE_MEMORY = obj(tracing=BOOL, note=STR)

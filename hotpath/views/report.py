"""The report printed when the program ends, rendered from the same JSON shapes as the tools."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO

from rich.console import Console
from rich.table import Table

from hotpath.views.shapes import JSON
from hotpath.views.units import duration, size

NAME_WIDTH = 48  # a longer name folds (at any character: names have no spaces to wrap at)


def _table(
    title: str, headers: Sequence[str], rows: list[list[str]], caption: str | None = None
) -> Table:
    """The first column is a name, folded only when it cannot fit: it is given the width of
    the longest name (up to NAME_WIDTH) before the figures, right-aligned, take theirs."""
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        caption=caption,
        caption_justify="left",
    )
    longest = max((len(row[0]) for row in rows), default=len(headers[0]))
    table.add_column(headers[0], overflow="fold", min_width=min(longest, NAME_WIDTH), ratio=1)
    for header in headers[1:]:
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


SORT_TITLES = {
    "self_ns": "self time",
    "total_ns": "total time",
    "calls": "calls",
    "avg_ns": "average time",
    "p99": "P99",
}


def _functions(section: JSON, percentile_keys: list[str], limit: int, width: int) -> Table | str:
    rows = section["functions"][:limit]
    if not rows:
        return str(section.get("note", "no profiled function was called"))
    percentiles = [k.upper() for k in percentile_keys]
    headers = ["Function", "Calls", "Avg", *percentiles, "Self", "Active", "Total", "% Self"]
    cells = [
        [
            row["name"],
            f"{row['calls']:,}",
            row["avg"] or "-",
            *(_duration_or_dash(row["percentiles_ns"][key]) for key in percentile_keys),
            row["self"],
            row["active"] or "-",
            row["total"],
            f"{row['percent_self']:.1f}%",
        ]
        for row in rows
    ]
    # What goes first when the terminal is too narrow: a column nobody in this table needs,
    # then the average and the lower percentiles; Self and % Self always stay.
    droppable = ["Active"] if all(row["active"] is None for row in rows) else []
    droppable += ["Avg", *percentiles[:-1], "Active", percentiles[-1], "Calls", "Total"]
    headers, cells, dropped = _fit(headers, cells, width, droppable)
    caption = (
        "Self: time in the function itself, not in profiled functions it called. % Self: its "
        "share of the self time of all profiled functions. Total: callees included, each "
        "concurrent call counted (it can pass the wall time). Active: time a generator or "
        "coroutine ran, not suspended."
    )
    if dropped:
        caption += f" Left out for the width: {', '.join(dropped)} (--output has them all)."
    return _table(
        f"functions, by {SORT_TITLES[section['sorted_by']]} "
        f"({len(rows)}/{section['total_functions']})",
        headers,
        cells,
        caption=caption,
    )


def _fit(
    headers: list[str], rows: list[list[str]], width: int, droppable: list[str]
) -> tuple[list[str], list[list[str]], list[str]]:
    """Leave columns out, in ``droppable``'s order, until the table fits in ``width``."""

    def needed() -> int:
        name = min(max(len(row[0]) for row in rows), NAME_WIDTH)
        figures = [
            max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)
        ]
        return name + sum(figures[1:]) + 3 * len(headers) + 1

    dropped: list[str] = []
    for header in droppable:
        if needed() <= width:
            break
        if header in headers:
            index = headers.index(header)
            headers = headers[:index] + headers[index + 1 :]
            rows = [row[:index] + row[index + 1 :] for row in rows]
            dropped.append(header)
    return headers, rows, dropped


def _allocations(section: JSON, limit: int) -> Table:
    rows = section["functions"][:limit]
    return _table(
        f"allocations, by self allocated ({len(rows)}/{section['total_functions']})"
        f" | {section['counted_allocations']:,} counted, {size(section['counted_bytes'])}",
        ["Function", "Calls", "Allocs", "Allocated", "Self allocs", "Self", "Avg/call", "% Self"],
        [
            [
                row["name"],
                f"{row['calls']:,}",
                f"{row['allocations']:,}",
                row["allocated"],
                f"{row['self_allocations']:,}",
                row["self_allocated"],
                _size_or_dash(row["avg_allocated_bytes"]),
                f"{row['percent_self_allocated']:.2f}%",
            ]
            for row in rows
        ],
    )


def _memory_sites(section: JSON, limit: int) -> Table:
    rows = section["sites"][:limit]
    return _table(
        f"live memory by site, by growth since tracing started ({len(rows)})"
        f" | traced {section['traced']}",
        ["Site", "Function", "Live", "Blocks", "Growth"],
        [
            [
                row["site"],
                row["function"] or "-",
                row["live"],
                f"{row['blocks']:,}",
                size(row["growth_since_start_bytes"]),
            ]
            for row in rows
        ],
    )


def _channels(section: JSON, limit: int) -> Table:
    rows = section["channels"][:limit]
    return _table(
        f"channels, by send rate ({len(rows)}/{section['total_channels']})",
        ["Channel", "Kind", "Capacity", "Sent", "Received", "Max size", "Avg delay", "State"],
        [
            [
                f"{row['name']} ({row['location']})"
                if row["name"] != row["location"]
                else row["name"],
                row["kind"],
                row["capacity"],
                f"{row['sent']:,}",
                f"{row['received']:,}",
                f"{row['max_queue_size']:,}",
                _duration_or_dash(row["delay"]["avg_ns"]),
                row["state"],
            ]
            for row in rows
        ],
    )


def _futures(section: JSON, limit: int) -> Table:
    rows = section["futures"][:limit]
    return _table(
        f"futures (asyncio tasks), unfinished first ({len(rows)}/{section['total_groups']})",
        ["Coroutine", "Tasks", "Pending", "Suspended", "Done", "Cancelled", "Failed", "Polls"],
        [
            [
                row["name"],
                f"{row['calls']:,}",
                f"{row['states']['pending'] + row['states']['running']:,}",
                f"{row['states']['suspended']:,}",
                f"{row['states']['done']:,}",
                f"{row['states']['cancelled']:,}",
                f"{row['states']['failed']:,}",
                f"{row['polls']:,}",
            ]
            for row in rows
        ],
    )


def _streams(section: JSON, limit: int) -> Table:
    rows = section["streams"][:limit]
    return _table(
        f"streams (async generators) ({len(rows)}/{section['total_streams']})",
        ["Generator", "Instances", "Items", "Items/s", "Exhausted", "Closed early", "Active"],
        [
            [
                row["name"],
                f"{row['instances']:,}",
                f"{row['items']:,}",
                f"{row['items_per_s_lifetime']:,}",
                f"{row['exhausted']:,}",
                f"{row['closed_early']:,}",
                f"{row['active']:,}",
            ]
            for row in rows
        ],
    )


def _threads(section: JSON, limit: int) -> Table:
    process = section["process"]
    everyone = [*section["threads"], *section["ended_threads"]]
    # At exit the last interval says little: rank by CPU over the whole run.
    rows = sorted(everyone, key=lambda row: row["cpu_total_s"], reverse=True)[:limit]
    return _table(
        f"threads, by total CPU ({len(rows)}/{len(everyone)})"
        f" | RSS {process['rss']} (max {process['rss_max']})",
        ["Thread", "Status", "CPU %", "Max %", "Avg %", "CPU user", "CPU sys"],
        [
            [
                row["name"] + (" (hotpath)" if row["hotpath_own"] else ""),
                row["status"],
                f"{row['cpu_percent']:.1f}",
                f"{row['cpu_percent_max']:.1f}",
                f"{row['cpu_percent_avg']:.1f}",
                f"{row['cpu_user_s']:.2f} s",
                f"{row['cpu_system_s']:.2f} s",
            ]
            for row in rows
        ],
    )


def _gauges(section: JSON, limit: int) -> Table:
    rows = section["gauges"][:limit]

    def shown(name: str, value: float | None) -> str:
        if value is None:
            return "-"
        return size(value) if name.endswith("_bytes") else f"{value:,}"

    return _table(
        f"gauges ({len(rows)}/{section['total_gauges']})",
        ["Gauge", "Value", "Min", "Max", "Updates"],
        [
            [
                row["name"],
                shown(row["name"], row["value"]),
                shown(row["name"], row["min"]),
                shown(row["name"], row["max"]),
                f"{row['updates']:,}",
            ]
            for row in rows
        ],
    )


def _duration_or_dash(ns: float | None) -> str:
    """A figure that does not exist yet (no finished call, no matched receive) reads "-"."""
    return "-" if ns is None else duration(ns)


def _size_or_dash(count: float | None) -> str:
    return "-" if count is None else size(count)


def _width(stream: IO[str]) -> int:
    """The terminal's width; a pipe or a log file gets a wide report (rich would assume 80
    columns and fold every name)."""
    try:
        if stream.isatty():
            return max(os.get_terminal_size(stream.fileno()).columns, 60)
    except (OSError, ValueError):
        pass
    return 160


def render(report: JSON, stream: IO[str], limit: int) -> None:
    status = report["status"]
    collectors = [name for name, on in status["collectors"].items() if on]
    width = _width(stream)
    console = Console(file=stream, highlight=False, width=width)
    console.print(
        f"[bold]\\[hotpath][/bold] {status['uptime']} | {', '.join(collectors)} "
        f"| {status['recorder']} recorder"
    )
    console.print(_functions(report["functions_timing"], status["percentiles"], limit, width))
    if report["functions_alloc"].get("recorded"):
        console.print(_allocations(report["functions_alloc"], limit))
    if report["memory_sites"]["sites"]:
        console.print(_memory_sites(report["memory_sites"], limit))
    for key, section in (("channels", _channels), ("futures", _futures), ("streams", _streams)):
        if report[key][key]:
            console.print(section(report[key], limit))
    console.print(_threads(report["threads"], limit))
    if report["gauges"]["gauges"]:
        console.print(_gauges(report["gauges"], limit))

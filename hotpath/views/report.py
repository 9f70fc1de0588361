"""The report printed when the program ends, rendered from the JSON report (the tools' own
answers): the functions table, which fits its columns to the terminal, then one ``Section``
per other table, each a title and a cell maker per column."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from rich.console import Console
from rich.table import Table

from hotpath.views.common import JSON
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


Cell = Callable[[JSON], str]


@dataclass(frozen=True, slots=True)
class Section:
    """A table of the report, made from one section of the JSON report: titled
    ``title (shown/total) | note``, with one cell maker per column. Its rows are the
    section's list named like the section unless ``rows`` orders them otherwise; it is
    printed when it has rows unless ``shown`` says otherwise."""

    key: str
    title: str
    total: Callable[[JSON], int] | None  # None: the title says how many are shown only
    columns: tuple[tuple[str, Cell], ...]
    rows: Callable[[JSON], list[JSON]] | None = None
    note: Callable[[JSON], str] | None = None
    shown: Callable[[JSON], bool] | None = None

    def table(self, section: JSON, limit: int) -> Table | None:
        everything = self.rows(section) if self.rows else section[self.key]
        if not (self.shown(section) if self.shown else everything):
            return None
        rows = everything[:limit]
        counts = f"{len(rows)}/{self.total(section)}" if self.total else f"{len(rows)}"
        note = self.note(section) if self.note else ""
        title = f"{self.title} ({counts})" + (f" | {note}" if note else "")
        columns = self.columns
        if any("pid" in row for row in rows) and self.key != "processes":  # with_children
            columns = (("PID", _field("pid")), *columns)
        headers = [header for header, _ in columns]
        return _table(title, headers, [[cell(row) for _, cell in columns] for row in rows])


def _site(row: JSON) -> str:
    """A site's name, with where it is unless the name is where it is."""
    return f"{row['name']} ({row['location']})" if row["name"] != row["location"] else row["name"]


def _field(key: str) -> Cell:
    return lambda row: str(row[key])


def _count(key: str) -> Cell:
    return lambda row: f"{row[key]:,}"


def _total(key: str) -> Callable[[JSON], int]:
    return lambda section: int(section[key])


def _state_count(*states: str) -> Cell:
    return lambda row: f"{sum(row['states'][state] for state in states):,}"


def _gauge_value(key: str) -> Cell:
    def shown(row: JSON) -> str:
        value = row[key]
        if value is None:
            return "-"
        return size(value) if row["name"].endswith("_bytes") else f"{value:,}"

    return shown


def _by_cpu(section: JSON) -> list[JSON]:
    # At exit the last interval says little: rank by CPU over the whole run.
    everyone = [*section["threads"], *section["ended_threads"]]
    return sorted(everyone, key=lambda row: row["cpu_total_s"], reverse=True)


def _outcomes(row: JSON) -> str:
    return " ".join(f"{outcome} {count:,}" for outcome, count in row["outcomes"].items())


_OPERATION_COLUMNS: tuple[tuple[str, Cell], ...] = (
    ("Calls", _count("calls")),
    ("Errors", _count("errors")),
    ("Total", _field("time_total")),
    ("Avg", lambda row: _duration_or_dash(row["time"]["avg_ns"])),
    ("Max", lambda row: _duration_or_dash(row["time"]["max_ns"])),
)


SECTIONS = (
    Section(
        "functions_cpu",
        "CPU by function (sampled)",
        _total("total_functions"),
        (
            ("Function", _field("name")),
            ("Self", lambda row: duration(row["self_cpu_ns"])),
            ("% Self", lambda row: f"{row['percent_self']:.1f}%"),
            ("Total", lambda row: duration(row["total_cpu_ns"])),
            ("% Total", lambda row: f"{row['percent_total']:.1f}%"),
            ("Samples", _count("total_samples")),
        ),
        rows=lambda section: section["functions"],
        note=lambda s: f"all code, {s['samples']:,} samples, {s['cpu']} of CPU",
        shown=lambda section: bool(section.get("recorded") and section["functions"]),
    ),
    Section(
        "functions_alloc",
        "allocations, by self allocated",
        _total("total_functions"),
        (
            ("Function", _field("name")),
            ("Calls", _count("calls")),
            ("Allocs", _count("allocations")),
            ("Allocated", _field("allocated")),
            ("Self allocs", _count("self_allocations")),
            ("Self", _field("self_allocated")),
            ("Avg/call", lambda row: _size_or_dash(row["avg_allocated_bytes"])),
            ("% Self", lambda row: f"{row['percent_self_allocated']:.2f}%"),
        ),
        rows=lambda section: section["functions"],
        note=lambda s: f"{s['counted_allocations']:,} counted, {size(s['counted_bytes'])}",
        shown=lambda section: bool(section.get("recorded")),
    ),
    Section(
        "memory_sites",
        "live memory by site, by growth since tracing started",
        None,
        (
            ("Site", _field("site")),
            ("Function", lambda row: row["function"] or "-"),
            ("Live", _field("live")),
            ("Blocks", _count("blocks")),
            ("Growth", lambda row: size(row["growth_since_start_bytes"])),
        ),
        rows=lambda section: section["sites"],
        note=lambda section: f"traced {section['traced']}",
    ),
    Section(
        "channels",
        "channels, by send rate",
        _total("total_channels"),
        (
            ("Channel", _site),
            ("Kind", _field("kind")),
            ("Capacity", _field("capacity")),
            ("Sent", _count("sent")),
            ("Received", _count("received")),
            ("Max size", _count("max_queue_size")),
            ("Avg delay", lambda row: _duration_or_dash(row["delay"]["avg_ns"])),
            ("State", _field("state")),
        ),
    ),
    Section(
        "futures",
        "futures (asyncio tasks), unfinished first",
        _total("total_groups"),
        (
            ("Coroutine", _field("name")),
            ("Tasks", _count("calls")),
            ("Pending", _state_count("pending", "running")),
            ("Suspended", _state_count("suspended")),
            ("Done", _state_count("done")),
            ("Cancelled", _state_count("cancelled")),
            ("Failed", _state_count("failed")),
            ("Polls", _count("polls")),
        ),
    ),
    Section(
        "streams",
        "streams (async generators)",
        _total("total_streams"),
        (
            ("Generator", _field("name")),
            ("Instances", _count("instances")),
            ("Items", _count("items")),
            ("Items/s", _count("items_per_s_lifetime")),
            ("Exhausted", _count("exhausted")),
            ("Closed early", _count("closed_early")),
            ("Active", _count("active")),
        ),
    ),
    Section(
        "locks",
        "locks, by total wait",
        _total("total_locks"),
        (
            ("Lock", _site),
            ("Kind", _field("kind")),
            ("Acquired", _count("acquisitions")),
            ("Contended", _count("contended")),
            ("Wait", _field("wait_total")),
            ("Avg wait", lambda row: _duration_or_dash(row["wait"]["avg_ns"])),
            ("Avg hold", lambda row: _duration_or_dash(row["hold"]["avg_ns"])),
            ("Max hold", lambda row: _duration_or_dash(row["hold"]["max_ns"])),
            ("Waits", lambda row: f"{row['cond_waits']['count']:,}"),
            ("State", _field("state")),
        ),
    ),
    Section(
        "sql",
        "SQL statements, by total time",
        _total("total_statements"),
        (
            ("Statement", _field("name")),
            *_OPERATION_COLUMNS,
            ("Caller", lambda row: row["callers"][0]["line"] if row["callers"] else "-"),
        ),
        rows=lambda section: section["statements"],
    ),
    Section(
        "http",
        "HTTP calls, by total time",
        _total("total_endpoints"),
        (("Endpoint", _field("name")), *_OPERATION_COLUMNS, ("Outcomes", _outcomes)),
        rows=lambda section: section["endpoints"],
    ),
    Section(
        "routes",
        "routes served, by total time",
        _total("total_routes"),
        (
            ("Route", _field("name")),
            *_OPERATION_COLUMNS,
            ("Outcomes", _outcomes),
            ("In SQL/HTTP", _field("inside_time")),
        ),
    ),
    Section(
        "threads",
        "threads, by total CPU",
        lambda section: len(_by_cpu(section)),
        (
            ("Thread", lambda row: row["name"] + (" (hotpath)" if row["hotpath_own"] else "")),
            ("Status", _field("status")),
            ("CPU %", lambda row: f"{row['cpu_percent']:.1f}"),
            ("Max %", lambda row: f"{row['cpu_percent_max']:.1f}"),
            ("Avg %", lambda row: f"{row['cpu_percent_avg']:.1f}"),
            ("CPU user", lambda row: f"{row['cpu_user_s']:.2f} s"),
            ("CPU sys", lambda row: f"{row['cpu_system_s']:.2f} s"),
        ),
        rows=_by_cpu,
        note=lambda s: f"RSS {s['process']['rss']} (max {s['process']['rss_max']})",
        shown=lambda section: True,
    ),
    Section(
        "processes",
        "processes profiled",
        lambda section: int(section["total_processes"]) + int(section["folded_processes"]),
        (
            ("PID", _field("pid")),
            ("How", _field("how")),
            ("Exit", lambda row: row["exit"] or row["state"]),
            ("Calls", _count("calls")),
            ("CPU", lambda row: "-" if row["cpu_s"] is None else f"{row['cpu_s']:.2f}s"),
            ("RSS", lambda row: row["rss"] or "-"),
            ("Command", lambda row: " ".join(row["argv"])),
        ),
        note=lambda s: (
            f"{s['folded_processes']} ended ones folded" if s["folded_processes"] else ""
        ),
        shown=lambda section: len(section["processes"]) > 1,
    ),
    Section(
        "gauges",
        "gauges",
        _total("total_gauges"),
        (
            ("Gauge", _field("name")),
            ("Value", _gauge_value("value")),
            ("Min", _gauge_value("min")),
            ("Max", _gauge_value("max")),
            ("Updates", _count("updates")),
        ),
    ),
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
    for section in SECTIONS:
        table = section.table(report[section.key], limit)
        if table is not None:
            console.print(table)

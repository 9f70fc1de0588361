"""The report printed when the program ends, rendered from the same JSON shapes as the tools."""

from __future__ import annotations

import shutil
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from hotpath.views.shapes import JSON
from hotpath.views.units import duration


def _functions_table(section: JSON, percentile_keys: list[str], limit: int) -> Table:
    rows = section["functions"][:limit]
    table = Table(
        title=f"functions, by total time ({len(rows)}/{section['total_functions']})",
        title_justify="left",
        title_style="bold",
    )
    table.add_column("Function", overflow="fold", ratio=1)
    for header in ["Calls", "Avg", *(key.upper() for key in percentile_keys), "Total", "% Total"]:
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        cells: list[Any] = [row["name"], f"{row['calls']:,}", row["avg"]]
        cells += [duration(row["percentiles_ns"][key]) for key in percentile_keys]
        cells += [row["total"], f"{row['percent_total']:.2f}%"]
        table.add_row(*cells)
    return table


def render(report: JSON, stream: IO[str], limit: int) -> None:
    status = report["status"]
    collectors = [name for name, on in status["collectors"].items() if on]
    # Reports often go to a pipe or a log file, where rich would assume 80 columns.
    width = max(shutil.get_terminal_size((120, 24)).columns, 100)
    console = Console(file=stream, highlight=False, width=width)
    console.print(f"[bold]\\[hotpath][/bold] {status['uptime']} | {', '.join(collectors)}")
    timing = report["functions_timing"]
    if timing["functions"]:
        console.print(_functions_table(timing, status["percentiles"], limit))
    else:
        console.print("no profiled function was called (see --include / --exclude)")

"""``hotpath compare before.json after.json``: two JSON reports (``--output``), function by
function, for CI: what got slower, what got faster, what was added or removed.

Functions are matched by name. A function is *slower* when the chosen metric (p95 by default,
avg or total) grew by more than ``UNCHANGED`` (10%), faster when it shrank by as much; the
gate (``--fail-if-slower PCT``) fails on any matched function whose metric grew by more than
PCT percent. A function with no finished call in one report has no p95 or avg there: it is
compared on the other metrics only, never gated.
"""

from __future__ import annotations

import io
import json
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from hotpath.views import units
from hotpath.views.common import JSON

Metric = Literal["p95", "avg", "total"]
METRICS: tuple[Metric, ...] = ("p95", "avg", "total")
UNCHANGED = 0.10


class NotAReport(ValueError):
    """A file that is not a hotpath JSON report (the message says why)."""


def load(text: str, name: str) -> dict[str, JSON]:
    """A report's functions by name; ``NotAReport`` for anything else."""
    try:
        report: Any = json.loads(text)
        rows = report["functions_timing"]["functions"]
        return {str(row["name"]): row for row in rows}
    except (ValueError, KeyError, TypeError) as error:
        raise NotAReport(
            f"{name} is not a hotpath JSON report (hotpath run --output FILE writes one): {error}"
        ) from None


def _figure(row: JSON, metric: Metric) -> float | None:
    if metric == "total":
        return float(row["total_ns"])
    value = row.get("avg_ns") if metric == "avg" else row.get("percentiles_ns", {}).get("p95")
    return None if value is None else float(value)


def compare(before: dict[str, JSON], after: dict[str, JSON], metric: Metric) -> JSON:
    rows = []
    for name in sorted(before.keys() & after.keys()):
        then, now = _figure(before[name], metric), _figure(after[name], metric)
        change = (now - then) / then * 100 if then and now is not None else None
        if change is None:
            status = "not comparable"
        elif change > UNCHANGED * 100:
            status = "slower"
        elif change < -UNCHANGED * 100:
            status = "faster"
        else:
            status = "unchanged"
        rows.append(
            {
                "name": name,
                "calls_before": before[name]["calls"],
                "calls_after": after[name]["calls"],
                f"{metric}_ns_before": None if then is None else round(then),
                f"{metric}_ns_after": None if now is None else round(now),
                "change_percent": None if change is None else round(change, 1),
                "status": status,
            }
        )
    rows.sort(
        key=lambda row: -1e18 if row["change_percent"] is None else row["change_percent"],
        reverse=True,
    )
    return {
        "metric": metric,
        "functions": rows,
        "slower": sum(row["status"] == "slower" for row in rows),
        "faster": sum(row["status"] == "faster" for row in rows),
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
    }


def failing(result: JSON, percent: float) -> list[JSON]:
    """Matched functions whose metric grew by more than ``percent``."""
    return [
        row
        for row in result["functions"]
        if row["change_percent"] is not None and row["change_percent"] > percent
    ]


def _cells(row: JSON, metric: Metric) -> list[str]:
    def time(value: int | None) -> str:
        return "-" if value is None else units.duration(value)

    change = row["change_percent"]
    return [
        row["name"],
        f"{row['calls_before']:,}",
        f"{row['calls_after']:,}",
        time(row[f"{metric}_ns_before"]),
        time(row[f"{metric}_ns_after"]),
        "-" if change is None else f"{change:+.1f}%",
        row["status"],
    ]


HEADERS = ["Function", "Calls before", "Calls after", "Before", "After", "Change", ""]


def _footer(result: JSON) -> str:
    added, removed = result["added"], result["removed"]
    return (
        f"{result['slower']} slower, {result['faster']} faster (by {result['metric']}, "
        f"beyond {UNCHANGED:.0%}); added: {', '.join(added) or 'none'}; "
        f"removed: {', '.join(removed) or 'none'}"
    )


def render(result: JSON, form: Literal["table", "markdown", "json"], width: int = 120) -> str:
    metric: Metric = result["metric"]
    if form == "json":
        return json.dumps(result, indent=1) + "\n"
    if form == "markdown":
        lines = [
            "| " + " | ".join([*HEADERS[:-1], "Status"]) + " |",
            "|" + "---|" * len(HEADERS),
        ]
        for row in result["functions"]:
            cells = [cell.replace("|", "\\|") for cell in _cells(row, metric)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n\n" + _footer(result) + "\n"
    table = Table(title=f"hotpath compare, by {metric}", title_justify="left")
    for header in HEADERS:
        table.add_column(header, justify="left" if header == "Function" else "right")
    for row in result["functions"]:
        table.add_row(*_cells(row, metric))
    text = io.StringIO()
    console = Console(file=text, width=width, highlight=False)
    console.print(table)
    console.print(_footer(result))
    return text.getvalue()

"""``hotpath console``: a terminal UI on a running ``hotpath run``, built on Textual.

It is a client of the JSON API (``/api/<tool>``, views/http_api.py), polled every 500 ms in
a worker thread, so that it shows exactly what the tools answer. When the program ends, or
was never there, the status line says so and the last figures stay on screen. It fits an
80x24 terminal: narrow columns, the name first.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane

from hotpath.views.units import duration, size

POLL_S = 0.5
ROWS = 200
SORTS = ("total", "self", "avg", "p99", "calls")

JSON = dict[str, Any]


class Source:
    """The JSON API of the program on ``port`` (loopback), with the token if there is one."""

    def __init__(self, port: int, token: str | None) -> None:
        self.base = f"http://127.0.0.1:{port}/api/"
        self.token = token

    def get(self, tool: str, **query: object) -> JSON:
        address = self.base + tool
        if query:
            address += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(address)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                found: JSON = json.load(answer)
        except urllib.error.HTTPError as error:  # the tool's own error: its message
            found = json.load(error)
        return found


def _ns(value: int | float | None) -> str:
    return "-" if value is None else duration(value)


def _rows(data: JSON) -> dict[str, list[tuple[Any, list[str]]]]:
    """Per table, (what Enter opens, cells) per row."""
    timing = data["functions"]["functions"]
    alloc = data["memory"]
    flow: list[tuple[Any, list[str]]] = []
    for row in data["channels"]["channels"]:
        per_s = f"{row['sent_per_s']}/s"
        flow.append((("channel_logs", "channel_name", row["id"]),
                     ["queue", row["name"], f"{row['sent']:,}", per_s, row["state"]]))  # fmt: skip
    for row in data["futures"]["futures"]:
        live = sum(row["states"][s] for s in ("pending", "running", "suspended"))
        flow.append((("future_logs", "future_name", row["id"]),
                     ["tasks", row["name"], f"{row['calls']:,}", "", f"{live} live"]))  # fmt: skip
    for row in data["streams"]["streams"]:
        flow.append((("stream_logs", "stream_name", row["id"]),
                     ["stream", row["name"], f"{row['items']:,}", f"{row['items_per_s']}/s",
                      row["state"]]))  # fmt: skip
    for row in data["locks"]["locks"]:  # the rate column: time spent waiting for it
        flow.append((("lock_logs", "lock_name", row["id"]),
                     ["lock", row["name"], f"{row['acquisitions']:,}",
                      f"{row['wait_total']} waited", row["state"]]))  # fmt: skip
    for tool, key, kind in (
        ("sql", "statements", "sql"),
        ("http", "endpoints", "http"),
        ("routes", "routes", "route"),
    ):  # rate: their total time
        for row in data[tool][key]:
            flow.append(((f"{kind}_logs", f"{kind}_name", row["id"]),
                         [kind, row["name"], f"{row['calls']:,}", row["time_total"],
                          f"{row['errors']:,} errors"]))  # fmt: skip
    return {
        "functions": [
            (
                ("function_timing_logs", "function_name", row["id"]),
                [
                    row["name"],
                    f"{row['calls']:,}",
                    _ns(row["avg_ns"]),
                    _ns(row["percentiles_ns"].get("p99")),
                    _ns(row["self_ns"]),
                    _ns(row["total_ns"]),
                    f"{row['percent_self']:.1f}%",
                ],
            )
            for row in timing
        ],
        "memory": [
            (
                ("function_alloc_logs", "function_name", row["id"]),
                [
                    row["name"],
                    f"{row['calls']:,}",
                    size(row["self_allocated_bytes"]),
                    size(row["allocated_bytes"]),
                    f"{row['allocations']:,}",
                ],
            )
            for row in alloc["functions"]
        ]
        if alloc.get("recorded", True)
        else [(None, [alloc["note"], "", "", "", ""])],
        "flow": flow,
        "threads": [
            (
                None,
                [
                    row["name"],
                    row["status"],
                    f"{row['cpu_percent']:.1f}",
                    f"{row['cpu_total_s']:.2f}s",
                    str(row.get("pid", "")),
                ],
            )
            for row in data["threads"]["threads"]
        ],
        "gauges": [
            (
                ("gauge_logs", "gauge_name", row["id"]),
                [
                    row["name"],
                    str(row["value"]),
                    str(row["min"]),
                    str(row["max"]),
                    f"{row['updates']:,}",
                ],
            )
            for row in data["gauges"]["gauges"]
        ],
    }


COLUMNS = {
    "functions": ("Function", "Calls", "Avg", "P99", "Self", "Total", "%Self"),
    "memory": ("Function", "Calls", "Self", "Allocated", "Allocs"),
    "flow": ("Kind", "Name", "Count", "Rate", "State"),
    "threads": ("Thread", "Status", "CPU%", "CPU", "PID"),
    "gauges": ("Gauge", "Value", "Min", "Max", "Updates"),
}
TITLES = {
    "functions": "Functions",
    "memory": "Memory",
    "flow": "Data flow",
    "threads": "Threads",
    "gauges": "Gauges",
}


class Logs(ModalScreen[None]):
    """The recent logs of one row, as its log tool answers them."""

    BINDINGS: ClassVar[list[Any]] = [Binding("escape,q", "dismiss", "Back")]

    def __init__(self, answer: JSON) -> None:
        super().__init__()
        self.answer = answer

    def compose(self) -> ComposeResult:
        title = self.answer.get("summary") or self.answer.get("error", "")
        yield Static(title, id="logs-title")
        table: DataTable[str] = DataTable(id="logs")
        rows = self.answer.get("logs", [])
        keys = [k for k in (rows[0] if rows else {}) if not isinstance(rows[0][k], dict | list)]
        table.add_columns(*keys)
        for row in rows:
            table.add_row(*(str(row[k]) for k in keys))
        yield table
        yield Footer()


class Console(App[None]):
    """Tabs of the live figures, refreshed every 500 ms."""

    TITLE = "hotpath console"
    BINDINGS: ClassVar[list[Any]] = [
        Binding("q", "quit", "Quit"),
        Binding("p", "pause", "Pause"),
        Binding("s", "sort", "Sort"),
        Binding("slash", "search", "Search", priority=True),  # not typed into the box
    ]

    def __init__(self, port: int, token: str | None) -> None:
        super().__init__()
        self.port = port
        self.source = Source(port, token)
        self.sort = SORTS[0]
        self.paused = False
        self.filter = ""
        self.seen = False  # the program answered at least once
        self.ended = False
        self.last: JSON | None = None
        self.status = ""

    def compose(self) -> ComposeResult:
        yield Static("connecting...", id="status")
        yield Input(placeholder="filter by name (/)", id="search")
        with TabbedContent(id="tabs"):
            for key, title in TITLES.items():
                with TabPane(title, id=key):
                    table: DataTable[str] = DataTable(id=f"table-{key}", cursor_type="row")
                    table.add_columns(*COLUMNS[key])
                    yield table
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(POLL_S, self.poll)
        self.poll()

    def poll(self) -> None:
        if not self.paused and not self.ended:
            self.run_worker(self.fetch, thread=True, exclusive=True, group="poll")

    def fetch(self) -> None:
        try:
            data = {
                "status": self.source.get("profiler_status"),
                "functions": self.source.get("functions_timing", limit=ROWS, sort=self.sort),
                "memory": self.source.get("functions_alloc", limit=ROWS),
                "channels": self.source.get("channels", limit=ROWS),
                "futures": self.source.get("futures", limit=ROWS),
                "streams": self.source.get("streams", limit=ROWS),
                "locks": self.source.get("locks", limit=ROWS),
                "sql": self.source.get("sql", limit=ROWS),
                "http": self.source.get("http", limit=ROWS),
                "routes": self.source.get("routes", limit=ROWS),
                "threads": self.source.get("threads", limit=ROWS),
                "gauges": self.source.get("gauges", limit=ROWS),
            }
        except (OSError, ValueError):
            self.call_from_thread(self.lost)
            return
        refused = next((a["error"] for a in data.values() if "error" in a), None)
        if refused is not None:  # a wrong token, or a server that is not hotpath's
            self.call_from_thread(self.refused, str(refused))
            return
        self.call_from_thread(self.show, data)

    def refused(self, why: str) -> None:
        self.status = f"the server on 127.0.0.1:{self.port} refused: {why}"
        self.query_one("#status", Static).update(self.status)

    def lost(self) -> None:
        if self.seen:
            self.ended = True
            self.status = f"{self.status.split(' | ')[0]} | the program has ended: last figures"
        else:
            self.status = f"no hotpath program answers on 127.0.0.1:{self.port} (retrying)"
        self.query_one("#status", Static).update(self.status)

    def show(self, data: JSON) -> None:
        self.seen, self.last = True, data
        status = data["status"]
        state = "paused" if self.paused else "running"
        self.status = f"pid {status['pid']} | up {status['uptime']} | {state} | sort {self.sort}"
        self.query_one("#status", Static).update(self.status)
        wanted = self.filter.lower()
        for key, rows in _rows(data).items():
            table = self.query_one(f"#table-{key}", DataTable)
            cursor = table.cursor_row
            table.clear()
            for opens, cells in rows:
                if wanted and wanted not in cells[0].lower() and wanted not in cells[1].lower():
                    continue
                table.add_row(*cells, key=json.dumps(opens) if opens else None)
            if table.row_count:
                table.move_cursor(row=min(cursor, table.row_count - 1))

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter = event.value
        if self.last is not None:
            self.show(self.last)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is None or event.data_table.id == "logs":
            return
        tool, argument, entry = json.loads(event.row_key.value)
        try:
            answer = self.source.get(tool, **{argument: entry, "limit": 50})
        except (OSError, ValueError) as error:
            answer = {"error": f"the program did not answer: {error}"}
        self.push_screen(Logs(answer))

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.last is not None:
            self.show(self.last)

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.poll()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

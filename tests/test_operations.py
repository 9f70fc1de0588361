"""SQL statements, outbound HTTP calls and served routes, counted exactly: fixtures that make
known calls for real (sqlite3 and SQLAlchemy in memory, servers on loopback), their own
counts the oracle; then the pieces on their own (normalization, caps, windows, logs)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from support import (
    FIXTURES,
    exit_code_within,
    free_port,
    held_elsewhere,
    hotpath,
    profile_output,
    python,
    run_script,
)

from hotpath.collectors.http import endpoint
from hotpath.collectors.sql import SqlCollector, normalize
from hotpath.store import RunInfo, Store
from hotpath.store.operations import OTHER, Done, OperationTable
from hotpath.views import registry


def run(tmp_path: Path, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fixture's own JSON line and hotpath's report."""
    said, report = profile_output(*args, tmp=tmp_path)
    return json.loads(said), report


def rows(report: dict[str, Any], tool: str, key: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["kind"], row["name"]): row for row in report[tool][key]}


def callers(row: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(c["function"], c["line"], c["calls"]) for c in row["callers"]]


# -- SQL ---------------------------------------------------------------------------------------


def test_sqlite3_and_sqlalchemy_statements_are_counted_once_each_by_normalized_text(
    tmp_path: Path,
) -> None:
    said, report = run(tmp_path, "sql_calls.py")
    assert said == json.loads(python("sql_calls.py").stdout)  # the program's answers unchanged
    sql = rows(report, "sql", "statements")
    insert = sql["sqlite3", "INSERT INTO items (number, label) VALUES (?, ?)"]
    assert (insert["calls"], insert["errors"], insert["rows"]) == (100, 0, 100)
    assert insert["outcomes"] == {"ok": 100}
    assert callers(insert) == [("sql_calls.insert_item", "sql_calls.py:14", 100)]
    select = sql["sqlite3", "SELECT number FROM items WHERE number > ?"]
    assert (select["calls"], select["rows"]) == (10, None)  # sqlite3 does not say for a SELECT
    assert callers(select) == [("sql_calls.select_items", "sql_calls.py:18", 10)]
    many = sql["sqlite3", "INSERT INTO items (label, number) VALUES (?, ?)"]
    assert (many["calls"], many["rows"]) == (1, 5)  # one executemany of five rows
    failed = sql["sqlite3", "SELECT * FROM no_such_table"]
    assert (failed["calls"], failed["errors"], failed["outcomes"]) == (
        1,
        1,
        {"OperationalError": 1},
    )
    # SQLAlchemy's statements, from its events; the sqlite3 cursor under it does not count
    # them again.
    orders = sql["sqlalchemy (sqlite)", "INSERT INTO orders (number) VALUES (?)"]
    assert (orders["calls"], orders["rows"]) == (100, 100)
    assert callers(orders) == [("sql_calls.insert_order", "sql_calls.py:38", 100)]
    selected = sql["sqlalchemy (sqlite)", "SELECT number FROM orders WHERE number > ?"]
    assert selected["calls"] == 10
    assert callers(selected) == [("sql_calls.select_orders", "sql_calls.py:42", 10)]
    assert not [name for kind, name in sql if "orders" in name and kind == "sqlite3"]
    for row in sql.values():
        assert row["time"]["count"] == row["calls"] and row["time_total_ns"] > 0
    # Literals never reach the report: the values the fixture inserted are nowhere in it.
    assert "item 42" not in json.dumps(report) and "(42" not in json.dumps(report)


def test_the_exit_table_lists_statements() -> None:
    result = hotpath("run", "--no-mcp", "sql_calls.py")
    assert result.returncode == 0, result.stderr
    table = result.stderr[result.stderr.index("SQL statements, by total time") :]
    assert "INSERT INTO items (number, label) VALUES (?, ?)" in table
    assert "sql_calls.py:14" in table


@pytest.fixture(scope="module")
def postgres() -> Iterator[tuple[str, str]]:
    """A PostgreSQL server of the test's own on loopback (host, port), if this machine has
    one installed (Debian's postgresql package; the test is skipped where there is none). As
    root it runs as the postgres user: the server refuses to run as root."""
    found = shutil.which("initdb") or next(
        iter(glob.glob("/usr/lib/postgresql/*/bin/initdb")), None
    )
    if found is None:
        pytest.skip("no PostgreSQL server on this machine (initdb not found)")
    initdb, pg_ctl = found, str(Path(found).with_name("pg_ctl"))
    folder = Path(tempfile.mkdtemp(prefix="hotpath-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = str(free_port())
    data = str(folder / "data")
    subprocess.run([*run_as, initdb, "-D", data, "-A", "trust", "-U", "hotpath"], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    subprocess.run([*run_as, pg_ctl, "-D", data, "-o", options, "-l", str(folder / "log"), "-w",
                    "start"], check=True, capture_output=True, timeout=120)  # fmt: skip
    try:
        yield "127.0.0.1", port
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=120)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def test_psycopg_psycopg2_and_asyncpg_statements_are_counted_by_normalized_text(
    tmp_path: Path, postgres: tuple[str, str]
) -> None:
    said, report = run(tmp_path, "postgres_calls.py", *postgres)
    assert said == {  # the program's answers, and what it sees of psycopg2's types
        "psycopg_selected": 85,
        "asyncpg": [5, 45],
        "psycopg2": {"found": [19, 17, 15], "cursor": "RealDictCursor", "is_connection": True},
    }
    sql = rows(report, "sql", "statements")
    insert = sql["psycopg", "INSERT INTO items (n) VALUES (%s)"]
    assert (insert["calls"], insert["rows"], insert["outcomes"]) == (20, 20, {"ok": 20})
    assert callers(insert) == [("postgres_calls.insert_item", "postgres_calls.py:24", 20)]
    select = sql["psycopg", "SELECT n FROM items WHERE n > %s"]
    assert (select["calls"], select["rows"]) == (5, 85)  # psycopg says for a SELECT too
    assert sql["psycopg", "INSERT INTO items VALUES (%s)"]["rows"] == 4  # one executemany
    # Composed with psycopg.sql: its text, the literal replaced as any other.
    assert sql["psycopg", 'SELECT count(*) FROM "items" WHERE n = ?']["calls"] == 1
    failed = sql["psycopg", "SELECT * FROM no_such_table"]
    assert (failed["errors"], failed["outcomes"]) == (1, {"UndefinedTable": 1})
    orders = sql["asyncpg", "INSERT INTO orders (n) VALUES ($1)"]
    assert (orders["calls"], orders["rows"]) == (10, None)
    assert callers(orders) == [("postgres_calls.add_order", "postgres_calls.py:51", 10)]
    assert sql["asyncpg", "SELECT n FROM orders WHERE n > $1"]["rows"] == 5  # fetched
    assert sql["asyncpg", "SELECT sum(n) FROM orders"]["calls"] == 1
    # psycopg2: a timed subclass of each class asked for, parameters by keyword too.
    lines = sql["psycopg2", "INSERT INTO lines (n) VALUES (%(n)s)"]
    assert (lines["calls"], lines["rows"]) == (15, 15)
    assert sorted(callers(lines)) == [
        ("postgres_calls.add_line", "postgres_calls.py:68", 1),
        ("postgres_calls.add_line", "postgres_calls.py:70", 14),
    ]
    assert sql["psycopg2", "INSERT INTO lines VALUES (%s)"]["rows"] == 6  # one executemany
    selected = sql["psycopg2", "SELECT n FROM lines WHERE n > %s"]  # on a RealDictCursor
    assert (selected["calls"], selected["rows"]) == (3, 19 + 17 + 15)
    assert len(sql) == 17  # and nothing counted twice


@pytest.mark.parametrize(
    ("statement", "normalized"),
    [
        (
            "select *  from t\n  where id in (1, 2, 3) and name = 'O''Brien'",
            "select * from t where id in (?) and name = ?",
        ),
        (
            "SELECT a FROM t WHERE b = $1 AND c = :name -- why\n",
            "SELECT a FROM t WHERE b = $1 AND c = :name",
        ),
        ("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')", "INSERT INTO t VALUES (?, ?)"),
        (
            "UPDATE t2 SET x = 1.5e3 /* a comment */ WHERE y = 0x1F",
            "UPDATE t2 SET x = ? WHERE y = ?",
        ),
    ],
)
def test_normalize(statement: str, normalized: str) -> None:
    assert normalize(statement) == normalized


def test_normalize_bounds_the_length() -> None:
    long = "SELECT " + ", ".join(f"column_{i}" for i in range(200)) + " FROM t"
    assert len(normalize(long)) == 300 and normalize(long).endswith("…")


# -- HTTP --------------------------------------------------------------------------------------


def test_requests_httpx_and_urllib_calls_are_counted_per_endpoint(tmp_path: Path) -> None:
    said, report = run(tmp_path, "http_calls.py")
    where = f"127.0.0.1:{said['port']}"
    http = rows(report, "http", "endpoints")
    users = http["http.client", f"GET {where}/users/{{id}}"]  # requests, through urllib3
    assert (users["calls"], users["errors"], users["outcomes"]) == (25, 0, {"2xx": 25})
    assert users["bytes_received"] == 25 * len(b'{"ok": true}')
    assert users["bytes_sent"] > 25 * len("GET /users/1000 HTTP/1.1\r\n")
    assert callers(users) == [("http_calls.get_users", "http_calls.py:38", 25)]
    items = http["httpx", f"GET {where}/items"]  # the query dropped
    assert (items["calls"], items["outcomes"]) == (15, {"2xx": 15})
    assert callers(items) == [("http_calls.get_items", "http_calls.py:44", 15)]
    asynchronous = http["httpx", f"GET {where}/async/{{id}}"]
    assert asynchronous["calls"] == 5
    assert callers(asynchronous) == [("http_calls.get_async", "http_calls.py:50", 5)]
    statuses = http["http.client", f"GET {where}/status/{{id}}"]  # urllib
    assert statuses["outcomes"] == {"2xx": 1, "4xx": 1, "5xx": 1}
    assert statuses["errors"] == 1  # the 503
    refused = http["http.client", f"GET 127.0.0.1:{said['refused_port']}/nobody"]
    assert (refused["calls"], refused["errors"], refused["bytes_sent"]) == (1, 1, 0)
    assert list(refused["outcomes"]) == ["NewConnectionError"]  # urllib3's, as requests saw
    # Every call the server answered is counted, once.
    assert said["served"] == sum(row["calls"] for row in http.values()) - 1


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (
            "/users/123/orders/550e8400-e29b-41d4-a716-446655440000?x=1",
            "GET h/users/{id}/orders/{id}",
        ),
        ("/v2/users/me#top", "GET h/v2/users/me"),
        ("", "GET h/"),
    ],
)
def test_endpoint_names(path: str, name: str) -> None:
    assert endpoint("GET", "h", 80, 80, path) == name
    assert endpoint("GET", "h", 8080, 80, path) == name.replace("h/", "h:8080/", 1)


# -- routes ------------------------------------------------------------------------------------

TEMPLATES = {
    "starlette": "/orders/{id:int}",
    "flask": "/orders/<int:order_id>",
    "django": "/orders/<int:pk>",
}
ENDPOINT_LINES = {"starlette": (53, 56), "flask": (82, 86), "django": (102, 105)}


@pytest.mark.parametrize("framework", ["starlette", "flask", "django"])
def test_routes_count_requests_and_the_sql_and_http_inside_them(
    tmp_path: Path, framework: str
) -> None:
    said, report = run(tmp_path, "routes_app.py", framework)
    assert said["statuses"] == [200] * 30 + [404, 500]  # as the client got them
    routes = rows(report, "routes", "routes")
    orders_line, health_line = ENDPOINT_LINES[framework]
    orders = routes[framework, f"GET {TEMPLATES[framework]}"]
    assert (orders["calls"], orders["errors"], orders["outcomes"]) == (20, 0, {"2xx": 20})
    assert orders["location"] == f"routes_app.py:{orders_line}"
    where = f"127.0.0.1:{said['port']}"
    inside = {(row["kind"], row["name"]): row["calls"] for row in orders["inside"]}
    assert inside == {
        ("sql", "CREATE TABLE lines (order_number INTEGER, amount INTEGER)"): 20,
        ("sql", "INSERT INTO lines VALUES (?, ?)"): 20,
        ("sql", "SELECT sum(amount) FROM lines"): 20,
        ("http", f"GET {where}/health"): 20,
    }
    assert 0 < orders["inside_time_ns"] < orders["time_total_ns"]
    # 10 requests from the client, 20 from inside the /orders requests.
    health = routes[framework, "GET /health"]
    assert (health["calls"], health["inside"]) == (30, [])
    assert health["location"] == f"routes_app.py:{health_line}"
    nowhere = routes[framework, "GET <no route>"]
    assert (nowhere["calls"], nowhere["errors"], nowhere["outcomes"]) == (1, 0, {"4xx": 1})
    # Its endpoint raised: Flask and Django answer 500, Starlette too and raises it on.
    failed = routes[framework, "GET /fail"]
    assert (failed["calls"], failed["errors"], failed["outcomes"]) == (1, 1, {"5xx": 1})
    assert len(routes) == 4
    # The client's side: every request it made, as the server counted it.
    http = rows(report, "http", "endpoints")
    assert http["http.client", f"GET {where}/orders/{{id}}"]["calls"] == 20
    assert http["http.client", f"GET {where}/health"]["calls"] == 30


# -- the pieces on their own -------------------------------------------------------------------


def _store() -> Store:
    info = RunInfo(["x"], {}, {}, (50.0, 99.0), 1.0)
    return Store(info, log_limit=5, max_functions=100)


@pytest.fixture
def sql_store() -> Iterator[Store]:
    """A store fed by a SQL collector installed in this process, this file the program."""
    store = _store()

    def selects(frame: FrameType) -> bool:
        return frame.f_code.co_filename == __file__

    collector = SqlCollector(store.sql, selects, str(FIXTURES), "tests", store.own_idents)
    collector.install()
    try:
        yield store
    finally:
        collector.release()


def insert(db: sqlite3.Connection, value: int) -> None:
    db.execute("INSERT INTO t VALUES (?)", (value,))


def filled(rows: int) -> sqlite3.Connection:
    """A database whose table t had ``rows`` rows inserted, one statement each."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v INTEGER)")
    for value in range(rows):
        insert(db, value)
    return db


def test_logs_name_the_caller_and_keep_no_parameter(sql_store: Store) -> None:
    db = filled(8)
    assert type(db).__name__ == "Connection" and isinstance(db, sqlite3.Connection)
    answer = registry.call(
        sql_store, "sql_logs", {"sql_name": "INSERT INTO t VALUES (?)", "limit": 3}
    )
    assert answer["statement"]["name"] == "INSERT INTO t VALUES (?)"
    assert [row["caller"] for row in answer["logs"]] == ["test_operations.insert"] * 3
    assert {row["outcome"] for row in answer["logs"]} == {"ok"}
    assert [row["rows"] for row in answer["logs"]] == [1, 1, 1]
    db.close()


def test_a_window_since_a_mark_counts_the_calls_after_it(sql_store: Store) -> None:
    db = filled(4)
    registry.call(sql_store, "mark", {"label": "before"})
    for value in range(6):
        insert(db, value)
    window = registry.call(sql_store, "sql", {"since": "before"})
    by_name = {row["name"]: row for row in window["statements"]}
    assert by_name["INSERT INTO t VALUES (?)"]["calls"] == 6
    assert by_name["INSERT INTO t VALUES (?)"]["callers"][0]["calls"] == 6
    whole = {row["name"]: row for row in registry.call(sql_store, "sql", {})["statements"]}
    assert whole["INSERT INTO t VALUES (?)"]["calls"] == 10
    db.close()


def test_an_error_passes_through_unchanged(sql_store: Store) -> None:
    db = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError, match="no such table: nowhere"):
        db.execute("SELECT * FROM nowhere")
    with pytest.raises(sqlite3.ProgrammingError):
        db.cursor().execute("SELECT ?", (1, 2))  # sqlite3's own argument check
    failed = {row["name"]: row for row in registry.call(sql_store, "sql", {})["statements"]}
    assert failed["SELECT * FROM nowhere"]["outcomes"] == {"OperationalError": 1}
    assert failed["SELECT ?"]["outcomes"] == {"ProgrammingError": 1}
    db.close()


def test_a_full_table_counts_the_rest_under_other() -> None:
    table = OperationTable(log_limit=3, max_entries=2)
    for name in ("a", "b", "c", "d", "c"):
        table.record(name, "x.py:1", "sqlite3", Done(10, "ok", False, ("f", "x.py:1")))
    read = {entry.name: entry.calls for entry in table.read()}
    assert read == {"a": 1, "b": 1, OTHER: 3}


def test_breakdowns_are_capped_too() -> None:
    table = OperationTable(log_limit=3)
    for i in range(30):
        table.record("q", "x.py:1", "sqlite3", Done(10, f"Error{i}", True, (f"f{i}", "x.py:1")))
    (entry,) = table.read()
    assert len(entry.outcomes) == 21 and entry.outcomes[OTHER] == 10
    assert len(entry.callers) == 21 and entry.callers[OTHER, ""].calls == 10
    assert len(table.calls(entry.id)) == 3  # the log is a ring


def test_metrics_export_each_entrys_calls_errors_and_durations(sql_store: Store) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from hotpath.views.metrics import exposition

    db = filled(7)
    with pytest.raises(sqlite3.OperationalError):
        db.execute("SELECT * FROM nowhere")
    db.close()
    body, _ = exposition(sql_store)
    samples = {
        (sample.name, sample.labels.get("statement"), sample.labels.get("le")): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name.startswith("hotpath_sql_")
    }
    insert_statement = "INSERT INTO t VALUES (?)"
    assert samples["hotpath_sql_calls_total", insert_statement, None] == 7
    assert samples["hotpath_sql_errors_total", insert_statement, None] == 0
    assert samples["hotpath_sql_errors_total", "SELECT * FROM nowhere", None] == 1
    assert samples["hotpath_sql_duration_seconds_count", insert_statement, None] == 7
    assert samples["hotpath_sql_duration_seconds_bucket", insert_statement, "+Inf"] == 7


def test_a_child_processs_statements_are_listed_with_its_pid(tmp_path: Path) -> None:
    out, report = run_script(
        "import multiprocessing, sqlite3\n"
        "def work(times):\n"
        "    db = sqlite3.connect(':memory:')\n"
        "    for number in range(times):\n"
        "        db.execute(f'SELECT {number}')\n"
        "if __name__ == '__main__':\n"
        "    child = multiprocessing.get_context('fork').Process(target=work, args=(12,))\n"
        "    child.start()\n"
        "    child.join()\n"
        "    work(3)\n"
        "    print(child.pid, flush=True)\n",
        tmp_path,
    )
    child = int(out)
    statements = report["sql"]["statements"]
    by_pid = {row["pid"]: (row["name"], row["calls"]) for row in statements}
    assert by_pid[child] == ("SELECT ?", 12)
    assert [figures for pid, figures in by_pid.items() if pid != child] == [("SELECT ?", 3)]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
def test_a_forked_child_runs_its_statements_while_a_reading_holds_the_entrys_lock() -> None:
    """A connection made before a fork keeps its timed cursor class in the child, where the
    collector is off (the session's fork handler): its statements pass through, never into
    the entry whose lock a thread of the parent's held at the fork."""
    table = OperationTable(log_limit=5)
    collector = SqlCollector(table, lambda frame: True, str(FIXTURES), "tests", set())
    collector.install()
    db = filled(1)
    (entry,) = [e for e in table.entries() if e.name == "INSERT INTO t VALUES (?)"]
    with held_elsewhere(entry.lock):  # the lock a reading takes, held across the fork
        pid = os.fork()
        if pid == 0:  # the child: as the session does at a fork
            collector.forget_in_child()
            insert(db, 2)  # the same statement: the same entry
            os._exit(0)
    collector.release()
    assert exit_code_within(pid, 10) == 0
    db.close()


def test_the_consoles_data_flow_tab_lists_statements(sql_store: Store) -> None:
    from hotpath.views.console import _rows

    db = filled(3)
    db.close()
    tools = (
        "channels",
        "futures",
        "streams",
        "locks",
        "threads",
        "gauges",
        "sql",
        "http",
        "routes",
    )
    data = {tool: registry.call(sql_store, tool, {}) for tool in tools}
    data["functions"] = data["memory"] = {"functions": []}  # the other tabs
    flow = {cells[1]: (opens, cells) for opens, cells in _rows(data)["flow"]}
    opens, cells = flow["INSERT INTO t VALUES (?)"]
    assert cells[0] == "sql" and cells[2] == "3" and cells[4] == "0 errors"
    assert opens[:2] == ("sql_logs", "sql_name")


def test_a_statement_sqlalchemy_timed_is_skipped_by_the_driver_once(sql_store: Store) -> None:
    """SQLAlchemy's before-event flags the driver call under it, which then does not count it
    again; a flag its after-event never cleared (an interrupt inside the driver) is spent by
    that one call, and the thread's later statements count."""
    from hotpath.collectors.sql import _TIMED

    db = sqlite3.connect(":memory:")
    _TIMED.set(True)  # as the before-event leaves it
    db.execute("CREATE TABLE t (v INTEGER)")  # SQLAlchemy's: not counted here
    insert(db, 1)
    insert(db, 2)
    counted = {
        row["name"]: row["calls"] for row in registry.call(sql_store, "sql", {})["statements"]
    }
    assert counted == {"INSERT INTO t VALUES (?)": 2}
    db.close()


def test_a_programs_own_starlette_subclass_is_named_by_its_framework() -> None:
    from starlette.applications import Starlette

    from hotpath.collectors.routes import _framework

    class Service(Starlette):  # the program's module, not the framework's
        pass

    assert (_framework(Starlette()), _framework(Service())) == ("starlette", "starlette")


def test_a_cursor_made_of_a_timed_cursors_class_counts_once(sql_store: Store) -> None:
    db = sqlite3.connect(":memory:")
    again = db.cursor(type(db.cursor()))  # the timed class, asked for by the program
    again.execute("SELECT 1")
    assert isinstance(again, sqlite3.Cursor) and type(again).__name__ == "Cursor"
    counted = {
        row["name"]: row["calls"] for row in registry.call(sql_store, "sql", {})["statements"]
    }
    assert counted == {"SELECT ?": 1}
    db.close()

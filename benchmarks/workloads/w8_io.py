"""W8, SQL and HTTP: statements and HTTP calls, timed by the workload itself per call (the
loop's own cost included, the same with and without hotpath). Prints JSON.

Cases: an sqlite3 INSERT into an in-memory table and a SELECT of one row (the cheapest
statements there are: what hotpath adds is the largest share it can be), and an HTTP GET
through http.client to a server of the workload's own on loopback, on one kept-alive
connection (the body read too). The server is a process of its own, started with
os.posix_spawn so that hotpath does not follow it: in a thread of the client's, the client's
work between its send and its receive held the GIL the server needed; forked, it was
profiled too; either way the figure counted more than the client's cost."""

import http.client
import json
import os
import signal
import socket
import sqlite3
import sys
import time

SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the connection is not part of a call
    # Headers and body go out in two writes: with Nagle's algorithm the second waits for the
    # client's delayed ACK, 40 ms a call.
    disable_nagle_algorithm = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def start_server():
    with socket.socket() as probe:  # a free port, for the server to take
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", SERVER, str(port)], os.environ)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as ready:
            if ready.connect_ex(("127.0.0.1", port)) == 0:
                return pid, port
        time.sleep(0.01)
    raise SystemExit("the HTTP server did not start")


def per_call(calls, call):
    started = time.perf_counter_ns()
    for i in range(calls):
        call(i)
    return (time.perf_counter_ns() - started) / calls


def main(scale):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v INTEGER)")
    statements = 100_000 * scale
    insert_ns = per_call(statements, lambda i: db.execute("INSERT INTO t VALUES (?)", (i,)))
    select_ns = per_call(
        statements, lambda i: db.execute("SELECT v FROM t WHERE rowid = ?", (i + 1,)).fetchone()
    )
    pid, port = start_server()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(i):
        connection.request("GET", f"/items/{i}")
        connection.getresponse().read()

    get_ns = per_call(2_000 * scale, get)
    connection.close()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return {"sqlite_insert_ns": insert_ns, "sqlite_select_ns": select_ns, "http_get_ns": get_ns}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)))

"""W8, SQL and HTTP: statements and HTTP calls, timed by the workload itself per call (the
loop's own cost included, the same with and without hotpath). Prints JSON.

Cases: an sqlite3 INSERT into an in-memory table and a SELECT of one row (the cheapest
statements there are: what hotpath adds is the largest share it can be), and an HTTP GET
through http.client to a server of the workload's own on loopback, on one kept-alive
connection (the body read too). The server runs in a forked process: in a thread of the
client's, the client's work between its send and its receive held the GIL the server
needed, and the figure counted the server's wait too."""

import http.client
import json
import os
import signal
import sqlite3
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

BODY = b"ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the connection is not part of a call
    # Headers and body go out in two writes: with Nagle's algorithm the second waits for the
    # client's delayed ACK, 40 ms a call.
    disable_nagle_algorithm = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


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
    server = HTTPServer(("127.0.0.1", 0), Handler)
    pid = os.fork()
    if pid == 0:  # the server: one connection, served until the parent kills it
        server.serve_forever()
        os._exit(0)
    server.server_close()
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)

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

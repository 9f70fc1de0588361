"""The MCP server: Streamable HTTP on loopback, in a daemon thread beside the program.

The listening socket is bound here, in the caller, so a port in use is a plain ``OSError`` and
one warning line. Everything heavy (mcp, starlette, uvicorn, pydantic) is imported only when
the first client connects: until then the thread waits in ``select()``, holding no GIL, so a
program nobody questions pays nothing for the server (measured: importing it beside a
CPU-bound program cost that program 0.6-0.9 s). The connection waits in the socket's backlog
and is answered once the import is done.

The server is stateless and answers in JSON: every request stands alone, so there are no
sessions to keep, expire or bound, and any client (Claude Code, the MCP Inspector) works.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import logging
import select
import socket
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import IO, Any

from hotpath.background import ShortSwitchInterval
from hotpath.config import Config
from hotpath.store import Store

THREAD_NAME = "hotpath-mcp"
HOST = "127.0.0.1"
# What any client can hold of the program's: connections open at once (each is a file
# descriptor of the program's), and how long one may take to send its request's headers.
MAX_CONNECTIONS = 16
ACCEPT_BACKLOG = 16
HEADER_TIMEOUT_S = 3.0
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: 35\r\nconnection: close\r\n\r\n"
    b'{"error": "too many connections"}\r\n'
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _refuse(
    send: Send, status: int, reason: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps({"error": reason}).encode()})


class TokenGate:
    """Refuses HTTP requests whose ``Authorization`` is not the token, raw or as ``Bearer``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Lifespan and other non-HTTP scopes pass: the session manager starts through them.
        if scope["type"] == "http" and not self.allows(scope):
            reason = "unauthorized: send the token in the Authorization header"
            await _refuse(send, 401, reason, ((b"www-authenticate", b"Bearer"),))
            return
        await self.app(scope, receive, send)

    def allows(self, scope: Scope) -> bool:
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
        if given[:7].lower() == b"bearer ":
            given = given[7:]
        return hmac.compare_digest(given.strip(), self.token)


class LocalGate:
    """Refuses requests whose ``Host`` or ``Origin`` is not this server's own, compared
    exactly: the SDK's DNS-rebinding check matches ``127.0.0.1:*`` by prefix, which let
    ``127.0.0.1:PORT@evil.com`` and ``http://localhost:PORT.evil.com`` through. Refuses
    ``GET`` too: the server answers in JSON, statelessly, and an event stream opened by a GET
    would stay open (and hold one of the program's descriptors) until the program ends."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app = app
        names = (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}")
        self.hosts = frozenset(name.encode() for name in names)
        self.origins = frozenset(f"http://{name}".encode() for name in names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])  # the last of a repeated header counts
            if headers.get(b"host", b"") not in self.hosts:
                await _refuse(send, 421, "this server answers only its own loopback address")
                return
            origin = headers.get(b"origin")
            if origin is not None and origin not in self.origins:
                await _refuse(send, 403, "requests from web pages are refused")
                return
            if scope["method"] == "GET" and scope["path"] == "/mcp":
                reason = "/mcp answers POST only (stateless JSON: no event stream)"
                await _refuse(send, 405, reason, ((b"allow", b"POST"),))
                return
        await self.app(scope, receive, send)


MAX_PEEKED = 4 * 2**20  # a request body read to choose its wire; a bigger one passes as it is
ENVELOPE_KEY = "io.modelcontextprotocol/protocolVersion"  # in params._meta on the modern wire


class LenientVersion:
    """Answer a request whose ``MCP-Protocol-Version`` header differs from the wire its body
    speaks. One client negotiates an older revision by ``initialize`` and then sends its
    newest in the header; the SDK reads a modern header as "the body carries the modern
    envelope" and refuses the request (400). A header that is not a revision the SDK knows,
    or a modern one on a body without the envelope, is replaced by the newest handshake
    revision; everything else passes as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

        self.handshake = {v.encode() for v in HANDSHAKE_PROTOCOL_VERSIONS}
        self.latest = LATEST_HANDSHAKE_VERSION.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        version = next((v for k, v in headers if k == b"mcp-protocol-version"), None)
        if version is None or version in self.handshake:
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more and len(body) <= MAX_PEEKED:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if not more and not _has_envelope(body):
            scope = dict(scope)
            scope["headers"] = [
                (k, self.latest if k == b"mcp-protocol-version" else v) for k, v in headers
            ]
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": more}
            return await receive()

        await self.app(scope, replay, send)


def _has_envelope(body: bytes) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return True  # not JSON: the SDK answers it, with the header as sent
    requests = message if isinstance(message, list) else [message]
    return any(
        isinstance(r, dict)
        and isinstance(r.get("params"), dict)
        and isinstance(r["params"].get("_meta"), dict)
        and ENVELOPE_KEY in r["params"]["_meta"]
        for r in requests
    )


class Responsive:
    """Answers with a short switch interval (see ShortSwitchInterval)."""

    def __init__(self, app: ASGIApp, switch: ShortSwitchInterval) -> None:
        self.app = app
        self.switch = switch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.switch:
            await self.app(scope, receive, send)


class McpServer:
    def __init__(
        self,
        store: Store,
        config: Config,
        err: IO[str],
        sock: socket.socket,
    ) -> None:
        self.store = store
        self.config = config
        self.err = err
        self.sock = sock
        self.url = f"http://{HOST}:{sock.getsockname()[1]}/mcp"
        self._uvicorn: Any = None
        self._switch = ShortSwitchInterval()
        self._stopping = threading.Event()
        self._wake, self._waker = socket.socketpair()  # stop() wakes the idle select() at once
        self.thread = threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True)

    def start(self) -> None:
        # The socket listens already: a client connecting from now on is answered.
        self.err.write(f"[hotpath] MCP server on {self.url}\n")
        self.thread.start()
        self.store.mark_own_thread(self.thread)

    def prepare(self) -> None:
        """Import the server's libraries and build it; in the server thread unless called
        before (--alloc-sites does, so that tracemalloc never traces these imports). The
        tools and their shapes are imported here too: 7 ms of the program's start otherwise."""
        if self._uvicorn is not None:
            return
        import uvicorn

        from hotpath.views import tools

        _quiet_loggers()
        app: ASGIApp = tools.build_app(self.store)
        if self.config.mcp_token is not None:
            app = TokenGate(app, self.config.mcp_token)
        app = Responsive(LocalGate(LenientVersion(app), self.sock.getsockname()[1]), self._switch)
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,  # uvicorn takes whole seconds
            http=_guarded_protocol(),
            # asyncio accepts up to `backlog` connections per loop iteration before any of
            # them can be refused, and a refused one is closed an iteration later: a flood
            # holds about 3 x backlog plus the cap. The default (2048) let 300 connections
            # take the program's descriptors; with cap and backlog at 32, a program limited
            # to 128 still lost 5 opens in 160 connections, at 16 none (tests/test_mcp.py).
            backlog=ACCEPT_BACKLOG,
        )
        self._uvicorn = uvicorn.Server(config)

    def _serve(self) -> None:
        try:
            if self.sock not in select.select([self.sock, self._wake], [], [])[0]:
                return  # woken by stop() before any client came
            with self._switch:
                self.prepare()
            if not self._stopping.is_set():
                asyncio.run(self._run())
        except Exception as error:  # the program must run on whatever happens here
            self.err.write(f"[hotpath] warning: MCP server stopped: {error}\n")

    async def _run(self) -> None:
        # asyncio reports a failed accept() (out of descriptors, say) through the loop's
        # exception handler, whose default logs to the program's stderr, once per attempt.
        note = self.store.note_problem
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: note(f"MCP server: {context.get('message', 'error')}")
        )
        await self._uvicorn.serve(sockets=[self.sock])

    def stop(self) -> None:
        self._stopping.set()
        self._waker.send(b"x")
        server = self._uvicorn
        if server is not None:
            # A request in flight at exit makes uvicorn log a CancelledError: not our reader's.
            logging.getLogger("uvicorn.error").disabled = True
            server.should_exit = True
        self.thread.join(timeout=1)
        self._close_sockets()

    def close_in_child(self) -> None:
        """In a forked child: let go of the parent's sockets (the server's thread is not
        there to stop)."""
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in (self.sock, self._wake, self._waker):
            sock.close()


def _guarded_protocol() -> type[Any]:
    """uvicorn's HTTP protocol, bounded: at most MAX_CONNECTIONS open (one more is answered
    503 and closed at once, so a flood holds no more of the program's descriptors), and a
    connection that has not sent a whole request's headers within HEADER_TIMEOUT_S is closed
    (uvicorn times out only idle keep-alive connections, after a first request)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedProtocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > MAX_CONNECTIONS:
                transport.write(BUSY)
                transport.close()
                return
            self._deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._no_request)

        def _no_request(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            deadline = getattr(self, "_deadline", None)
            if deadline is not None:
                deadline.cancel()
            super().connection_lost(exc)

    return GuardedProtocol


def _quiet_loggers() -> None:
    # The server's libraries must not write into the program's logging configuration.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "mcp", "httpx"):
        logger = logging.getLogger(name)
        logger.propagate = False
        logger.addHandler(logging.NullHandler())


def bind(port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets of that protocol,
    # and without it a keep-alive client waits ~40 ms per request (Nagle + delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def start_server(
    store: Store, config: Config, err: IO[str], prepare_now: bool = False
) -> McpServer | None:
    try:
        sock = bind(config.mcp_port)
    except OSError as error:
        reason = (
            "port in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        )
        err.write(
            f"[hotpath] warning: MCP server not started on {HOST}:{config.mcp_port}: {reason}; "
            "the program runs without it (set --mcp-port or HOTPATH_MCP_PORT)\n"
        )
        return None
    server = McpServer(store, config, err, sock)
    if prepare_now:
        server.prepare()
    server.start()
    return server

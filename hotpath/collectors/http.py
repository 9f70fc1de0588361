"""Outbound HTTP: each call the program makes, by method, host and path template.

- ``http.client``, which ``urllib.request``, ``urllib3`` and ``requests`` go through: a
  call starts at ``HTTPConnection.putrequest`` and ends when ``getresponse`` has the
  response's status and headers (an error in between, a refused connection, ends it too).
  The bytes sent are those ``send`` was given (headers and body); received, the response's
  Content-Length when it has one.
- ``httpx``, sync and async: ``Client._send_single_request`` (each request of a redirect
  chain is a call), to the response's status and headers as well; bytes are the
  Content-Length headers.

Reading the body afterwards is the program's own time. No header value or body is kept: the
name is the method, the host (with its port when not the scheme's default) and the path with
its query dropped and numeric or uuid-like segments folded to ``{id}``.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from hotpath import stdlib
from hotpath.collectors.operations import OperationCollector, PatchPoint
from hotpath.recorder import excluded

ATTRIBUTE = "_hotpath_http"  # on a connection between putrequest and getresponse
MAX_PATH = 200  # characters of a path template
_ID = re.compile(r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def endpoint(method: str, host: str, port: int | None, default_port: int | None, path: str) -> str:
    """``GET api.example.com/users/{id}``: the query dropped, ids folded."""
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    template = "/".join("{id}" if _ID.fullmatch(part) else part for part in path.split("/"))
    if len(template) > MAX_PATH:
        template = template[: MAX_PATH - 1] + "…"
    where = host if port is None or port == default_port else f"{host}:{port}"
    return f"{method} {where}{template}"


def _began(conn: Any, started: int, method: str, url: str) -> None:
    """A call through ``conn`` began: what its end needs, kept on the connection until then
    (bytes sent are added as ``send`` is called)."""
    conn.__dict__[ATTRIBUTE] = [started, method, url, 0]


def _content_length(headers: Any) -> int | None:
    value = headers.get("content-length") if headers is not None else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


class HttpCollector(OperationCollector):
    kind = "http"

    def provides(self) -> dict[str, bool]:
        return {"http": True}

    def patch_points(self) -> list[PatchPoint]:
        return [("http.client", self._patch_http_client), ("httpx", self._patch_httpx)]

    # -- http.client --------------------------------------------------------------------------

    def _patch_http_client(self, module: ModuleType) -> None:
        cls = module.HTTPConnection
        real_put, real_send = cls.putrequest, cls.send
        real_end, real_get = cls.endheaders, cls.getresponse
        ours = self.ours
        began = excluded(_began, self.exclusion)
        ended = excluded(self._http_client_ended, self.exclusion)

        def putrequest(conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> None:
            started = stdlib.perf_counter_ns()
            real_put(conn, method, url, *args, **kwargs)
            if ours():
                began(conn, started, method, url)

        def send(conn: Any, data: Any) -> None:
            real_send(conn, data)  # first: a refused connection has sent nothing
            pending = conn.__dict__.get(ATTRIBUTE)
            if pending is not None and isinstance(data, bytes | bytearray):
                pending[3] += len(data)

        def endheaders(conn: Any, *args: Any, **kwargs: Any) -> None:
            try:
                real_end(conn, *args, **kwargs)
            except BaseException as error:
                ended(conn, None, error)
                raise

        def getresponse(conn: Any) -> Any:
            try:
                response = real_get(conn)
            except BaseException as error:
                ended(conn, None, error)
                raise
            ended(conn, response, None)
            return response

        for name, function in (
            ("putrequest", putrequest),
            ("send", send),
            ("endheaders", endheaders),
            ("getresponse", getresponse),
        ):
            self.patches.wrap(cls, name, function)

    def _http_client_name(self, conn: Any, method: str, url: str) -> str:
        if url.startswith(("http://", "https://")):  # through a proxy: the whole URL
            from urllib.parse import urlsplit  # here: it costs the start 1-2 ms

            parts = urlsplit(url)
            default = 443 if parts.scheme == "https" else 80
            return endpoint(method, parts.hostname or "", parts.port, default, parts.path)
        return endpoint(method, conn.host, conn.port, conn.default_port, url)

    def _http_client_ended(self, conn: Any, response: Any, error: BaseException | None) -> None:
        """The call begun on ``conn`` ended: with ``response``'s status and headers, or by
        ``error`` (then ``response`` is None)."""
        pending = conn.__dict__.pop(ATTRIBUTE, None)
        if pending is None:
            return
        started, method, url, sent = pending
        name = self._http_client_name(conn, method, url)
        status = received = None
        if response is not None:
            status = response.status
            received = response.length if isinstance(response.length, int) else None
        self.finished(
            name, None, "http.client", started, error, status, sent=sent, received=received
        )

    # -- httpx --------------------------------------------------------------------------------

    def _patch_httpx(self, module: ModuleType) -> None:
        sync = module.Client.__dict__.get("_send_single_request")
        asynchronous = module.AsyncClient.__dict__.get("_send_single_request")
        if sync is None or asynchronous is None:
            return  # another httpx than the 0.2x this knows: left alone
        ours, finish = self.ours, excluded(self._httpx_finish, self.exclusion)

        def send_single(client: Any, request: Any) -> Any:
            if not ours():
                return sync(client, request)
            started = stdlib.perf_counter_ns()
            try:
                response = sync(client, request)
            except BaseException as error:
                finish(request, started, None, error)
                raise
            finish(request, started, response, None)
            return response

        async def send_single_async(client: Any, request: Any) -> Any:
            if not ours():
                return await asynchronous(client, request)
            started = stdlib.perf_counter_ns()
            try:
                response = await asynchronous(client, request)
            except BaseException as error:
                finish(request, started, None, error)
                raise
            finish(request, started, response, None)
            return response

        self.patches.wrap(module.Client, "_send_single_request", send_single)
        self.patches.wrap(module.AsyncClient, "_send_single_request", send_single_async)

    def _httpx_finish(
        self, request: Any, started: int, response: Any, error: BaseException | None
    ) -> None:
        url = request.url
        name = endpoint(request.method, url.host, url.port, None, url.path)
        status = response.status_code if response is not None else None
        received = _content_length(response.headers) if response is not None else None
        sent = _content_length(request.headers)
        self.finished(name, None, "httpx", started, error, status, sent=sent, received=received)

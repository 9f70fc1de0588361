"""Served routes: each request an ASGI or WSGI application of the program handles, by method
and route template as the framework names it, with the SQL and HTTP calls made inside it.

The application's entry point is wrapped in place, for every application of the framework:

- Starlette (and FastAPI, a Starlette): ``Starlette.__call__`` for HTTP requests, the
  template from ``Route.handle`` (a mounted application's routes get the path they are
  mounted at, as requested, in front).
- Flask: ``Flask.wsgi_app``, the template from the request's URL rule at dispatch.
- Django (WSGI): ``WSGIHandler.__call__``, the template from the request's resolver match
  (``/orders/<int:pk>``, Django's own route syntax).

A request lasts from the call into the application until it returns (ASGI: the response
sent). Its status is the one the application started its response with; an error it raised
counts as an error, as does a 5xx. A request no route matched is ``<no route>``. Requests
hotpath's own MCP server handles are not the program's and are left out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import CodeType, ModuleType
from typing import Any

from hotpath import stdlib
from hotpath.collectors.operations import CURRENT, OperationCollector, PatchPoint, RequestScope
from hotpath.collectors.sites import MAX_DECISIONS
from hotpath.filters import shown_path
from hotpath.recorder import excluded

NO_ROUTE = "<no route>"


class RouteCollector(OperationCollector):
    kind = "route"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._endpoints: dict[int, tuple[CodeType, str]] = {}

    def provides(self) -> dict[str, bool]:
        return {"routes": True}

    def patch_points(self) -> list[PatchPoint]:
        return [
            ("starlette.applications", self._patch_starlette),
            ("flask", self._patch_flask),
            ("django.core.handlers.wsgi", self._patch_django),
        ]

    def _served(
        self,
        library: str,
        method: str,
        request: RequestScope,
        started: int,
        status: int | None,
        error: BaseException | None,
    ) -> None:
        name = f"{method} {request.route or NO_ROUTE}"
        location = request.location or library
        self.finished(name, location, library, started, error, status, inside=request.inside)

    def _where(self, function: Any) -> str | None:
        """Where an endpoint (a function, a method) is defined: "file:line"; None for one
        without Python code of its own (a class, a partial)."""
        function = getattr(function, "__func__", function)
        code = getattr(function, "__code__", None)
        if code is None:
            return None
        # Named once per endpoint (by its code's id, the code kept so that the id stays its
        # own): os.path.relpath costs ~8 µs, every request.
        found = self._endpoints.get(id(code))
        if found is not None:
            return found[1]
        where = f"{shown_path(code.co_filename, self.root)}:{code.co_firstlineno}"
        if len(self._endpoints) < MAX_DECISIONS:
            self._endpoints[id(code)] = code, where
        return where

    def _starts(self) -> bool:
        """Whether a request starting now is one to time: the program's, and not one
        application inside another's request (a mounted one: the outer one times it)."""
        return self.ours() and CURRENT.get() is None

    # -- ASGI: Starlette ----------------------------------------------------------------------

    def _patch_starlette(self, module: ModuleType) -> None:
        from starlette.routing import Route

        app_class = module.Starlette
        real_call = app_class.__call__
        real_handle = Route.handle
        starts, where = self._starts, self._where
        served = excluded(self._served, self.exclusion)

        async def __call__(app: Any, scope: Any, receive: Any, send: Any) -> None:
            if scope.get("type") != "http" or not starts():
                await real_call(app, scope, receive, send)
                return
            request = RequestScope(scope.get("root_path", ""))
            token = CURRENT.set(request)
            status: list[int | None] = [None]

            async def sending(message: Any) -> None:
                if message.get("type") == "http.response.start":
                    status[0] = message.get("status")
                await send(message)

            started = stdlib.perf_counter_ns()
            error: BaseException | None = None
            try:
                await real_call(app, scope, receive, sending)
            except BaseException as raised:
                error = raised
                raise
            finally:
                CURRENT.reset(token)
                served(_framework(app), scope.get("method", "?"), request, started, status[0],
                       error)  # fmt: skip

        async def handle(route: Any, scope: Any, receive: Any, send: Any) -> None:
            request = CURRENT.get()
            if request is not None:
                mounted_at = scope.get("root_path", "")[len(request.root) :]
                request.route = mounted_at + route.path
                request.location = where(route.endpoint)
            await real_handle(route, scope, receive, send)

        self.patches.wrap(app_class, "__call__", __call__)
        self.patches.wrap(Route, "handle", handle)

    # -- WSGI: Flask, Django ------------------------------------------------------------------

    def _wsgi(self, library: str, real: Callable[..., Any]) -> Callable[..., Any]:
        """``real(app, environ, start_response)``, timed as one request."""
        starts, served = self._starts, excluded(self._served, self.exclusion)

        def call(app: Any, environ: Any, start_response: Any) -> Any:
            if not starts():
                return real(app, environ, start_response)
            request = RequestScope()
            token = CURRENT.set(request)
            status: list[int | None] = [None]

            def starting(line: str, headers: Any, *exc_info: Any) -> Any:
                with contextlib.suppress(ValueError):
                    status[0] = int(line.split(" ", 1)[0])
                return start_response(line, headers, *exc_info)

            started = stdlib.perf_counter_ns()
            error: BaseException | None = None
            try:
                return real(app, environ, starting)
            except BaseException as raised:
                error = raised
                raise
            finally:
                CURRENT.reset(token)
                method = environ.get("REQUEST_METHOD", "?")
                served(library, method, request, started, status[0], error)

        return call

    def _patch_flask(self, module: ModuleType) -> None:
        app_class = module.Flask
        flask_request = module.request
        real_dispatch = app_class.full_dispatch_request
        where = self._where

        def full_dispatch_request(app: Any) -> Any:
            request = CURRENT.get()
            rule = flask_request.url_rule if request is not None else None
            if request is not None and rule is not None:
                request.route = rule.rule
                request.location = where(app.view_functions.get(rule.endpoint))
            return real_dispatch(app)

        self.patches.wrap(app_class, "wsgi_app", self._wsgi("flask", app_class.wsgi_app))
        self.patches.wrap(app_class, "full_dispatch_request", full_dispatch_request)

    def _patch_django(self, module: ModuleType) -> None:
        from django.core.handlers.base import BaseHandler

        handler_class = module.WSGIHandler
        real_get = BaseHandler.get_response
        where = self._where

        def get_response(handler: Any, django_request: Any) -> Any:
            response = real_get(handler, django_request)
            request = CURRENT.get()
            match = getattr(django_request, "resolver_match", None)
            if request is not None and match is not None and match.route is not None:
                request.route = "/" + match.route
                request.location = where(match.func)
            return response

        self.patches.wrap(handler_class, "__call__", self._wsgi("django", handler_class.__call__))
        self.patches.wrap(BaseHandler, "get_response", get_response)


def _framework(app: Any) -> str:
    """The framework an ASGI application is of: "fastapi" for a FastAPI one (a program's own
    subclass included), else "starlette"."""
    modules = (cls.__module__.split(".", 1)[0] for cls in type(app).__mro__)
    return "fastapi" if "fastapi" in modules else "starlette"

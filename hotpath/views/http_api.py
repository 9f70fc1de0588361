"""Plain HTTP beside MCP, on the same server (the same loopback binding, token and Host/Origin
checks, which wrap the whole app): ``GET /api/<tool>`` answers exactly what the MCP tool
answers, its arguments as query parameters, for the console, scripts and curl; ``GET
/metrics`` is the Prometheus exposition (views/metrics.py).

Tools that change what hotpath does (``read_only`` false: ``mark``, ``trace_memory``) take
POST, so that a crawler or a prefetching browser cannot start tracing with a GET. Query
values are converted by the answer function's annotations: whole numbers, numbers,
``true``/``false``, text.
"""

from __future__ import annotations

import asyncio
import typing
from typing import Any

from hotpath.store import Store
from hotpath.views import registry
from hotpath.views.common import BadArgument
from hotpath.views.lookup import NotFound


def _convert(name: str, text: str, annotation: Any) -> object:
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    kind = kinds[0]
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise BadArgument(f"{name} cannot be {text!r}: it takes a {kind.__name__}") from None
    return text


def arguments(tool: registry.Tool, query: typing.Mapping[str, str]) -> dict[str, object]:
    """The tool's arguments from a query string; ``BadArgument`` for an unknown, missing or
    malformed one."""
    parameters = {parameter.name: parameter for parameter in tool.parameters()}
    given = {}
    for name, text in query.items():
        parameter = parameters.get(name)
        if parameter is None:
            takes = ", ".join(parameters) or "no arguments"
            raise BadArgument(f"{tool.name} takes no argument {name!r}; it takes: {takes}")
        given[name] = _convert(name, text, parameter.annotation)
    missing = [
        name
        for name, parameter in parameters.items()
        if parameter.default is parameter.empty and name not in given
    ]
    if missing:
        raise BadArgument(f"{tool.name} needs {', '.join(missing)}")
    return given


def routes(store: Store) -> list[Any]:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from hotpath.views import metrics

    async def api(request: Request) -> Response:
        name = request.path_params["tool"]
        tool = registry.BY_NAME.get(name)
        if tool is None:
            return JSONResponse(
                {"error": f"no tool {name!r}; tools: {', '.join(registry.NAMES)}"}, 404
            )
        if request.method != ("GET" if tool.read_only else "POST"):
            how = "GET" if tool.read_only else "POST (it changes what hotpath does)"
            return JSONResponse({"error": f"{name} takes {how}"}, 405)
        try:
            pending = registry.begin(store, name, arguments(tool, request.query_params))
            if pending.wait_s:
                await asyncio.sleep(pending.wait_s)  # other requests are answered meanwhile
            return JSONResponse(pending.finish())
        except (BadArgument, NotFound) as problem:
            return JSONResponse({"error": str(problem)}, 400)

    async def exposition(request: Request) -> Response:
        body, content_type = metrics.exposition(store)
        return Response(body, media_type=content_type)

    return [
        Route("/api/{tool}", api, methods=["GET", "POST"]),
        Route("/metrics", exposition, methods=["GET"]),
    ]

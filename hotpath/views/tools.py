"""The MCP server's tools, made from the registry (``views/registry.py``): one async function
per row, with the row's arguments, description, annotations and output schema.

Tools are ``async`` on purpose: the SDK runs plain functions in worker threads, which would add
threads to the profiled process; a snapshot is quick enough for the server's event loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from hotpath import __version__
from hotpath.store import Store
from hotpath.views import http_api, registry, workflows
from hotpath.views.common import BadArgument
from hotpath.views.lookup import NotFound

INSTRUCTIONS = """\
hotpath profiles the Python program it runs, live. Numbers cover the run so far.
Start with profiler_status (what is collected), then functions_timing (where time goes).
Times are in nanoseconds (fields ending in _ns) with a short human string beside them.
A *_name argument takes an exact name, an unambiguous suffix (`process_request`,
`Handler.process_request`) or the numeric id a summary tool shows."""

# What each argument takes, for an agent that got it wrong.
ARGUMENT_HINTS = {
    "limit": "a whole number of rows from 1 to 10000",
    "sort": "one of self, total, calls, avg, p99",
    "on": "true to start, false to stop",
    "seconds": "a number of seconds, more than 0 and at most 30",
    "process": "a pid from the processes tool",
}


def _name_sources() -> dict[tuple[str, str], str]:
    """(tool, its ``*_name`` argument) -> the tool that lists the names it takes: the first
    summary tool of the same view module (``function_timing_logs``' ``function_name``:
    ``functions_timing``; ``cpu_stacks``': ``functions_cpu``, whose ids differ)."""
    sources: dict[tuple[str, str], str] = {}
    for tool in registry.TOOLS:
        module = tool.answer.__module__
        for argument in (parameter.name for parameter in tool.parameters()):
            if argument.endswith("_name"):
                sources[tool.name, argument] = next(
                    t.name
                    for t in registry.TOOLS
                    if t.kind == "summary" and t.answer.__module__ == module
                )
    return sources


NAME_SOURCES = _name_sources()


def argument_errors(store: Store, tool: str, error: Any) -> str:
    """pydantic's validation errors for ``tool`` as one line an agent can act on."""
    phrases = []
    for problem in error.errors():
        field = str(problem["loc"][-1]) if problem.get("loc") else "?"
        if (tool, field) in NAME_SOURCES:
            hint = f"pass a name or id from {NAME_SOURCES[tool, field]}"
            example = next(
                (f.qualname for f in store.functions.infos() if "<" not in f.qualname), None
            )
            if field == "function_name" and example is not None:
                hint += f", e.g. '{example}'"
        else:
            hint = ARGUMENT_HINTS.get(field, "see the tool's description")
        if problem.get("type") == "missing":
            phrases.append(f"`{field}` is required: {hint}")
        else:
            phrases.append(f"`{field}` cannot be {problem.get('input')!r}: {hint}")
    return "; ".join(phrases) or "the arguments do not fit this tool's description"


def build_app(store: Store) -> Any:
    """The ASGI app serving every tool at /mcp."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver import server as server_module
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations
    from pydantic import ValidationError

    # MCPServer() calls logging.basicConfig on the root logger, which would make the program's
    # own later basicConfig a no-op. hotpath configures no logging of the program's.
    configure_logging = server_module.configure_logging  # type: ignore[attr-defined]
    server_module.configure_logging = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    try:
        server = MCPServer(
            "hotpath", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING"
        )
    finally:
        server_module.configure_logging = configure_logging  # type: ignore[attr-defined]

    # The SDK answers arguments that fail validation with pydantic's text (a URL included):
    # the same error, phrased for an agent.
    call_tool = server.call_tool

    async def call_tool_phrased(name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await call_tool(name, arguments, context)
        except ToolError as error:
            if isinstance(error.__cause__, ValidationError):
                raise ToolError(argument_errors(store, name, error.__cause__)) from None
            raise

    server.call_tool = call_tool_phrased  # type: ignore[method-assign]

    # The SDK derives an output schema from the return annotation (here a plain dict): the
    # registry's, which says what each field is, is published instead.
    list_tools = server.list_tools

    async def list_tools_with_schemas() -> list[Any]:
        listed = await list_tools()
        for tool in listed:
            tool.output_schema = registry.BY_NAME[tool.name].output
        return listed

    server.list_tools = list_tools_with_schemas  # type: ignore[method-assign]

    for tool in registry.TOOLS:
        server.add_tool(
            _mcp_function(store, tool, ToolError),
            name=tool.name,
            description=tool.text,
            annotations=ToolAnnotations(
                read_only_hint=tool.read_only,
                destructive_hint=False,
                idempotent_hint=True,
                open_world_hint=False,
            ),
        )
    _add_workflows(server, store)
    app = server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True, host="127.0.0.1"
    )
    app.router.routes.extend(http_api.routes(store))  # /api/<tool> and /metrics
    return app


def _add_workflows(server: Any, store: Store) -> None:
    """The live report as a resource, and the prompts (views/workflows.py)."""

    def live_report() -> str:
        return workflows.report(store)

    server.resource(
        workflows.REPORT_URI,
        name="report",
        description="The live report: every summary tool's answer with its first 20 rows, "
        "as JSON (what hotpath run --output writes at exit, but now).",
        mime_type="application/json",
    )(live_report)
    for workflow in workflows.WORKFLOWS:
        server.prompt(name=workflow.name, description=workflow.description)(_saying(workflow.steps))


def _saying(text: str) -> Callable[[], str]:
    """A prompt function of no arguments (the SDK makes its arguments from the signature)."""
    return lambda: text


def _mcp_function(store: Store, tool: registry.Tool, error: type[Exception]) -> Callable[..., Any]:
    """An async function with the tool's own arguments (the SDK builds the input schema from
    its signature) that answers through the registry."""
    signature = inspect.signature(tool.answer, eval_str=True)
    arguments = tool.parameters()

    async def answer(**given: Any) -> dict[str, Any]:
        try:
            pending = registry.begin(store, tool.name, given)
            if pending.wait_s:
                await asyncio.sleep(pending.wait_s)  # other requests are answered meanwhile
            return pending.finish()
        except (BadArgument, NotFound) as problem:
            raise error(str(problem)) from None

    answer.__name__ = answer.__qualname__ = tool.name
    answer.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=arguments, return_annotation=dict[str, Any]
    )
    answer.__annotations__ = {a.name: a.annotation for a in arguments} | {"return": dict[str, Any]}
    return answer

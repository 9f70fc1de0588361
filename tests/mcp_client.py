"""Talking to a running hotpath MCP server: the SDK's own client, and raw HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/mcp"


async def _session(port: int, token: str | None, calls: list[tuple[str, dict[str, Any]]]) -> Any:
    headers = {"Authorization": token} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url(port), http_client=http)) as client,
    ):
        if not calls:
            return (await client.list_tools()).tools
        return [await client.call_tool(name, arguments) for name, arguments in calls]


def list_tools(port: int, token: str | None = None, names_only: bool = True) -> list[Any]:
    """The tools the server lists: their names, or the SDK's descriptions of them."""
    tools: list[Any] = asyncio.run(_session(port, token, []))
    return [tool.name for tool in tools] if names_only else tools


def call(port: int, tool: str, token: str | None = None, **arguments: Any) -> Any:
    """One tools/call; returns the SDK's result (``is_error``, ``structured_content``)."""
    return asyncio.run(_session(port, token, [(tool, arguments)]))[0]


def call_many(port: int, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    return list(asyncio.run(_session(port, None, calls)))


def raw_post(port: int, headers: dict[str, str], body: Any | None = None) -> httpx2.Response:
    message = body or {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "profiler_status", "arguments": {}},
    }
    content = message if isinstance(message, bytes) else json.dumps(message).encode()
    return httpx2.post(
        url(port),
        content=content,
        headers={
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            **headers,
        },
        timeout=30,
    )


def raw_get(port: int) -> httpx2.Response:
    return httpx2.get(url(port), headers={"accept": "text/event-stream"}, timeout=30)


async def _extras(port: int) -> tuple[Any, Any, Any]:
    async with Client(streamable_http_client(url(port))) as client:
        resources = (await client.list_resources()).resources
        read = await client.read_resource("hotpath://report")
        prompts = (await client.list_prompts()).prompts
        first = await client.get_prompt(prompts[0].name) if prompts else None
        return resources, read, (prompts, first)


def resources_and_prompts(port: int) -> tuple[Any, Any, Any]:
    """The resources, the report resource read, and the prompts (with the first one got)."""
    return asyncio.run(_extras(port))

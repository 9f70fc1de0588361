"""The tool registry is the one list of tools: what the README, the JSON report and the MCP
server say follows from it."""

from __future__ import annotations

import inspect
import re

from support import ROOT

from hotpath.views import registry


def _arguments(tool: registry.Tool) -> dict[str, inspect.Parameter]:
    return {parameter.name: parameter for parameter in tool.parameters()}


def test_the_readme_lists_exactly_the_registered_tools() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Tools\n\n", 1)[1].split("\n\n", 1)[0]  # its first paragraph
    named = set(re.findall(r"`([a-z_]+)(?:\([^`]*\))?`", section))
    arguments = {name for tool in registry.TOOLS for name in _arguments(tool)}
    assert named - arguments == set(registry.NAMES)


def test_every_tool_takes_the_arguments_its_kind_promises() -> None:
    for tool in registry.TOOLS:
        arguments = _arguments(tool)
        if tool.kind in ("summary", "logs"):
            assert arguments["limit"].default == 10, tool.name
        if tool.kind == "logs":
            (name,) = [a for a in arguments if a.endswith("_name")]
            assert arguments[name].default is inspect.Parameter.empty, tool.name
            assert tool.name.startswith(name.removesuffix("_name")), tool.name
        # Every argument is described to the agent.
        for argument in arguments:
            assert argument in tool.text, (tool.name, argument)


def test_the_json_report_has_the_status_and_every_summary() -> None:
    keys = [tool.report_key for tool in registry.TOOLS if tool.report_key is not None]
    summaries = [tool.name for tool in registry.TOOLS if tool.kind == "summary"]
    assert keys == ["status", *summaries]
    assert len(set(registry.NAMES)) == len(registry.NAMES)

"""The run's CPU samples as files for flame-graph tools (``--flame FILE``), the format chosen by
the name: ``.speedscope.json`` (speedscope.app, offline too), ``.txt`` (collapsed stacks, for
flamegraph.pl and inferno; weights in CPU microseconds) or ``.html`` (one self-contained page,
no network: a flame graph to click through). Stacks are merged by function, as flame graphs
show them; the JSON report's ``cpu_stacks`` has the same paths."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from hotpath import __version__
from hotpath.store.cpu import CpuReading
from hotpath.views.cpu import frame_name, stacks


@dataclass
class _Node:
    code: int
    ns: int = 0  # this node and everything under it
    children: dict[int, _Node] = field(default_factory=dict)


def _tree(reading: CpuReading) -> _Node:
    root = _Node(0)
    for codes, _, ns in stacks(reading):
        node = root
        root.ns += ns
        for code in codes:
            node = node.children.setdefault(code, _Node(code))
            node.ns += ns
    return root


def collapsed(reading: CpuReading) -> str:
    lines = []
    for codes, _, ns in stacks(reading):
        if ns // 1000:
            names = ";".join(frame_name(reading, code) for code in codes)
            lines.append(f"{names} {ns // 1000}")
    return "\n".join(lines) + "\n"


def speedscope(reading: CpuReading, name: str) -> dict[str, Any]:
    index: dict[int, int] = {}
    frames: list[dict[str, Any]] = []
    samples: list[list[int]] = []
    weights: list[int] = []
    for codes, _, ns in stacks(reading):
        for code in codes:
            if code not in index:
                index[code] = len(frames)
                function = reading.functions.get(code)
                frames.append(
                    {"name": frame_name(reading, code)}
                    | ({"file": function.filename, "line": function.lineno} if function else {})
                )
        samples.append([index[code] for code in codes])
        weights.append(ns)
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "exporter": f"hotpath {__version__}",
        "name": name,
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": f"{name}: CPU, all threads",
                "unit": "nanoseconds",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
    }


def _json_tree(node: _Node, reading: CpuReading) -> dict[str, Any]:
    children = sorted(node.children.values(), key=lambda child: child.ns, reverse=True)
    return {
        "n": frame_name(reading, node.code) if node.code else "all",
        "v": node.ns,
        "c": [_json_tree(child, reading) for child in children],
    }


PAGE = """<!doctype html>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 12px monospace; margin: 8px; }}
#graph div {{ position: absolute; height: 17px; overflow: hidden; white-space: nowrap;
  box-sizing: border-box; border: 1px solid #fff; padding: 1px 3px; cursor: pointer; }}
#graph {{ position: relative; }}
</style>
<h3>{title}</h3>
<p id="info">Click a frame to zoom in, the top frame to zoom out. Widths are CPU time.</p>
<div id="graph"></div>
<script>
const data = {data};
const graph = document.getElementById("graph");
function ms(ns) {{ return (ns / 1e6).toFixed(1) + " ms"; }}
function draw(top) {{
  graph.innerHTML = "";
  let depth = 0;
  const width = graph.clientWidth || 1000;
  function place(node, x, level, scale) {{
    const w = node.v * scale;
    if (w < 1) return;
    const div = document.createElement("div");
    div.style.left = x + "px";
    div.style.top = (level * 18) + "px";
    div.style.width = w + "px";
    const hue = 20 + (node.n.length * 37) % 40;
    div.style.background = "hsl(" + hue + ", 85%, " + (60 + (level % 3) * 6) + "%)";
    div.textContent = node.n;
    div.title = node.n + ": " + ms(node.v) + " (" + (100 * node.v / data.v).toFixed(1) + "%)";
    div.onclick = () => draw(node === top && top.parent ? top.parent : node);
    graph.appendChild(div);
    depth = Math.max(depth, level + 1);
    let at = x;
    for (const child of node.c) {{
      child.parent = node;
      place(child, at, level + 1, scale);
      at += child.v * scale;
    }}
  }}
  place(top, 0, 0, width / Math.max(top.v, 1));
  graph.style.height = (depth * 18) + "px";
}}
draw(data);
</script>
"""


def page(reading: CpuReading, name: str) -> str:
    data = json.dumps(_json_tree(_tree(reading), reading)).replace("</", "<\\/")
    return PAGE.format(title=html.escape(f"hotpath: CPU of {name}"), data=data)


def write(reading: CpuReading, path: str, name: str) -> None:
    """Write the samples to ``path`` in the format its name says."""
    if path.endswith(".speedscope.json"):
        text = json.dumps(speedscope(reading, name))
    elif path.endswith(".txt"):
        text = collapsed(reading)
    else:
        text = page(reading, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)

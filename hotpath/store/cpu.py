"""CPU samples: where the program's running threads were each time the stack sampler looked
(collectors/stacks.py), for all code, as a bounded tree of call paths and per-function totals.

Every sample of a thread carries the CPU time that thread used since the previous sample, so
figures are both counts (``samples``) and CPU time (``cpu_ns``): a thread that ran 1 ms of a
10 ms interval weighs 1 ms, not a whole sample's worth.

The tree has one node per (code object, line) under its caller's node. Nodes are numbered in
the order they were made and never removed, so a reading taken now and one taken later can be
subtracted node by node (``CpuReading.since``): that is how a window of the run is measured.
Code objects are keyed by ``id()``, never hashed (hashing one walks its bytecode: 120-750 ns),
and kept alive by the table so an id never changes owner. Both the tree and the functions are
capped: past the cap, a sample's deeper frames stop at the deepest node that exists (counted
as ``truncated_samples``) and new functions are not named.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import CodeType
from typing import Any, NamedTuple

from hotpath import stdlib

MAX_NODES = 50_000
MAX_FUNCTIONS = 10_000
ROOT = 0

# A sample's path, outermost frame first: (id(code), line) per frame.
Path = list[tuple[int, int]]


@dataclass(slots=True)
class CpuFunction:
    """One function's samples: ``self`` where it was the innermost frame (C calls it made
    included), ``total`` where it was anywhere on the stack (recursion counted once)."""

    id: int
    name: str  # module.qualname
    filename: str
    lineno: int
    self_samples: int = 0
    total_samples: int = 0
    self_ns: int = 0
    total_ns: int = 0

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.lineno}"


class CpuReading(NamedTuple):
    """A copy of the table: views and exports read these, never the table."""

    interval_s: float
    samples: int
    cpu_ns: int
    truncated: int
    functions: dict[int, CpuFunction]  # by id(code)
    parent: list[int]  # per node; the root's is -1
    code: list[int]  # per node: id(code), 0 for the root
    line: list[int]
    node_samples: list[int]  # samples whose innermost frame was this node
    node_ns: list[int]

    def since(self, before: CpuReading) -> CpuReading:
        """What was sampled after ``before`` (an earlier reading of the same table)."""
        functions = {}
        for key, now in self.functions.items():
            then = before.functions.get(key)
            if then is not None:
                now = replace(
                    now,
                    self_samples=now.self_samples - then.self_samples,
                    total_samples=now.total_samples - then.total_samples,
                    self_ns=now.self_ns - then.self_ns,
                    total_ns=now.total_ns - then.total_ns,
                )
            if now.total_samples:
                functions[key] = now
        kept = len(before.node_samples)
        return self._replace(
            samples=self.samples - before.samples,
            cpu_ns=self.cpu_ns - before.cpu_ns,
            truncated=self.truncated - before.truncated,
            functions=functions,
            node_samples=[
                n - before.node_samples[i] if i < kept else n
                for i, n in enumerate(self.node_samples)
            ],
            node_ns=[n - before.node_ns[i] if i < kept else n for i, n in enumerate(self.node_ns)],
        )

    def path(self, node: int) -> list[int]:
        """The nodes from the outermost frame down to ``node``."""
        nodes = []
        while node != ROOT:
            nodes.append(node)
            node = self.parent[node]
        nodes.reverse()
        return nodes


class CpuTable:
    def __init__(
        self,
        interval_s: float,
        max_nodes: int = MAX_NODES,
        max_functions: int = MAX_FUNCTIONS,
    ) -> None:
        self.interval_s = interval_s  # 0: the sampler is off
        self.max_nodes = max_nodes
        self.max_functions = max_functions
        self._lock = stdlib.new_rlock()
        self._codes: dict[int, CodeType] = {}  # keeps every keyed code object alive
        self._functions: dict[int, CpuFunction] = {}
        self._children: list[dict[tuple[int, int], int]] = [{}]
        self._parent = [-1]
        self._code = [0]
        self._line = [0]
        self._samples = [0]
        self._ns = [0]
        self.samples = 0
        self.cpu_ns = 0
        self.truncated = 0

    def knows(self, code: CodeType) -> bool:
        """Whether ``code`` has a name here already (a dict read: no lock needed)."""
        return id(code) in self._codes

    def name(self, code: CodeType, name: str) -> None:
        """Give ``code`` its name before the first sample that has it; past the cap its
        samples count under no function (they still count in the tree and the totals)."""
        with self._lock:
            if id(code) in self._codes or len(self._functions) >= self.max_functions:
                return
            self._codes[id(code)] = code
            self._functions[id(code)] = CpuFunction(
                len(self._functions) + 1, name, code.co_filename, code.co_firstlineno
            )

    def add(self, samples: list[tuple[Path, int]]) -> None:
        """One sampling tick: each running thread's path and the CPU it used since the last."""
        with self._lock:
            for path, cpu_ns in samples:
                self._add(path, cpu_ns)

    def _add(self, path: Path, cpu_ns: int) -> None:
        self.samples += 1
        self.cpu_ns += cpu_ns
        node = ROOT
        children = self._children
        for key in path:
            child = children[node].get(key)
            if child is None:
                if len(self._parent) >= self.max_nodes:
                    self.truncated += 1
                    break
                child = len(self._parent)
                children[node][key] = child
                children.append({})
                self._parent.append(node)
                self._code.append(key[0])
                self._line.append(key[1])
                self._samples.append(0)
                self._ns.append(0)
            node = child
        self._samples[node] += 1
        self._ns[node] += cpu_ns
        functions = self._functions
        for code in {code for code, _ in path}:
            function = functions.get(code)
            if function is not None:
                function.total_samples += 1
                function.total_ns += cpu_ns
        if path and (innermost := functions.get(path[-1][0])) is not None:
            innermost.self_samples += 1
            innermost.self_ns += cpu_ns

    def read(self) -> CpuReading:
        with self._lock:
            return CpuReading(
                interval_s=self.interval_s,
                samples=self.samples,
                cpu_ns=self.cpu_ns,
                truncated=self.truncated,
                functions={key: replace(f) for key, f in self._functions.items()},
                parent=list(self._parent),
                code=list(self._code),
                line=list(self._line),
                node_samples=list(self._samples),
                node_ns=list(self._ns),
            )


# -- child processes' samples (issue 17) ----------------------------------------------------
#
# A followed child sends its whole reading (cumulative, as its function figures); the parent
# appends each child's tree under the root beside its own. Nothing is merged node by node: the
# views merge paths by function already, and functions are merged here by name, so a worker's
# `work` and the parent's `work` are one row. Merged readings are for the whole-run views
# (functions_cpu, cpu_stacks, flame graphs); a window (cpu_snapshot) reads the parent's table,
# whose node numbers are stable.

UNNAMED = 1  # a child's code past its function cap: no id() is odd, and no function has it
CpuWire = dict[str, Any]


def to_wire(reading: CpuReading) -> CpuWire:
    return {
        "interval_s": reading.interval_s,
        "samples": reading.samples,
        "cpu_ns": reading.cpu_ns,
        "truncated": reading.truncated,
        "functions": [
            [
                key,
                f.name,
                f.filename,
                f.lineno,
                f.self_samples,
                f.total_samples,
                f.self_ns,
                f.total_ns,
            ]
            for key, f in reading.functions.items()
        ],
        "parent": reading.parent,
        "code": reading.code,
        "line": reading.line,
        "node_samples": reading.node_samples,
        "node_ns": reading.node_ns,
    }


def from_wire(wire: dict[str, Any]) -> CpuReading:
    """Raises (KeyError, TypeError, ValueError) on anything that is not a reading."""
    functions = {}
    for row in wire["functions"]:
        key, name, filename, lineno, *figures = row
        functions[int(key)] = CpuFunction(
            0, str(name), str(filename), int(lineno), *map(int, figures)
        )
    lists = [
        [int(v) for v in wire[k]] for k in ("parent", "code", "line", "node_samples", "node_ns")
    ]
    parent = lists[0]
    if len({len(values) for values in lists}) != 1 or not parent or parent[0] != -1:
        raise ValueError("a CPU reading's node lists differ")
    if any(not 0 <= p < node for node, p in enumerate(parent) if node):
        raise ValueError("a CPU reading's node comes before its parent")
    return CpuReading(
        float(wire["interval_s"]),
        int(wire["samples"]),
        int(wire["cpu_ns"]),
        int(wire["truncated"]),
        functions,
        *lists,
    )


def merged(mine: CpuReading, children: list[CpuReading]) -> CpuReading:
    """``mine`` with the children's samples added: their trees under the root, their functions
    joined to this process's of the same name (or added, numbered after them)."""
    if not children:
        return mine
    functions = {key: replace(f) for key, f in mine.functions.items()}
    by_name = {f.name: key for key, f in functions.items()}
    parent, code, line = list(mine.parent), list(mine.code), list(mine.line)
    node_samples, node_ns = list(mine.node_samples), list(mine.node_ns)
    samples, cpu_ns, truncated = mine.samples, mine.cpu_ns, mine.truncated
    fresh = -1  # keys of functions only children ran: never an id() of this process's
    for child in children:
        keys: dict[int, int] = {0: 0}
        for key, function in child.functions.items():
            known = by_name.get(function.name)
            if known is None:
                known = by_name[function.name] = fresh
                fresh -= 1
                functions[known] = replace(
                    function, id=len(functions) + 1, self_samples=0, total_samples=0,
                    self_ns=0, total_ns=0,
                )  # fmt: skip
            keys[key] = known
            into = functions[known]
            into.self_samples += function.self_samples
            into.total_samples += function.total_samples
            into.self_ns += function.self_ns
            into.total_ns += function.total_ns
        offset = len(parent) - 1  # the child's node n is node n + offset here; its root is ours
        for node in range(1, len(child.parent)):
            parent.append(child.parent[node] + offset if child.parent[node] else ROOT)
            code.append(keys.get(child.code[node], UNNAMED))
            line.append(child.line[node])
            node_samples.append(child.node_samples[node])
            node_ns.append(child.node_ns[node])
        node_samples[ROOT] += child.node_samples[ROOT]
        node_ns[ROOT] += child.node_ns[ROOT]
        samples += child.samples
        cpu_ns += child.cpu_ns
        truncated += child.truncated
    return mine._replace(
        samples=samples, cpu_ns=cpu_ns, truncated=truncated, functions=functions,
        parent=parent, code=code, line=line, node_samples=node_samples, node_ns=node_ns,
    )  # fmt: skip

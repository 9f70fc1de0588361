"""Where the CPU goes, for all code, from the stack sampler's table: ``functions_cpu``,
``cpu_stacks`` and ``cpu_snapshot`` (the same answers for a window of the next seconds)."""

from __future__ import annotations

from hotpath.store import Store
from hotpath.store.cpu import CpuReading
from hotpath.views import schema, units
from hotpath.views.common import DEFAULT_LIMIT, JSON, BadArgument, listing, not_recorded
from hotpath.views.lookup import find
from hotpath.views.schema import INT, NUM, STR, obj

CPU_OFF = (
    "CPU sampling is off (--sample-interval-ms 0 or HOTPATH_SAMPLE_INTERVAL_MS=0): run "
    "without it to sample every thread's stack every 10 ms (about 1% of the program's time)"
)
OTHER = "<other code>"  # code past the table's cap
SHOWN_OUTER, SHOWN_INNER = 4, 12  # a longer stack shows its ends, and says what it left out
MAX_SNAPSHOT_S = 30.0
DEFAULT_SNAPSHOT_S = 5.0


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _function_rows(reading: CpuReading) -> list[JSON]:
    functions = sorted(
        reading.functions.values(), key=lambda f: (f.self_ns, f.total_ns), reverse=True
    )
    return [
        {
            "id": f.id,
            "name": f.name,
            "location": f.location,
            "self_samples": f.self_samples,
            "total_samples": f.total_samples,
            "self_cpu_ns": f.self_ns,
            "total_cpu_ns": f.total_ns,
            "percent_self": _percent(f.self_ns, reading.cpu_ns),
            "percent_total": _percent(f.total_ns, reading.cpu_ns),
            "self_s": round(f.self_ns / 1e9, 3),
            "total_s": round(f.total_ns / 1e9, 3),
        }
        for f in functions
        if f.total_samples
    ]


CPU_FUNCTION_ROW = obj(
    id=INT,
    name=STR,
    location=STR,
    self_samples=INT,
    total_samples=INT,
    self_cpu_ns=INT,
    total_cpu_ns=INT,
    percent_self=NUM,
    percent_total=NUM,
    self_s=NUM,
    total_s=NUM,
)


def _figures(reading: CpuReading) -> JSON:
    return {
        "interval_ms": round(reading.interval_s * 1000, 3),
        "samples": reading.samples,
        "cpu_ns": reading.cpu_ns,
        "cpu": units.duration(reading.cpu_ns),
        "truncated_samples": reading.truncated,
    }


FIGURES = {"interval_ms": NUM, "samples": INT, "cpu_ns": INT, "cpu": STR, "truncated_samples": INT}


def functions_cpu(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    reading = store.cpu_reading()
    if not reading.interval_s:
        return not_recorded("functions", CPU_OFF)
    rows = _function_rows(reading)
    return {
        "recorded": True,
        **listing(
            "functions", rows[:limit], len(rows), "self_cpu_ns", "total_functions",
            **_figures(reading),
        ),
    }  # fmt: skip


FUNCTIONS_CPU = schema.one_of(
    schema.not_recorded("functions"),
    schema.listing(
        "functions",
        CPU_FUNCTION_ROW,
        "total_functions",
        recorded={"const": True},
        **FIGURES,
    ),
)


def stacks(reading: CpuReading) -> list[tuple[tuple[int, ...], int, int]]:
    """The sampled call paths merged by function (lines set aside), with their innermost
    samples and CPU: (code ids outermost first, samples, cpu_ns), heaviest first.

    Each node's merged path is numbered by (its parent's number, its code), so the work and
    memory stay proportional to the nodes, however deep the stacks: a path is spelled out
    only for the numbers that have samples."""
    ids: dict[tuple[int, int], int] = {}
    steps: list[tuple[int, int]] = [(-1, 0)]  # number -> (parent's number, code)
    numbers = [0]  # node -> its path's number; the root's is 0
    figures: dict[int, list[int]] = {}
    for node in range(1, len(reading.parent)):
        # A node's parent was made before it: its number is known already.
        step = (numbers[reading.parent[node]], reading.code[node])
        number = ids.get(step)
        if number is None:
            number = ids[step] = len(steps)
            steps.append(step)
        numbers.append(number)
        if reading.node_samples[node] > 0:
            counted = figures.setdefault(number, [0, 0])
            counted[0] += reading.node_samples[node]
            counted[1] += reading.node_ns[node]
    found = []
    for number, (samples, ns) in figures.items():
        codes = []
        while number > 0:
            number, code = steps[number]
            codes.append(code)
        found.append((tuple(reversed(codes)), samples, ns))
    found.sort(key=lambda item: item[2], reverse=True)
    return found


def frame_name(reading: CpuReading, code: int) -> str:
    function = reading.functions.get(code)
    return function.name if function is not None else OTHER


def _stack_rows(reading: CpuReading, under: int | None, limit: int) -> tuple[list[JSON], int]:
    """The heaviest ``limit`` paths, as rows, and how many there are. Under a function, the
    paths start at it (its first call on the path), merged where they then agree."""
    paths = stacks(reading)
    if under is not None:
        merged: dict[tuple[int, ...], list[int]] = {}
        for codes, samples, ns in paths:
            if under in codes:
                figures = merged.setdefault(codes[codes.index(under) :], [0, 0])
                figures[0] += samples
                figures[1] += ns
        paths = sorted(
            ((codes, samples, ns) for codes, (samples, ns) in merged.items()),
            key=lambda item: item[2],
            reverse=True,
        )
    rows = []
    for codes, samples, ns in paths[:limit]:
        names = [frame_name(reading, code) for code in codes]
        if len(names) > SHOWN_OUTER + SHOWN_INNER:
            left_out = len(names) - SHOWN_OUTER - SHOWN_INNER
            names = [*names[:SHOWN_OUTER], f"... {left_out} frames ...", *names[-SHOWN_INNER:]]
        rows.append(
            {
                "stack": names,
                "frames": len(codes),
                "samples": samples,
                "cpu_ns": ns,
                "percent": _percent(ns, reading.cpu_ns),
                "cpu": units.duration(ns),
            }
        )
    return rows, len(paths)


STACK_ROW = obj(stack=schema.array(STR), frames=INT, samples=INT, cpu_ns=INT, percent=NUM, cpu=STR)


def cpu_stacks(store: Store, limit: int = DEFAULT_LIMIT, function_name: str | None = None) -> JSON:
    reading = store.cpu_reading()
    if not reading.interval_s:
        return not_recorded("stacks", CPU_OFF)
    under = None
    if function_name is not None:
        chosen = find(list(reading.functions.values()), function_name, "function")
        under = next(code for code, f in reading.functions.items() if f is chosen)
    rows, total = _stack_rows(reading, under, limit)
    return {
        "recorded": True,
        **listing("stacks", rows, total, "cpu_ns", "total_stacks", **_figures(reading)),
    }


CPU_STACKS = schema.one_of(
    schema.not_recorded("stacks"),
    schema.listing("stacks", STACK_ROW, "total_stacks", recorded={"const": True}, **FIGURES),
)


def cpu_window(store: Store) -> CpuReading | None:
    """The reading a snapshot is measured from; None when nothing samples."""
    return store.cpu.read() if store.cpu.interval_s else None


def check_seconds(seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise BadArgument(f"seconds must be a number, got {seconds!r}")
    if not 0 < seconds <= MAX_SNAPSHOT_S:
        raise BadArgument(f"seconds must be more than 0 and at most 30, got {seconds}")
    return float(seconds)


def cpu_snapshot(
    store: Store,
    seconds: float = DEFAULT_SNAPSHOT_S,
    limit: int = DEFAULT_LIMIT,
    baseline: CpuReading | None = None,
) -> JSON:
    if baseline is None:
        return {**not_recorded("functions", CPU_OFF), "stacks": []}
    window = store.cpu.read().since(baseline)
    rows = _function_rows(window)
    return {
        "recorded": True,
        "seconds": seconds,
        **_figures(window),
        "functions": rows[:limit],
        "stacks": _stack_rows(window, None, limit)[0],
    }


CPU_SNAPSHOT = schema.one_of(
    obj(
        functions={"type": "array", "maxItems": 0},
        recorded={"const": False},
        note=STR,
        stacks={"type": "array", "maxItems": 0},
    ),
    obj(
        recorded={"const": True},
        seconds=NUM,
        **FIGURES,
        functions=schema.array(CPU_FUNCTION_ROW),
        stacks=schema.array(STACK_ROW),
    ),
)

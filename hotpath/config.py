"""hotpath's settings, from the command line and ``HOTPATH_*`` variables, checked before the
program starts so that a mistake costs one line and exit code 2, never a half-profiled run."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hotpath.filters import GlobError, validate_glob
from hotpath.recorder import Implementation, RecorderUnavailable, choose, compiled_unavailable
from hotpath.store.functions import FUNCTION_SORTS, FunctionSort

ReportFormat = Literal["table", "json", "none"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("table", "json", "none")
DEFAULT_PERCENTILES = (50.0, 95.0, 99.0)
DEFAULT_MCP_PORT = 6771
MAX_PERCENTILES = 10


class ConfigError(ValueError):
    """A setting hotpath cannot use; its message is the one line the user sees."""


@dataclass(frozen=True)
class Config:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES
    limit: int = 15
    logs_limit: int = 100
    max_functions: int = 5_000
    metrics_limit: int = 100  # functions (and entries of each table) /metrics exports
    report: ReportFormat = "table"
    sort: FunctionSort = "self"
    output: str | None = None
    mcp: bool = True
    mcp_port: int = DEFAULT_MCP_PORT
    mcp_token: str | None = field(default=None, repr=False)
    keep_serving: bool = False
    alloc: bool = False  # count allocations (compiled recorder)
    alloc_sites: bool = False  # tracemalloc from the start
    threads_interval_ms: int = 250
    sample_interval_ms: float = 10.0  # the stack sampler's; 0 turns it off
    flame: str | None = None  # where to write the CPU samples at exit
    follow: bool = True  # profile the program's child processes
    recorder: Implementation = "c"
    # Why the pure-Python recorder runs although nobody asked for it, or None.
    recorder_fallback: str | None = None


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_globs(patterns: list[str], option: str) -> tuple[str, ...]:
    try:
        return tuple(validate_glob(p) for p in patterns)
    except GlobError as error:
        raise ConfigError(f"{option}: {error}") from None


def parse_percentiles(text: str) -> tuple[float, ...]:
    values = []
    for part in split_list(text):
        try:
            value = float(part.removeprefix("p").removeprefix("P"))
        except ValueError:
            raise ConfigError(f"percentile {part!r} is not a number") from None
        if not (0 < value <= 100) or math.isnan(value):
            raise ConfigError(f"percentile {part!r} is out of range: use numbers in (0, 100]")
        values.append(value)
    if not values:
        raise ConfigError("no percentiles given: use for example 50,95,99.9")
    if len(values) > MAX_PERCENTILES:
        raise ConfigError(f"at most {MAX_PERCENTILES} percentiles, got {len(values)}")
    return tuple(sorted(set(values)))


def parse_int(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(f"{what} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{what} must be between {low} and {high}, got {value}")
    return value


def parse_bool(text: str, what: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{what} must be 0 or 1, got {text!r}")


def parse_token(text: str) -> str:
    if not text.strip():
        raise ConfigError("HOTPATH_MCP_AUTH_TOKEN is set but empty: unset it, or give a token")
    if text != text.strip():
        raise ConfigError("HOTPATH_MCP_AUTH_TOKEN has leading or trailing white space")
    return text


def check_output(path: str, option: str = "--output") -> str:
    """Fail now, not after an hour of profiling, when the file cannot be written."""
    existed = os.path.exists(path)
    if os.path.isdir(path):
        raise ConfigError(f"{option} {path}: is a directory")
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise ConfigError(f"{option} {path}: cannot write ({error.strerror})") from None
    if not existed:
        os.remove(path)
    return os.path.abspath(path)


@dataclass
class Options:
    """What the command line said; ``None`` means "not given", so the environment decides."""

    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    percentiles: str | None = None
    limit: str | None = None
    report: str | None = None
    sort: str | None = None
    output: str | None = None
    mcp: bool | None = None
    mcp_port: str | None = None
    keep_serving: bool = False
    alloc: bool | None = None
    alloc_sites: bool | None = None
    sample_interval_ms: str | None = None
    flame: str | None = None
    follow: bool | None = None


FLAME_FORMATS = (".speedscope.json", ".txt", ".html")


def parse_interval(text: str) -> float:
    what = "--sample-interval-ms"
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(f"{what} must be a number of milliseconds, got {text!r}") from None
    if value != 0 and not 1 <= value <= 10_000:
        raise ConfigError(f"{what} must be 0 (off) or between 1 and 10000, got {text.strip()}")
    return value


def check_flame(path: str) -> str:
    if not path.endswith(FLAME_FORMATS):
        raise ConfigError(
            f"--flame {path}: the name says the format, and must end in "
            f"{', '.join(FLAME_FORMATS[:-1])} or {FLAME_FORMATS[-1]}"
        )
    return check_output(path, "--flame")


def resolve(options: Options, environ: Mapping[str, str]) -> Config:
    def setting(given: str | None, variable: str) -> str | None:
        return given if given is not None else environ.get(variable)

    include = options.include or split_list(environ.get("HOTPATH_INCLUDE", ""))
    exclude = options.exclude or split_list(environ.get("HOTPATH_EXCLUDE", ""))
    percentiles = setting(options.percentiles, "HOTPATH_PERCENTILES")
    limit = setting(options.limit, "HOTPATH_LIMIT")
    logs_limit = environ.get("HOTPATH_LOGS_LIMIT")
    max_functions = environ.get("HOTPATH_MAX_FUNCTIONS")
    metrics_limit = environ.get("HOTPATH_METRICS_LIMIT")
    interval = environ.get("HOTPATH_THREADS_INTERVAL_MS")
    report = setting(options.report, "HOTPATH_REPORT") or "table"
    if report not in REPORT_FORMATS:
        raise ConfigError(f"report format {report!r} is not one of {', '.join(REPORT_FORMATS)}")
    sort = setting(options.sort, "HOTPATH_SORT") or "self"
    if sort not in FUNCTION_SORTS:
        raise ConfigError(f"--sort {sort!r} is not one of {', '.join(FUNCTION_SORTS)}")
    output = setting(options.output, "HOTPATH_OUTPUT")
    sample_interval = setting(options.sample_interval_ms, "HOTPATH_SAMPLE_INTERVAL_MS")
    flame = setting(options.flame, "HOTPATH_FLAME")
    port = setting(options.mcp_port, "HOTPATH_MCP_PORT")
    token = environ.get("HOTPATH_MCP_AUTH_TOKEN")
    mcp = options.mcp
    if mcp is None:
        mcp = parse_bool(environ.get("HOTPATH_MCP", "1"), "HOTPATH_MCP")
    follow = options.follow
    if follow is None:
        follow = parse_bool(environ.get("HOTPATH_FOLLOW", "1"), "HOTPATH_FOLLOW")
    alloc = options.alloc
    if alloc is None:
        alloc = parse_bool(environ.get("HOTPATH_ALLOC", "0"), "HOTPATH_ALLOC")
    alloc_sites = options.alloc_sites
    if alloc_sites is None:
        alloc_sites = parse_bool(environ.get("HOTPATH_ALLOC_SITES", "0"), "HOTPATH_ALLOC_SITES")
    recorder, fallback = resolve_recorder(environ)
    if alloc and recorder == "python":
        # No allocator hooks in Python: --alloc keeps what tracemalloc can give, by site.
        alloc_sites = True
    defaults = Config()
    return Config(
        include=parse_globs(include, "--include"),
        exclude=parse_globs(exclude, "--exclude"),
        percentiles=parse_percentiles(percentiles) if percentiles else defaults.percentiles,
        limit=parse_int(limit, "--limit", 1, 100_000) if limit else defaults.limit,
        logs_limit=(
            parse_int(logs_limit, "HOTPATH_LOGS_LIMIT", 0, 100_000)
            if logs_limit
            else defaults.logs_limit
        ),
        max_functions=(
            parse_int(max_functions, "HOTPATH_MAX_FUNCTIONS", 1, 1_000_000)
            if max_functions
            else defaults.max_functions
        ),
        metrics_limit=(
            parse_int(metrics_limit, "HOTPATH_METRICS_LIMIT", 1, 10_000)
            if metrics_limit
            else defaults.metrics_limit
        ),
        report=report,
        sort=sort,
        output=check_output(output) if output else None,
        mcp=mcp,
        # 0 asks the OS for a free port; the line printed at start-up names the one it gave.
        mcp_port=parse_int(port, "MCP port", 0, 65535) if port else defaults.mcp_port,
        mcp_token=parse_token(token) if token is not None else None,
        keep_serving=options.keep_serving,
        alloc=alloc,
        alloc_sites=alloc_sites,
        threads_interval_ms=(
            parse_int(interval, "HOTPATH_THREADS_INTERVAL_MS", 10, 60_000)
            if interval
            else defaults.threads_interval_ms
        ),
        sample_interval_ms=(
            parse_interval(sample_interval) if sample_interval else defaults.sample_interval_ms
        ),
        flame=check_flame(flame) if flame else None,
        follow=follow,
        recorder=recorder,
        recorder_fallback=fallback,
    )


def resolve_recorder(environ: Mapping[str, str]) -> tuple[Implementation, str | None]:
    """The recorder (HOTPATH_RECORDER, else the compiled one where it runs) and, when the
    pure-Python one runs although nobody asked for it, why."""
    try:
        recorder = choose(environ)
    except (ValueError, RecorderUnavailable) as error:
        raise ConfigError(str(error)) from None
    forced = environ.get("HOTPATH_RECORDER", "").strip().lower()
    if recorder == "python" and forced != "python":
        return "python", f"the compiled recorder cannot run: {compiled_unavailable()}"
    return recorder, None

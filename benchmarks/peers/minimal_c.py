"""Runs a script under the minimal compiled recorder (minimal_crecorder.c): the floor that
hotpath's compiled recorder is compared with. Builds it on first use, with the C compiler and
headers of the running interpreter, into benchmarks/results/peers/."""

import os
import runpy
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE.parent / "results" / "peers" / f"py{sys.version_info[0]}{sys.version_info[1]}"
SOURCE = HERE / "minimal_crecorder.c"


def build() -> None:
    target = BUILD / f"minimal_crecorder{sysconfig.get_config_var('EXT_SUFFIX')}"
    if target.exists() and target.stat().st_mtime >= SOURCE.stat().st_mtime:
        return
    BUILD.mkdir(parents=True, exist_ok=True)
    compiler = os.environ.get("CC", "cc")
    include = sysconfig.get_paths()["include"]
    subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", f"-I{include}", str(SOURCE), "-o", str(target)],
        check=True,
    )


build()
sys.path.insert(0, str(BUILD))
import minimal_crecorder  # noqa: E402

monitoring = sys.monitoring
events = monitoring.events
TOOL = 4
script = sys.argv[1]
sys.argv = sys.argv[1:]
monitoring.use_tool_id(TOOL, "minimal-c")
monitoring.register_callback(TOOL, events.PY_START, minimal_crecorder.on_start)
monitoring.register_callback(TOOL, events.PY_RETURN, minimal_crecorder.on_end)
monitoring.register_callback(TOOL, events.PY_UNWIND, minimal_crecorder.on_end)
monitoring.set_events(TOOL, events.PY_START | events.PY_RETURN | events.PY_UNWIND)
try:
    runpy.run_path(script, run_name="__main__")
finally:
    monitoring.set_events(TOOL, 0)

"""Runs a script under yappi with the wall clock, as `python -m yappi` would, output discarded."""

import runpy
import sys

import yappi

script = sys.argv[1]
sys.argv = sys.argv[1:]
yappi.set_clock_type("wall")
yappi.start(builtins=False)
try:
    runpy.run_path(script, run_name="__main__")
finally:
    yappi.stop()
    yappi.get_func_stats()

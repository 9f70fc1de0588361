"""hotpath: a profiler that needs no code changes and answers an agent's questions live."""

__version__ = "0.1.0"

"""Views answer questions from the store's snapshots (``Table.read()`` and the like): they
never reach into a collector, never touch a live object of the program, and never write.

One module per domain builds its answers (``functions``, ``memory``, ``channels``,
``futures``, ``streams``, ``threads``, ``gauges``, ``status``), each beside the JSON Schema of
those answers; ``registry`` lists the tools; ``tools`` serves them over MCP, ``report`` prints
them at exit.
"""

"""Describing what flows through channels and streams, without running the program's code."""

from __future__ import annotations

import asyncio.events
import asyncio.tasks

from hotpath import stdlib

_SIMPLE = (int, float, bool, type(None), complex)


def describe(item: object, main_name: str, limit: int = 80) -> str:
    """A short description of a message. Built-in values show their (truncated) repr; anything
    else shows its type: calling the program's __repr__ could be slow, fail, or change state.
    A type of the script's own module is named as reports name its functions (``app.Order``,
    not ``__main__.Order``)."""
    kind = type(item)
    if kind in _SIMPLE:
        text = repr(item)
    elif isinstance(item, str | bytes) and kind in (str, bytes):
        text = repr(item[: limit + 1])
    elif isinstance(item, tuple | list) and kind in (tuple, list) and len(item) <= 8:
        inner = ", ".join(describe(part, main_name, 24) for part in item)
        text = f"({inner})" if kind is tuple else f"[{inner}]"
    elif isinstance(item, dict) and kind is dict:
        text = f"<dict of {len(item)}>"
    else:
        module = main_name if kind.__module__ == "__main__" else kind.__module__
        text = f"<{module}.{kind.__qualname__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def who() -> str:
    """The task running now, or else the thread."""
    loop = asyncio.events._get_running_loop()
    if loop is not None:
        task = asyncio.tasks.current_task(loop)
        if task is not None:
            return task.get_name()
    return stdlib.current_thread().name

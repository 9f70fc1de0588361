"""Streams: what async generators yield, seen through the timing collector's events.

An async generator's frame yields both for its ``yield`` and for every ``await`` that
suspends it. sys.monitoring tells them apart only by the value: a real item arrives wrapped in
an internal ``async_generator_wrapped_value`` (CPython gh-129013), whose one referent is the
item itself. If a later CPython hands over the bare item, items and awaits can no longer be
told apart and ``items`` would count both: the tests pin the behaviour down.
"""

from __future__ import annotations

import gc
import time

from hotpath.collectors.messages import describe
from hotpath.filters import shown_path
from hotpath.store.functions import FunctionInfo
from hotpath.store.streams import StreamInstance, StreamItem, StreamTable

WRAPPED_ITEM = "async_generator_wrapped_value"


class StreamCollector:
    def __init__(self, table: StreamTable, root: str) -> None:
        self.table = table
        self.root = root

    def opened(self, info: FunctionInfo) -> StreamInstance | None:
        stream = self.table.stream(
            info.id, info.name, f"{shown_path(info.filename, self.root)}:{info.lineno}"
        )
        if stream is None:
            return None  # past the cap
        with stream.lock:
            stream.instances += 1
            return StreamInstance(stream, stream.instances)

    def yielded(self, instance: StreamInstance, value: object) -> None:
        if type(value).__name__ != WRAPPED_ITEM:
            return  # an await suspending the generator, not an item
        now = time.perf_counter_ns()
        inner = gc.get_referents(value)
        message = describe(inner[0]) if len(inner) == 1 else "?"
        previous, instance.last_item_ns = instance.last_item_ns, now
        gap = now - previous if previous is not None else None
        stream = instance.stream
        with stream.lock:
            stream.items += 1
            if stream.first_item_ns is None:
                stream.first_item_ns = now
            stream.recent_items.append(now)
            if gap is not None:
                stream.gaps.add(gap)
            stream.log.append(StreamItem(now, instance.number, message, gap))

    @staticmethod
    def ended(instance: StreamInstance, error: str | None) -> None:
        stream = instance.stream
        with stream.lock:
            if error is None:
                stream.exhausted += 1
                stream.end_reasons["exhausted"] += 1
            elif error == "GeneratorExit":
                stream.closed_early += 1
                stream.end_reasons["closed early"] += 1
            else:
                stream.failed += 1
                stream.end_reasons[error] += 1

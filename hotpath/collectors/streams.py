"""Streams: what async generators yield, as the recorder reports it (its Listener): the
recorder tells items from awaits (see ``hotpath.recorder``) and hands over items only.
"""

from __future__ import annotations

from hotpath import stdlib
from hotpath.collectors import Collector
from hotpath.collectors.messages import describe
from hotpath.filters import shown_path
from hotpath.store.functions import FunctionInfo
from hotpath.store.streams import StreamInstance, StreamItem, StreamTable


class StreamCollector(Collector):
    """Installs nothing: the recorder calls it (``timing.AsyncioListener``)."""

    def __init__(self, table: StreamTable, root: str, main_name: str) -> None:
        self.table = table
        self.root = root
        self.main_name = main_name

    def provides(self) -> dict[str, bool]:
        return {"streams": True}

    def opened(self, info: FunctionInfo) -> StreamInstance | None:
        stream = self.table.stream(
            info.id, info.name, f"{shown_path(info.filename, self.root)}:{info.lineno}"
        )
        if stream is None:
            return None  # past the cap
        with stream.lock:
            stream.instances += 1
            return StreamInstance(stream, stream.instances)

    def yielded(self, instance: StreamInstance, item: object) -> None:
        now = stdlib.perf_counter_ns()
        message = describe(item, self.main_name)
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

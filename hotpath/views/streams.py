"""Streams: async generators grouped by generator function (``streams``, ``stream_logs``)."""

from __future__ import annotations

from hotpath.store import Store
from hotpath.store.streams import StreamReading
from hotpath.views import schema
from hotpath.views.common import (
    DEFAULT_LIMIT,
    JSON,
    listing,
    rate,
    site_logs,
    spread,
    with_children,
)
from hotpath.views.schema import INT, NUM, STR, maybe, obj


def _stream_row(stream: StreamReading, store: Store, now: int) -> JSON:
    ended = stream.exhausted + stream.closed_early + stream.failed
    row: JSON = {
        "id": stream.id,
        "name": stream.name,
        "location": stream.location,
        "instances": stream.instances,
        "active": stream.instances - ended,
        "exhausted": stream.exhausted,
        "closed_early": stream.closed_early,
        "failed": stream.failed,
        "end_reasons": dict(stream.end_reasons),
        "items": stream.items,
        "time_between_items": spread(stream.gaps, store),
    }
    row["items_per_s"], row["items_per_s_lifetime"] = rate(
        stream.recent_items, stream.items, stream.first_item_ns, now
    )
    row["state"] = "active" if row["active"] else "finished"
    return row


STREAM_ROW = obj(
    id=INT,
    name=STR,
    location=STR,
    instances=INT,
    active=INT,
    exhausted=INT,
    closed_early=INT,
    failed=INT,
    end_reasons=schema.mapping(INT),
    items=INT,
    time_between_items=schema.SPREAD,
    items_per_s=NUM,
    items_per_s_lifetime=NUM,
    state={"enum": ["active", "finished"]},
)


def streams(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    now = store.now_ns()
    rows = [_stream_row(stream, store, now) for stream in store.streams.read()]
    rows = with_children(store, "streams", "streams", rows)
    rows.sort(key=lambda r: (r["items_per_s"], r["items"]), reverse=True)
    return listing("streams", rows[:limit], len(rows), "items_per_s", "total_streams")


STREAMS = schema.listing("streams", schema.per_process(STREAM_ROW), "total_streams")


def stream_logs(store: Store, stream_name: str, limit: int = DEFAULT_LIMIT) -> JSON:
    table = store.streams
    return site_logs(
        store, "stream", table.read(), stream_name, table.items, limit,
        lambda item: {"instance": item.instance, "item": item.message, "gap_ns": item.gap_ns},
    )  # fmt: skip


STREAM_LOGS = schema.logs(
    "stream", schema.ENTRY, obj(timestamp=STR, instance=INT, item=STR, gap_ns=maybe(INT))
)

"""Channels: queues between tasks or threads (``channels``, ``channel_logs``)."""

from __future__ import annotations

from hotpath.store import Store
from hotpath.store.channels import ChannelReading
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


def _capacity(capacities: list[int]) -> str:
    if capacities == [0]:
        return "unbounded"
    return ", ".join("unbounded" if c == 0 else f"bounded[{c}]" for c in capacities)


def _channel_row(channel: ChannelReading, store: Store, now: int) -> JSON:
    row: JSON = {
        "id": channel.id,
        "name": channel.name,
        "location": channel.location,
        "kind": channel.kind,
        "capacity": _capacity(channel.capacities),
        "instances": {"created": channel.created, "live": channel.live, "closed": channel.closed},
        "sent": channel.sent,
        "received": channel.received,
        "queue_size": channel.queue_size,
        "max_queue_size": channel.max_size,
        "delay": spread(channel.delay, store),
    }
    row["sent_per_s"], row["sent_per_s_lifetime"] = rate(
        channel.recent_sends, channel.sent, channel.first_ns, now
    )
    row["received_per_s"], row["received_per_s_lifetime"] = rate(
        channel.recent_receives, channel.received, channel.first_ns, now
    )
    row["full_now"] = channel.full_now
    row["state"] = "closed" if channel.live == 0 else ("full" if channel.full_now else "active")
    return row


CHANNEL_ROW = obj(
    id=INT,
    name=STR,
    location=STR,
    kind=STR,
    capacity=STR,
    instances=obj(created=INT, live=INT, closed=INT),
    sent=INT,
    received=INT,
    queue_size=INT,
    max_queue_size=INT,
    delay=schema.SPREAD,
    sent_per_s=NUM,
    sent_per_s_lifetime=NUM,
    received_per_s=NUM,
    received_per_s_lifetime=NUM,
    full_now=INT,
    state={"enum": ["active", "full", "closed"]},
)


def channels(store: Store, limit: int = DEFAULT_LIMIT) -> JSON:
    now = store.now_ns()
    rows = [_channel_row(channel, store, now) for channel in store.channels.read()]
    rows = with_children(store, "channels", "channels", rows)
    rows.sort(key=lambda r: (r["sent_per_s"], r["sent"]), reverse=True)
    return listing(
        "channels",
        rows[:limit],
        len(rows),
        "sent_per_s",
        "total_channels",
        dropped_channels=store.channels.dropped,
    )


CHANNELS = schema.listing(
    "channels", schema.per_process(CHANNEL_ROW), "total_channels", dropped_channels=INT
)


def channel_logs(store: Store, channel_name: str, limit: int = DEFAULT_LIMIT) -> JSON:
    table = store.channels
    return site_logs(
        store, "channel", table.read(), channel_name, table.events, limit,
        lambda event: {
            "op": event.op, "message": event.message, "by": event.by,
            "delay_ns": event.delay_ns,
        },
    )  # fmt: skip


CHANNEL_LOGS = schema.logs(
    "channel",
    schema.ENTRY,
    obj(
        timestamp=STR,
        op={"enum": ["send", "receive"]},
        message=STR,
        by=STR,
        delay_ns=maybe(INT),
    ),
)

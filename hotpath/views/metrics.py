"""``GET /metrics``: the store's figures in the Prometheus text format, built with
``prometheus_client`` (its own families and encoder, no hand-written format).

Label sets are bounded, whatever the program does: functions are the top
``HOTPATH_METRICS_LIMIT`` (default 100, checked at start with the other settings) by total
time, SQL statements, HTTP endpoints and routes the top as many by total time, and channels,
locks, future groups, threads and gauges the first as many of their tables (each capped at
1,000 already). A series that
leaves the top N stops being exported; Prometheus marks it stale, as it does for an ended
process.

Durations are histograms with fixed bounds from 1 µs to 10 s (``BOUNDS_S``), counted from the
recorder's log-scale histogram: a bucket of its goes under the first bound at or above its
upper edge, so a count can be short by the calls within 2.2% below a bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hotpath.store import Store
from hotpath.store.histogram import STEPS, ZERO

BOUNDS_S = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)


def cumulative(buckets: dict[int, int]) -> list[tuple[str, int]]:
    """Prometheus buckets (``le`` in seconds, counts of values at or under it) from the
    recorder's histogram (nanoseconds, ``STEPS`` buckets per doubling)."""
    found = []
    for bound in BOUNDS_S:
        ns = bound * 1e9
        found.append(
            (
                repr(bound),
                sum(n for b, n in buckets.items() if b == ZERO or 2 ** ((b + 1) / STEPS) <= ns),
            )
        )
    found.append(("+Inf", sum(buckets.values())))
    return found


# The store's table, the families' prefix, their label, what they count.
OPERATIONS = (
    ("sql", "hotpath_sql", "statement", "SQL statements executed"),
    ("http", "hotpath_http", "endpoint", "Outbound HTTP calls"),
    ("routes", "hotpath_route", "route", "Requests served"),
)


class _Collector:
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        store, top = self.store, self.store.info.metrics_limit
        stats = [s for s in store.function_stats(store.now_ns()) if s.calls]
        stats.sort(key=lambda s: s.total_ns, reverse=True)
        label = ["function"]
        calls = CounterMetricFamily("hotpath_function_calls", "Calls started", labels=label)
        errors = CounterMetricFamily("hotpath_function_errors", "Calls that raised", labels=label)
        total = CounterMetricFamily(
            "hotpath_function_seconds", "Inclusive time, callees included", labels=label
        )
        own = CounterMetricFamily(
            "hotpath_function_self_seconds", "Time in the function itself", labels=label
        )
        durations = HistogramMetricFamily(
            "hotpath_function_duration_seconds", "Finished calls' durations", labels=label
        )
        counted = CounterMetricFamily(
            "hotpath_function_allocations", "Allocator requests (--alloc)", labels=label
        )
        counted_bytes = CounterMetricFamily(
            "hotpath_function_allocated_bytes", "Bytes requested (--alloc)", labels=label
        )
        for function in stats[:top]:
            name = [function.info.name]
            calls.add_metric(name, function.calls)
            errors.add_metric(name, function.totals.errors)
            total.add_metric(name, function.total_ns / 1e9)
            own.add_metric(name, function.self_ns / 1e9)
            durations.add_metric(
                name, cumulative(function.totals.buckets), function.totals.all_ns / 1e9
            )
            if function.allocations is not None:
                so_far = function.allocations.so_far
                counted.add_metric(name, so_far.count)
                counted_bytes.add_metric(name, so_far.bytes)
        yield from (calls, errors, total, own, durations)
        if store.info.collectors.get("alloc"):
            yield from (counted, counted_bytes)

        sent = CounterMetricFamily("hotpath_channel_sent", "Items sent", labels=["channel"])
        received = CounterMetricFamily(
            "hotpath_channel_received", "Items received", labels=["channel"]
        )
        size = GaugeMetricFamily(
            "hotpath_channel_queue_size", "Items queued now", labels=["channel"]
        )
        for channel in store.channels.read()[:top]:
            site = [f"{channel.name} ({channel.location})"]
            sent.add_metric(site, channel.sent)
            received.add_metric(site, channel.received)
            size.add_metric(site, channel.queue_size)
        yield from (sent, received, size)

        label = ["lock"]
        acquired = CounterMetricFamily(
            "hotpath_lock_acquisitions", "Acquisitions of the program's locks", labels=label
        )
        contended = CounterMetricFamily(
            "hotpath_lock_contended", "Acquisitions that had to wait", labels=label
        )
        waited = CounterMetricFamily(
            "hotpath_lock_wait_seconds", "Time spent waiting to acquire", labels=label
        )
        held = CounterMetricFamily("hotpath_lock_hold_seconds", "Time held", labels=label)
        waiting = GaugeMetricFamily(
            "hotpath_lock_waiting", "Threads or tasks waiting to acquire now", labels=label
        )
        for lock in sorted(store.locks.read(), key=lambda lock: lock.wait_ns, reverse=True)[:top]:
            site = [f"{lock.name} ({lock.location})"]
            acquired.add_metric(site, lock.acquisitions)
            contended.add_metric(site, lock.contended)
            waited.add_metric(site, lock.wait_ns / 1e9)
            held.add_metric(site, lock.hold.total / 1e9)
            waiting.add_metric(site, lock.waiting)
        yield from (acquired, contended, waited, held, waiting)

        for table, prefix, kind, what in OPERATIONS:
            calls = CounterMetricFamily(f"{prefix}_calls", what, labels=[kind])
            errors = CounterMetricFamily(f"{prefix}_errors", f"{what} that failed", labels=[kind])
            durations = HistogramMetricFamily(
                f"{prefix}_duration_seconds", f"{what}: durations", labels=[kind]
            )
            entries = sorted(getattr(store, table).read(), key=lambda e: e.time.total, reverse=True)
            for entry in entries[:top]:
                name = [entry.name]
                calls.add_metric(name, entry.calls)
                errors.add_metric(name, entry.errors)
                durations.add_metric(name, cumulative(entry.time.buckets), entry.time.total / 1e9)
            yield from (calls, errors, durations)

        tasks = GaugeMetricFamily(
            "hotpath_futures", "asyncio tasks by state", labels=["group", "state"]
        )
        for group in store.futures.read()[:top]:
            states = {"done": group.done, "cancelled": group.cancelled, "failed": group.failed}
            for task in group.live:
                states[task.state] = states.get(task.state, 0) + 1
            for state, count in sorted(states.items()):
                tasks.add_metric([group.name, state], count)
        yield tasks

        reading = store.threads.read()
        cpu = CounterMetricFamily(
            "hotpath_thread_cpu_seconds", "CPU time by thread", labels=["thread", "os_thread_id"]
        )
        for thread in reading.alive[:top]:
            cpu.add_metric([thread.name, str(thread.native_id)], thread.cpu_s)
        yield cpu
        yield GaugeMetricFamily(
            "hotpath_process_rss_bytes", "Resident memory", value=reading.process.rss_bytes
        )

        gauges = GaugeMetricFamily(
            "hotpath_gauge", "hotpath's built-in gauges and the program's", labels=["gauge"]
        )
        for gauge in store.gauges.read()[:top]:
            gauges.add_metric([gauge.name], float(gauge.value))
        yield gauges


def exposition(store: Store) -> tuple[bytes, str]:
    """The text format now, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(store))
    return generate_latest(registry), CONTENT_TYPE_LATEST

"""The program's own gauges (``hotpath.gauge(name).set(...)``): while hotpath runs, the gauge
API writes into the store's gauge table; outside, and in a forked child, it records nothing."""

from __future__ import annotations

import hotpath
from hotpath.collectors import Collector
from hotpath.store.gauges import GaugeTable


class ProgramGauges(Collector):
    def __init__(self, table: GaugeTable) -> None:
        self.table = table

    def install(self) -> None:
        hotpath._gauges = self.table

    def forget_in_child(self) -> None:
        hotpath._gauges = None

"""The gauge that records nothing: what ``hotpath.gauge`` returns outside ``hotpath run``, and
what the gauge table returns past its cap. A leaf module: plain Python 3, no imports, so that
``hotpath/__init__.py`` (which programs import on any Python) and the store share it."""


class NoGauge:
    """Every call does nothing, cheaply."""

    __slots__ = ()

    def set(self, value: float) -> "NoGauge":
        return self

    def inc(self, delta: float = 1) -> "NoGauge":
        return self

    def dec(self, delta: float = 1) -> "NoGauge":
        return self


NO_GAUGE = NoGauge()

import math
import random
from collections import Counter

import pytest

from hotpath.store.histogram import add_buckets, percentiles


def bucket_counts(values: list[int]) -> Counter[int]:
    counts: Counter[int] = Counter()
    add_buckets(counts, values)
    return counts


def exact_percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_within_two_percent_of_exact(seed: int) -> None:
    rng = random.Random(seed)
    # Durations over six orders of magnitude, as real call times are.
    values = [int(rng.lognormvariate(10, 2.5)) + 1 for _ in range(50_000)]
    quantiles = (1, 25, 50, 90, 95, 99, 99.9, 100)
    estimated = percentiles(bucket_counts(values), quantiles)
    for q in quantiles:
        exact = exact_percentile(values, q)
        assert abs(estimated[q] - exact) / exact <= 0.02, (q, estimated[q], exact)


def test_known_small_distribution() -> None:
    values = [100] * 90 + [10_000] * 10
    result = percentiles(bucket_counts(values), (50, 90, 91, 99))
    assert result[50] == pytest.approx(100, rel=0.02)
    assert result[90] == pytest.approx(100, rel=0.02)
    assert result[91] == pytest.approx(10_000, rel=0.02)
    assert result[99] == pytest.approx(10_000, rel=0.02)


def test_zero_durations_and_empty_histogram() -> None:
    assert percentiles(bucket_counts([0, 0, 1]), (50, 100)) == {
        50: 0.0,
        100: pytest.approx(1, rel=0.02),
    }
    assert percentiles(bucket_counts([]), (50, 99)) == {50: 0.0, 99: 0.0}

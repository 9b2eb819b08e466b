"""The latency buckets: every latency lands in the bucket whose bounds hold it, and a
percentile read from the counts is within the stated bound of the exact one."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from aiops import latency


def test_bounds_grow_by_the_ratio_from_10ms_to_about_80s() -> None:
    bounds = latency.BOUNDS_S
    assert bounds[0] == pytest.approx(0.010)
    assert 80 <= bounds[-1] <= 82
    for low, high in itertools.pairwise(bounds):
        assert high / low == pytest.approx(latency.RATIO, rel=1e-6)


@pytest.mark.parametrize("seconds", [0.0, -1.0, math.nan, 0.004, 0.010, 0.0101, 0.5, 81.92,
                                     81.93, 1e9])
def test_a_latency_lands_in_the_bucket_whose_bounds_hold_it(seconds: float) -> None:
    index = latency.bucket_of(seconds)
    assert 0 <= index < latency.BUCKETS
    if not seconds > 0:
        assert index == 0
        return
    if index < len(latency.BOUNDS_S):
        assert seconds <= latency.BOUNDS_S[index]
    if index > 0:
        assert seconds > latency.BOUNDS_S[index - 1]


def test_percentiles_from_the_buckets_are_within_the_stated_bound() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(math.log(0.8), 1.0) for _ in range(5000)]
    samples = [min(max(s, 0.011), 80.0) for s in samples]
    counts = [0] * latency.BUCKETS
    for s in samples:
        counts[latency.bucket_of(s)] += 1
    ordered = sorted(samples)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[math.ceil(q * len(ordered)) - 1]
        read = latency.percentile(counts, q)
        assert read is not None
        assert abs(read - exact) / exact <= latency.ERROR_BOUND + 1e-9


def test_no_counts_no_percentile_and_bad_arguments_are_refused() -> None:
    assert latency.percentile([0] * latency.BUCKETS, 0.5) is None
    with pytest.raises(ValueError):
        latency.percentile([1] * latency.BUCKETS, 0)
    with pytest.raises(ValueError):
        latency.percentile([1, 2], 0.5)


def test_the_overflow_bucket_reads_as_its_lower_bound() -> None:
    counts = [0] * latency.BUCKETS
    counts[-1] = 3
    assert latency.percentile(counts, 0.99) == latency.BOUNDS_S[-1]
